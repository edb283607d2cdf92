"""Bulk create clients from a spreadsheet ("Importer kunder"): every row checked, looked up and reported.

The outcomes are those of every import (``services/import_rows.py``): a row is created, a duplicate (its org number
is already a client of the bureau, or a client without org number has its name, or an earlier row of the file is the
same client: skipped) or refused with the reason. ``dry_run`` (the preview) creates each row in a savepoint that is
rolled back.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stdnum.no import orgnr

from models import Client, ContactRole, CustomerTemplate, Person
from services.client_refresh import address_values
from services.clients import DuplicateOrgNumber, NewClient, create_client
from services.errors import DomainError
from services.import_rows import (
    RowResult,
    RowStatus,
    choose,
    column_labels,
    header_aliases,
    problems_text,
    yes_no,
)
from services.inputs import cell_problems, clean_row
from services.orgnumbers import normalise
from services.registry import CompanyRecord, CompanyRegistry, CompanyStatus, RegistryError
from services.registry.messages import user_message
from services.tabular import read_table

HEADER = (
    "org_number",
    "name",
    "template",
    "demo",
    "contact_first_name",
    "contact_last_name",
    "contact_email",
    "contact_phone",
    "contact_role",
)
# Each column's header in Norwegian (the first is the template's); the code name above is accepted too.
NORWEGIAN_HEADER = {
    "org_number": ("organisasjonsnummer", "orgnr", "org.nr."),
    "name": ("navn",),
    "template": ("kundemal",),
    "demo": ("demo",),
    "contact_first_name": ("kontaktperson fornavn",),
    "contact_last_name": ("kontaktperson etternavn",),
    "contact_email": ("kontaktperson e-post",),
    "contact_phone": ("kontaktperson telefon",),
    "contact_role": ("kontaktperson rolle",),
}
TEMPLATE_HEADER = tuple(names[0] for names in NORWEGIAN_HEADER.values())
LABELS = column_labels(NORWEGIAN_HEADER)
EXAMPLE_ROWS = [
    ("974760673", "", "Norsk standard", "nei", "Kari", "Nordmann", "kari@example.no", "+47 99999999", "daglig leder"),
    ("", "Nystartet Kafé AS", "", "ja", "", "", "", "", ""),
]
CONTACT_ROLES = {
    **{role.value: role for role in ContactRole},
    "daglig leder": ContactRole.CEO,
    "styreleder": ContactRole.CHAIR,
    "styrets leder": ContactRole.CHAIR,
}
# The cells that are stored as they are, and the columns that hold them (their length and one-line rules).
CELL_COLUMNS = {
    "name": Client.__table__.c.name,
    "contact_first_name": Person.__table__.c.first_name,
    "contact_last_name": Person.__table__.c.last_name,
    "contact_email": Person.__table__.c.email,
    "contact_phone": Person.__table__.c.phone,
}


def read_rows(data: bytes, filename: str) -> list[dict[str, str]]:
    """The rows of an uploaded client spreadsheet, its header in Norwegian or by code name."""
    return read_table(data, filename, HEADER, header_aliases(NORWEGIAN_HEADER), TEMPLATE_HEADER)


def import_clients(
    session: Session,
    bureau_id: int,
    rows: list[dict[str, str]],
    registry: CompanyRegistry,
    *,
    dry_run: bool = False,
) -> list[RowResult]:
    """Create one client per row in its own savepoint: a bad row never stops or half-creates another.

    ``dry_run`` (the preview) rolls every row back and reports what the import would do.
    """
    records, registry_error = lookup_rows(rows, registry)
    importer = ClientImport(session, bureau_id, records, registry_error, dry_run=dry_run)
    return [import_row(importer, index, row) for index, row in enumerate(rows, start=2)]


def template_ids(session: Session, bureau_id: int) -> dict[str, int]:
    """The bureau's customer templates by lower-cased name."""
    return {
        name.lower(): template_id
        for template_id, name in session.execute(
            select(CustomerTemplate.id, CustomerTemplate.name).where(CustomerTemplate.bureau_id == bureau_id)
        )
    }


def lookup_rows(rows: list[dict[str, str]], registry: CompanyRegistry) -> tuple[dict[str, CompanyRecord], str | None]:
    """The register's records for the rows' valid org numbers (one call per 100), or the reason it could not answer."""
    numbers = {
        normalise(r["org_number"])
        for r in rows
        if isinstance(r.get("org_number"), str) and "\x00" not in r["org_number"] and orgnr.is_valid(r["org_number"])
    }
    if not numbers:
        return {}, None
    try:
        return registry.lookup_many(sorted(numbers)), None
    except RegistryError as exc:
        return {}, user_message(exc)


class ClientImport:
    """What the rows of one import (or one chunk of its job) share: templates, register answers, rows seen."""

    def __init__(
        self,
        session: Session,
        bureau_id: int,
        records: dict[str, CompanyRecord],
        registry_error: str | None,
        *,
        dry_run: bool = False,
    ) -> None:
        self.session = session
        self.bureau_id = bureau_id
        self.templates = template_ids(session, bureau_id)
        self.records = records
        self.registry_error = registry_error
        self.dry_run = dry_run
        self.seen: dict[str, int] = {}  # a created row's client (org number or name) → its row number

    def existing_by_name(self, name: str) -> Client | None:
        """A client of the bureau without org number and with this name (any case): a name-only row's duplicate."""
        return self.session.scalar(
            select(Client)
            .where(
                Client.bureau_id == self.bureau_id,
                Client.org_number.is_(None),
                func.lower(Client.name) == name.lower(),
            )
            .limit(1)
        )


def _refused(index: int, message: object) -> RowResult:
    return RowResult(index, RowStatus.REFUSED, str(message))


def import_row(importer: ClientImport, index: int, row: dict[str, str]) -> RowResult:
    """One spreadsheet row (``index`` is its row number): checked, then created (or tried) in its own savepoint."""
    session, bureau_id = importer.session, importer.bureau_id
    problems = cell_problems(row, CELL_COLUMNS, LABELS)
    if problems:  # an over-long cell or a NUL: the row is refused, naming each cell
        return _refused(index, problems_text(problems))
    row = clean_row(row, CELL_COLUMNS)
    raw_number = (row.get("org_number") or "").strip()
    name = (row.get("name") or "").strip()
    if not raw_number and not name:
        return _refused(index, _("Give an organisation number or a name."))
    demo = yes_no(row.get("demo"))
    if demo is None:
        return _refused(index, f"{LABELS['demo']}: {_('must be ja or nei, not %(value)s.', value=row.get('demo'))}")
    role_text = (row.get("contact_role") or "").strip()
    role = choose(role_text, CONTACT_ROLES) if role_text else None
    if role_text and role is None:
        message = _("must be daglig leder or styreleder, not %(value)s.", value=role_text)
        return _refused(index, f"{LABELS['contact_role']}: {message}")
    template_name = (row.get("template") or "").strip()
    template_id = importer.templates.get(template_name.lower()) if template_name else None
    if template_name and template_id is None:
        return _refused(index, _("Unknown customer template: %(name)s.", name=template_name))
    data = NewClient(
        name=name,
        is_demo=demo,
        template_id=template_id,
        contact_first_name=row.get("contact_first_name") or None,
        contact_last_name=row.get("contact_last_name") or None,
        contact_email=row.get("contact_email") or None,
        contact_phone=row.get("contact_phone") or None,
        contact_role=role,
    )
    if data.contact_email and not (data.contact_first_name and data.contact_last_name):
        return _refused(index, _("A contact person needs a first and a last name."))
    record = None
    if raw_number:
        if not orgnr.is_valid(raw_number):
            return _refused(index, _("%(value)s is not a valid organisation number.", value=raw_number))
        number = normalise(raw_number)
        key = f"org:{number}"
    else:
        key = f"name:{name.lower()}"
    if key in importer.seen:
        return RowResult(index, RowStatus.DUPLICATE, str(_("The same client as row %(row)s.", row=importer.seen[key])))
    if not raw_number:
        existing = importer.existing_by_name(name)
        if existing is not None:
            return RowResult(
                index, RowStatus.DUPLICATE, str(_("Already a client: %(name)s.", name=existing.name)), existing.id
            )
    else:
        existing = session.scalar(
            select(Client).where(Client.bureau_id == bureau_id, Client.org_number == number).limit(1)
        )
        if existing is not None:  # before the register: a client the bureau has is skipped even when it is down
            return RowResult(
                index, RowStatus.DUPLICATE, str(_("Already a client: %(name)s.", name=existing.name)), existing.id
            )
        if importer.registry_error is not None:
            return _refused(index, importer.registry_error)
        record = importer.records.get(number)
        if record is None:
            return _refused(index, _("%(value)s is not in the company register.", value=number))
        if record.status in (CompanyStatus.DELETED, CompanyStatus.REMOVED):
            return _refused(index, _("%(value)s is deleted from the company register.", value=number))
        data.org_number = number
        data.name = record.name or name
        data.organisation_form = record.organisation_form
        for field_name, value in {
            **address_values("business", record.business_address),
            **address_values("postal", record.postal_address),
        }.items():
            setattr(data, field_name, value)
    savepoint = session.begin_nested()
    try:
        client = create_client(session, bureau_id, data)
        if record is not None:
            client.registry_status = str(record.status)
        session.flush()
    except DuplicateOrgNumber as exc:
        savepoint.rollback()
        return RowResult(
            index, RowStatus.DUPLICATE, str(_("Already a client: %(name)s.", name=exc.existing.name)), exc.existing.id
        )
    except DomainError as exc:
        savepoint.rollback()
        return _refused(index, exc)
    importer.seen[key] = index
    if importer.dry_run:
        name = client.name
        savepoint.rollback()
        return RowResult(index, RowStatus.CREATED, str(_("%(name)s will be created.", name=name)))
    savepoint.commit()
    return RowResult(index, RowStatus.CREATED, str(_("Created %(name)s.", name=client.name)), client.id)
