"""Bulk create clients from a spreadsheet ("Importer kunder"): every row checked, looked up and reported."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass

from flask_babel import lazy_gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.no import orgnr

from models import Client, ContactRole, CustomerTemplate, Person
from services.client_refresh import address_values
from services.clients import DuplicateOrgNumber, NewClient, create_client
from services.errors import DomainError
from services.inputs import cell_problems, clean_row
from services.orgnumbers import normalise
from services.registry import CompanyRecord, CompanyRegistry, CompanyStatus, RegistryError
from services.registry.messages import user_message

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
EXAMPLE_ROWS = [
    ("974760673", "", "Norsk standard", "no", "Kari", "Nordmann", "kari@example.no", "+47 99999999", "daglig_leder"),
    ("", "Nystartet Kafé AS", "", "yes", "", "", "", "", ""),
]
# The cells that are stored as they are, and the columns that hold them (their length and one-line rules).
CELL_COLUMNS = {
    "name": Client.__table__.c.name,
    "contact_first_name": Person.__table__.c.first_name,
    "contact_last_name": Person.__table__.c.last_name,
    "contact_email": Person.__table__.c.email,
    "contact_phone": Person.__table__.c.phone,
}


class RowStatus(enum.StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    INVALID_NUMBER = "invalid_number"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    UNAVAILABLE = "registry_unavailable"


OK_STATUSES = {RowStatus.CREATED, RowStatus.DUPLICATE}


@dataclass
class RowResult:
    row: int  # the spreadsheet's row number (the header is row 1)
    status: RowStatus
    message: str
    client_id: int | None = None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["status"] = str(self.status)
        data.pop("client_id")
        return data


def _yes_no(value: str) -> bool | None:
    value = value.strip().lower()
    if value in ("", "no", "nei", "n", "false", "0"):
        return False
    if value in ("yes", "ja", "j", "y", "true", "1"):
        return True
    return None


def import_clients(
    session: Session, bureau_id: int, rows: list[dict[str, str]], registry: CompanyRegistry
) -> list[RowResult]:
    """Create one client per row in its own savepoint: a bad row never stops or half-creates another."""
    templates = template_ids(session, bureau_id)
    records, registry_error = lookup_rows(rows, registry)
    results = []
    for index, row in enumerate(rows, start=2):
        result = import_row(session, bureau_id, index, row, templates, records, registry_error)
        results.append(result)
    return results


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
    numbers = {normalise(r["org_number"]) for r in rows if r.get("org_number") and orgnr.is_valid(r["org_number"])}
    if not numbers:
        return {}, None
    try:
        return registry.lookup_many(sorted(numbers)), None
    except RegistryError as exc:
        return {}, user_message(exc)


def import_row(session, bureau_id, index, row, templates, records, registry_error) -> RowResult:
    """One spreadsheet row (``index`` is its row number) checked and created in its own savepoint."""
    problems = cell_problems(row, CELL_COLUMNS)
    if problems:  # an over-long cell or a NUL: the row is refused, naming each cell
        return RowResult(index, RowStatus.INVALID, "; ".join(problems))
    row = clean_row(row, CELL_COLUMNS)
    raw_number = row.get("org_number", "")
    name = row.get("name", "").strip()
    if not raw_number and not name:
        return RowResult(index, RowStatus.INVALID, str(_("Give an organisation number or a name.")))
    demo = _yes_no(row.get("demo", ""))
    if demo is None:
        return RowResult(index, RowStatus.INVALID, str(_("demo must be yes or no.")))
    role_text = row.get("contact_role", "").strip()
    if role_text and role_text not in {r.value for r in ContactRole}:
        return RowResult(index, RowStatus.INVALID, str(_("contact_role must be daglig_leder or styreleder.")))
    template_name = row.get("template", "").strip()
    template_id = templates.get(template_name.lower()) if template_name else None
    if template_name and template_id is None:
        return RowResult(index, RowStatus.INVALID, str(_("Unknown customer template: %(name)s.", name=template_name)))
    data = NewClient(
        name=name,
        is_demo=demo,
        template_id=template_id,
        contact_first_name=row.get("contact_first_name") or None,
        contact_last_name=row.get("contact_last_name") or None,
        contact_email=row.get("contact_email") or None,
        contact_phone=row.get("contact_phone") or None,
        contact_role=ContactRole(role_text) if role_text else None,
    )
    if data.contact_email and not (data.contact_first_name and data.contact_last_name):
        return RowResult(index, RowStatus.INVALID, str(_("A contact person needs a first and a last name.")))
    if raw_number:
        if not orgnr.is_valid(raw_number):
            return RowResult(
                index,
                RowStatus.INVALID_NUMBER,
                str(_("%(value)s is not a valid organisation number.", value=raw_number)),
            )
        number = normalise(raw_number)
        if registry_error is not None:
            return RowResult(index, RowStatus.UNAVAILABLE, registry_error)
        record = records.get(number)
        if record is None:
            return RowResult(
                index, RowStatus.NOT_FOUND, str(_("%(value)s is not in the company register.", value=number))
            )
        if record.status in (CompanyStatus.DELETED, CompanyStatus.REMOVED):
            return RowResult(
                index, RowStatus.NOT_FOUND, str(_("%(value)s is deleted from the company register.", value=number))
            )
        data.org_number = number
        data.name = record.name or name
        data.organisation_form = record.organisation_form
        for key, value in {
            **address_values("business", record.business_address),
            **address_values("postal", record.postal_address),
        }.items():
            setattr(data, key, value)
    savepoint = session.begin_nested()
    try:
        client = create_client(session, bureau_id, data)
        if raw_number:
            client.registry_status = str(records[data.org_number].status)
        session.flush()
    except DuplicateOrgNumber as exc:
        savepoint.rollback()
        return RowResult(
            index, RowStatus.DUPLICATE, str(_("Already a client: %(name)s.", name=exc.existing.name)), exc.existing.id
        )
    except DomainError as exc:
        savepoint.rollback()
        return RowResult(index, RowStatus.INVALID, str(exc))
    savepoint.commit()
    return RowResult(index, RowStatus.CREATED, str(_("Created %(name)s.", name=client.name)), client.id)
