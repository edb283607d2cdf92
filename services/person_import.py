"""Bulk add (and invite) people from a spreadsheet ("Importer personer"): every row checked and reported.

Decisions:

- The outcomes are those of every import (``services/import_rows.py``): each row is **created** (and invited when
  ``invite`` says so, in the same transaction as the person), a **duplicate** (skipped) or **refused** with every
  problem of the row, each prefixed with its column ("end_date: …"). Rows are independent: a refused row never stops
  another, so importing the corrected file again creates the rows that were refused and skips the others.
- A duplicate is a person the client already has with the row's e-mail address (any case), or, for a row without
  e-mail, a person without e-mail with the same first and last name; or an earlier row of the file that is created
  for the same client with the same e-mail (or name).
- Refused: an unknown ``kind`` (``bruker``/``user``, ``ekstern bruker``/``external_user``, ``bruker uten
  pakker``/``user_without_packages``, ``person``/``person uten bruker``; bureau users need an employee and are added
  on the Personer tab), an org number that is not a client of this bureau, a package code that is not an active
  package of the bureau (codes compare case-insensitively; a main package must be a main package and add-ons,
  separated by ``|``, add-ons), a date that is neither ``YYYY-MM-DD`` nor ``DD.MM.YYYY``, an ``invite`` that is not
  ja/nei (yes/no, true/false, 1/0; empty is nei), an invitation for a person without user, an e-mail address that is
  not one, and whatever ``add_person`` or the invitation refuse (names, e-mail for a login, end date of external
  users, packages only for users with packages, the policy).
- On a client's page only that client's org number, or an empty one, is accepted; the command needs the org number,
  so a client without one can only be imported into from its page.
- ``dry_run`` (the preview) adds each row in a savepoint that is rolled back, so the preview reports what the import
  will do, refusals of ``add_person`` included. Like every service this only flushes; the page or command commits.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Client, Package, PackageKind, Person, PersonKind, User
from services.errors import DomainError, integrity_message
from services.import_rows import (
    RowResult,
    RowStatus,
    choose,
    column_labels,
    header_aliases,
    problems_text,
    yes_no,
)
from services.inputs import cell_problems, clean_row, text_problem
from services.orgnumbers import normalise
from services.people import NewPerson, add_person
from services.policy import Verb, refusal
from services.tabular import read_table

HEADER = (
    "org_number",
    "kind",
    "first_name",
    "last_name",
    "email",
    "phone",
    "main_package",
    "addon_packages",
    "end_date",
    "invite",
)
# Each column's header in Norwegian (the first is the template's); the code name above is accepted too.
NORWEGIAN_HEADER = {
    "org_number": ("organisasjonsnummer", "orgnr", "org.nr."),
    "kind": ("type", "persontype"),
    "first_name": ("fornavn",),
    "last_name": ("etternavn",),
    "email": ("e-post", "epost"),
    "phone": ("telefon",),
    "main_package": ("hovedpakke",),
    "addon_packages": ("tilleggspakker",),
    "end_date": ("sluttdato",),
    "invite": ("inviter",),
}
TEMPLATE_HEADER = tuple(names[0] for names in NORWEGIAN_HEADER.values())
LABELS = column_labels(NORWEGIAN_HEADER)
EXAMPLE_ROWS = [
    (
        "974760673",
        "bruker",
        "Kari",
        "Nordmann",
        "kari@example.no",
        "+47 99999999",
        "REGNSKAP",
        "LONN|FAKTURA",
        "",
        "ja",
    ),
    ("974760673", "ekstern bruker", "Per", "Revisor", "per@revisor.example", "", "CRM", "", "31.12.2030", "nei"),
    ("974760673", "person", "Ola", "Nordmann", "", "", "", "", "", "nei"),
]
# The cells that are stored as they are, and the columns that hold them (their length and one-line rules).
CELL_COLUMNS = {
    "first_name": Person.__table__.c.first_name,
    "last_name": Person.__table__.c.last_name,
    "email": Person.__table__.c.email,
    "phone": Person.__table__.c.phone,
}
IMPORT_KINDS = (PersonKind.USER, PersonKind.EXTERNAL_USER, PersonKind.USER_WITHOUT_PACKAGES, PersonKind.PERSON)
ADDON_SEPARATOR = "|"
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
NORWEGIAN_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
# The kinds by code and by their Norwegian names (compared in any case, "_" as a space).
KIND_NAMES = {
    **{kind.value: kind for kind in IMPORT_KINDS},
    "bruker": PersonKind.USER,
    "bruker med tilgangspakker": PersonKind.USER,
    "ekstern bruker": PersonKind.EXTERNAL_USER,
    "ekstern bruker med tilgangspakker": PersonKind.EXTERNAL_USER,
    "bruker uten pakker": PersonKind.USER_WITHOUT_PACKAGES,
    "bruker uten tilgangspakker": PersonKind.USER_WITHOUT_PACKAGES,
    "person": PersonKind.PERSON,
    "person uten bruker": PersonKind.PERSON,
}


def read_rows(data: bytes, filename: str) -> list[dict[str, str]]:
    """The rows of an uploaded person spreadsheet, its header in Norwegian or by code name."""
    return read_table(data, filename, HEADER, header_aliases(NORWEGIAN_HEADER), TEMPLATE_HEADER)


def parse_date(text: str) -> date | None:
    """``YYYY-MM-DD`` or ``DD.MM.YYYY``; None for anything else."""
    try:
        if ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
        match = NORWEGIAN_DATE.fullmatch(text)
        if match:
            return date(int(match[3]), int(match[2]), int(match[1]))
    except ValueError:
        return None
    return None


@dataclass
class CheckedRow:
    """A spreadsheet row after the column checks: what to add, or the problems found."""

    row: int
    problems: list[str] = field(default_factory=list)
    client: Client | None = None
    data: NewPerson | None = None
    invite: bool = False
    email: str = ""  # the normalised address when valid: for the duplicate check, even when other columns are wrong


def _problem(column: str, message: object) -> str:
    """A problem of one cell, named by the column's header in the template."""
    return f"{LABELS[column]}: {message}"


class Catalogue:
    """The bureau's packages by lower-cased code."""

    def __init__(self, session: Session, bureau_id: int) -> None:
        self.by_code: dict[str, list[Package]] = defaultdict(list)
        for package in session.scalars(select(Package).where(Package.bureau_id == bureau_id)):
            self.by_code[package.code.lower()].append(package)

    def find(self, code: str, kind: PackageKind) -> Package | str:
        """The active package with this code and kind, or the problem to report."""
        found = self.by_code.get(code.lower(), [])
        active = [p for p in found if p.active]
        if not active:
            if found:
                return str(_("the package %(code)s is no longer sold.", code=code))
            return str(_("no package of this bureau has the code %(code)s (see the package catalogue).", code=code))
        if len(active) > 1:
            return str(_("the code %(code)s matches several packages when case is ignored.", code=code))
        package = active[0]
        if package.kind is not kind:
            if kind is PackageKind.MAIN:
                return str(_("%(code)s is an add-on, not a main package.", code=package.code))
            return str(_("%(code)s is a main package, not an add-on.", code=package.code))
        return package


def clients_by_number(session: Session, bureau_id: int, rows: list[dict[str, str]]) -> dict[str, Client]:
    numbers = {normalise(r.get("org_number", "")) for r in rows if r.get("org_number", "").strip()}
    numbers = {number for number in numbers if not text_problem(number, None)}  # no NUL into the query
    if not numbers:
        return {}
    clients = session.scalars(select(Client).where(Client.bureau_id == bureau_id, Client.org_number.in_(numbers)))
    return {client.org_number: client for client in clients}


def check_row(
    number: int,
    row: dict[str, str],
    *,
    clients: dict[str, Client],
    only_client: Client | None,
    catalogue: Catalogue,
) -> CheckedRow:
    checked = CheckedRow(number)
    problems = checked.problems

    problems.extend(cell_problems(row, CELL_COLUMNS, LABELS))
    if problems:  # an over-long cell or a NUL: refused before anything else reads the row
        return checked
    row = clean_row(row, CELL_COLUMNS)

    raw_number = row.get("org_number", "").strip()
    compact = normalise(raw_number) or ""
    if only_client is not None:
        if not compact or compact == only_client.org_number:
            checked.client = only_client
        elif only_client.org_number:
            problems.append(
                _problem(
                    "org_number",
                    _(
                        "%(value)s is not this client: leave it empty or use %(own)s.",
                        value=raw_number,
                        own=only_client.org_number,
                    ),
                )
            )
        else:
            problems.append(
                _problem("org_number", _("%(value)s is not this client: leave it empty.", value=raw_number))
            )
    elif not compact:
        problems.append(_problem("org_number", _("give the organisation number of the client.")))
    elif compact not in clients:
        problems.append(_problem("org_number", _("%(value)s is not a client of this bureau.", value=raw_number)))
    else:
        checked.client = clients[compact]

    kind_text = row.get("kind", "").strip()
    kind = choose(kind_text, KIND_NAMES)
    if kind is None:
        problems.append(
            _problem(
                "kind",
                _(
                    "%(value)s is not a kind that can be imported (use one of %(kinds)s).",
                    value=kind_text or "–",
                    kinds="bruker, ekstern bruker, bruker uten pakker, person",
                ),
            )
        )

    email_text = row.get("email", "").strip()
    if email_text:
        try:
            checked.email = validate_email(email_text, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            problems.append(_problem("email", _("%(value)s is not a valid e-mail address.", value=email_text)))

    main_code = row.get("main_package", "").strip()
    main_id = None
    if main_code:
        found = catalogue.find(main_code, PackageKind.MAIN)
        if isinstance(found, str):
            problems.append(_problem("main_package", found))
        else:
            main_id = found.id
    addon_ids = []
    for code in filter(None, (c.strip() for c in row.get("addon_packages", "").split(ADDON_SEPARATOR))):
        found = catalogue.find(code, PackageKind.ADDON)
        if isinstance(found, str):
            problems.append(_problem("addon_packages", found))
        elif found.id not in addon_ids:
            addon_ids.append(found.id)

    end_text = row.get("end_date", "").strip()
    end_date = None
    if end_text:
        end_date = parse_date(end_text)
        if end_date is None:
            problems.append(
                _problem("end_date", _("%(value)s is not a date in the form DD.MM.YYYY or YYYY-MM-DD.", value=end_text))
            )

    invite = yes_no(row.get("invite", ""))
    if invite is None:
        problems.append(_problem("invite", _("must be ja or nei, not %(value)s.", value=row.get("invite", ""))))
    elif invite and kind is PersonKind.PERSON:
        problems.append(_problem("invite", _("a person without user cannot be invited: use nei.")))

    if not problems:
        checked.invite = bool(invite)
        checked.data = NewPerson(
            kind=kind,
            first_name=row.get("first_name", ""),
            last_name=row.get("last_name", ""),
            email=checked.email or None,
            phone=row.get("phone", "").strip() or None,
            main_package_id=main_id,
            addon_package_ids=addon_ids,
            end_date=end_date,
        )
    return checked


def duplicate_key(item: CheckedRow) -> tuple[int, str]:
    """What makes two rows (or a row and a stored person) the same person on a client: e-mail, else the name."""
    if item.email:
        return item.client.id, f"email:{item.email}"
    name = f"{item.data.first_name.strip().lower()} {item.data.last_name.strip().lower()}"
    return item.client.id, f"name:{name}"


def existing_person(session: Session, item: CheckedRow) -> Person | None:
    """The client's person this row would repeat (same e-mail; without e-mail, the same name and no e-mail)."""
    query = select(Person).where(Person.client_id == item.client.id)
    if item.email:
        query = query.where(func.lower(Person.email) == item.email)
    else:
        query = query.where(
            Person.email.is_(None),
            func.lower(Person.first_name) == item.data.first_name.strip().lower(),
            func.lower(Person.last_name) == item.data.last_name.strip().lower(),
        )
    with session.no_autoflush:
        return session.scalar(query.limit(1))


class PersonImport:
    """What the rows of one import (or one chunk of its job) share: clients, packages, policy answers, rows seen."""

    def __init__(
        self,
        session: Session,
        bureau_id: int,
        rows: list[dict[str, str]],
        *,
        only_client: Client | None,
        today: date,
        actor: User | None,
        dry_run: bool = False,
    ) -> None:
        self.session = session
        self.catalogue = Catalogue(session, bureau_id)
        self.clients = {} if only_client is not None else clients_by_number(session, bureau_id, rows)
        self.only_client = only_client
        self.today = today
        self.actor = actor
        self.dry_run = dry_run
        self.refusals: dict[int, str | None] = {}
        self.seen: dict[tuple[int, str], int] = {}

    def row(self, number: int, row: dict[str, str]) -> RowResult:
        """One spreadsheet row: checked, then added (or tried, on a dry run) in its own savepoint."""
        item = check_row(number, row, clients=self.clients, only_client=self.only_client, catalogue=self.catalogue)
        if item.problems:
            return RowResult(number, RowStatus.REFUSED, problems_text(item.problems))
        client = item.client
        if client.id not in self.refusals:
            self.refusals[client.id] = refusal(self.session, self.actor, Verb.CLIENT_ADD_PEOPLE, client)
        if self.refusals[client.id] is not None:
            return RowResult(number, RowStatus.REFUSED, self.refusals[client.id])
        key = duplicate_key(item)
        if key in self.seen:
            message = _("The same person as row %(row)s.", row=self.seen[key])
            return RowResult(number, RowStatus.DUPLICATE, str(message), client.id)
        existing = existing_person(self.session, item)
        if existing is not None:
            message = _("Already on %(client)s: %(name)s.", client=client.name, name=existing.full_name)
            return RowResult(number, RowStatus.DUPLICATE, str(message), client.id)
        result = add_row(self.session, item, today=self.today, actor=self.actor, dry_run=self.dry_run)
        if result.status is RowStatus.CREATED:
            self.seen[key] = number
        return result


def import_persons(
    session: Session,
    bureau_id: int,
    rows: list[dict[str, str]],
    *,
    only_client: Client | None = None,
    today: date,
    actor: User | None = None,
    dry_run: bool = False,
) -> list[RowResult]:
    """Check and add every row on its own (inviting where asked); one result per row, in file order.

    ``actor`` is the staff member importing (the policy decides per client and invitation), None for the CLI.
    ``dry_run`` (the preview) rolls every row back and reports what the import would do.
    """
    importer = PersonImport(
        session, bureau_id, rows, only_client=only_client, today=today, actor=actor, dry_run=dry_run
    )
    return [importer.row(number, row) for number, row in enumerate(rows, start=2)]


def add_row(session: Session, item: CheckedRow, *, today: date, actor: User | None, dry_run: bool = False) -> RowResult:
    """Add one checked row (and invite when asked) in its own savepoint: created, or refused with the reason.

    A database refusal that is not one of the known rules is re-raised (after the savepoint is rolled back).
    """
    row_savepoint = session.begin_nested()
    try:
        person = add_person(session, item.client, item.data, today=today)
        if item.invite:
            from services.invitations import invite_user

            invite_user(session, person.user, today=today, actor=actor)
    except DomainError as exc:
        row_savepoint.rollback()
        return RowResult(item.row, RowStatus.REFUSED, str(exc))
    except IntegrityError as exc:
        row_savepoint.rollback()
        message = integrity_message(exc)
        if message is None:
            raise
        return RowResult(item.row, RowStatus.REFUSED, message)
    name, email = person.full_name, person.email
    if dry_run:
        row_savepoint.rollback()
        if item.invite:
            message = _("%(name)s will be added and invited at %(email)s.", name=name, email=email)
        else:
            message = _("%(name)s will be added.", name=name)
        return RowResult(item.row, RowStatus.CREATED, str(message), item.client.id, invited=item.invite)
    row_savepoint.commit()
    if item.invite:
        message = _("Created %(name)s and queued the invitation to %(email)s.", name=name, email=email)
    else:
        message = _("Created %(name)s.", name=name)
    return RowResult(item.row, RowStatus.CREATED, str(message), item.client.id, invited=item.invite)
