"""Bulk add (and invite) people from a spreadsheet ("Importer personer"): checked first, then one transaction per client.

Decisions:

- Every row is checked before anything is written, and every problem of a row is reported, prefixed with its column
  ("end_date: …"): an unknown ``kind`` (``user``, ``external_user``, ``user_without_packages`` or ``person``; bureau
  users need an employee and are added on the Personer tab), an org number that is not a client of this bureau, a
  package code that is not an active package of the bureau (codes compare case-insensitively; a main package must be
  a main package and add-ons, separated by ``|``, add-ons), a date that is not ISO (YYYY-MM-DD), an ``invite`` that
  is not yes or no (``ja``/``nei`` and an empty cell, meaning no, are accepted too), ``invite=yes`` for a person
  without user, an e-mail address that is not one, and an e-mail that an earlier row of the file gives to the same
  client. A row refused here is reported and skipped; the valid rows are still imported.
- On a client's page only that client's org number, or an empty one, is accepted; the command needs the org number,
  so a client without one can only be imported into from its page.
- The rules of each kind (names, e-mail for a login, end date of external users, packages only for users with
  packages, e-mail already used on the client) are ``add_person``'s, checked while importing. The valid rows of one
  client are imported in ONE savepoint: when ``add_person`` or the invitation refuses any of them, none of that
  client's rows are imported and each is reported as refused (the row at fault with the reason, the others naming
  it); other clients are unaffected. Each row also runs in its own inner savepoint, so every refusal of a client
  is reported, not only the first, and a row is never half-imported.
- Statuses: ``created``, ``invited`` (created and the invitation queued in the outbox, in the same transaction) and
  ``refused``. The report has one result per spreadsheet row, in file order; the header is row 1.
- Like every service this only flushes; the page or the command commits.
"""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Client, Package, PackageKind, Person, PersonKind, User
from services.errors import DomainError, integrity_message
from services.inputs import cell_problems, clean_row, text_problem
from services.orgnumbers import normalise
from services.people import NewPerson, add_person
from services.policy import Verb, refusal

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
EXAMPLE_ROWS = [
    ("974760673", "user", "Kari", "Nordmann", "kari@example.no", "+47 99999999", "REGNSKAP", "LONN|FAKTURA", "", "yes"),
    ("974760673", "external_user", "Per", "Revisor", "per@revisor.example", "", "CRM", "", "2030-12-31", "no"),
    ("974760673", "person", "Ola", "Nordmann", "", "", "", "", "", "no"),
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


class RowStatus(enum.StrEnum):
    CREATED = "created"
    INVITED = "invited"
    REFUSED = "refused"


@dataclass
class RowResult:
    row: int  # the spreadsheet's row number (the header is row 1)
    status: RowStatus
    message: str

    def to_json(self) -> dict[str, object]:
        return {"row": self.row, "status": str(self.status), "message": self.message}


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
    return f"{column}: {message}"


def _yes_no(value: str) -> bool | None:
    value = value.strip().lower()
    if value in ("", "no", "nei"):
        return False
    if value in ("yes", "ja"):
        return True
    return None


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

    problems.extend(cell_problems(row, CELL_COLUMNS))
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

    kind_text = row.get("kind", "").strip().lower()
    kind = next((k for k in IMPORT_KINDS if k.value == kind_text), None)
    if kind is None:
        problems.append(
            _problem(
                "kind",
                _(
                    "%(value)s is not a kind that can be imported (use one of %(kinds)s).",
                    value=kind_text or "–",
                    kinds=", ".join(k.value for k in IMPORT_KINDS),
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
        try:
            if not ISO_DATE.fullmatch(end_text):
                raise ValueError(end_text)
            end_date = date.fromisoformat(end_text)
        except ValueError:
            problems.append(_problem("end_date", _("%(value)s is not a date in the form YYYY-MM-DD.", value=end_text)))

    invite = _yes_no(row.get("invite", ""))
    if invite is None:
        problems.append(_problem("invite", _("must be yes or no, not %(value)s.", value=row.get("invite", ""))))
    elif invite and kind is PersonKind.PERSON:
        problems.append(_problem("invite", _("a person without user cannot be invited: use no.")))

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


def _check_duplicate_emails(checked: list[CheckedRow]) -> None:
    """An e-mail address may appear once per client in the file; later rows with it are refused."""
    first_row: dict[tuple[int, str], int] = {}
    for item in checked:
        if item.client is None or not item.email:
            continue
        key = (item.client.id, item.email)
        if key in first_row:
            item.problems.append(
                _problem(
                    "email",
                    _("%(value)s is also on row %(row)s for the same client.", value=item.email, row=first_row[key]),
                )
            )
            item.data = None
        else:
            first_row[key] = item.row


def import_persons(
    session: Session,
    bureau_id: int,
    rows: list[dict[str, str]],
    *,
    only_client: Client | None = None,
    today: date,
    actor: User | None = None,
) -> list[RowResult]:
    """Check every row, then add the valid rows (and invite where asked) in one savepoint per client.

    ``actor`` is the staff member importing (the policy decides per client and invitation), None for the CLI.
    """
    catalogue = Catalogue(session, bureau_id)
    clients = {} if only_client is not None else clients_by_number(session, bureau_id, rows)
    checked = [
        check_row(number, row, clients=clients, only_client=only_client, catalogue=catalogue)
        for number, row in enumerate(rows, start=2)
    ]
    _check_duplicate_emails(checked)

    results: dict[int, RowResult] = {}
    groups: dict[int, list[CheckedRow]] = defaultdict(list)
    for item in checked:
        if item.problems:
            results[item.row] = RowResult(item.row, RowStatus.REFUSED, "; ".join(item.problems))
        else:
            groups[item.client.id].append(item)
    for items in groups.values():
        for result in _import_client(session, items, today, actor):
            results[result.row] = result
    return [results[item.row] for item in checked]


def add_row(session: Session, item: CheckedRow, *, today: date, actor: User | None) -> RowResult:
    """Add one checked row (and invite when asked) in its own savepoint: created, invited, or refused with the reason.

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
    row_savepoint.commit()
    if item.invite:
        message = _(
            "Created %(name)s and queued the invitation to %(email)s.", name=person.full_name, email=person.email
        )
        return RowResult(item.row, RowStatus.INVITED, str(message))
    return RowResult(item.row, RowStatus.CREATED, str(_("Created %(name)s.", name=person.full_name)))


def _import_client(session: Session, items: list[CheckedRow], today: date, actor: User | None) -> list[RowResult]:
    """All valid rows of one client, or none of them."""
    client = items[0].client
    reason = refusal(session, actor, Verb.CLIENT_ADD_PEOPLE, client)
    if reason is not None:
        return [RowResult(item.row, RowStatus.REFUSED, reason) for item in items]
    done: list[RowResult] = []
    refused: dict[int, str] = {}
    group = session.begin_nested()
    for item in items:
        try:
            result = add_row(session, item, today=today, actor=actor)
        except IntegrityError:
            group.rollback()
            raise
        if result.status is RowStatus.REFUSED:
            refused[item.row] = result.message
        else:
            done.append(result)
    if not refused:
        group.commit()
        return done
    group.rollback()
    rows = ", ".join(str(row) for row in refused)
    results = [RowResult(row, RowStatus.REFUSED, reason) for row, reason in refused.items()]
    for result in done:
        results.append(RowResult(result.row, RowStatus.REFUSED, not_imported_message(rows, client.name)))
    return results


def not_imported_message(rows: str, client_name: str) -> str:
    """Why a valid row was not imported: another row of the same client was refused (all or none per client)."""
    return str(
        _(
            "Not imported: row(s) %(rows)s for the same client (%(client)s) were refused, so none of its rows were imported.",
            rows=rows,
            client=client_name,
        )
    )
