"""Keeping a client's company data in step with the company register ("Oppdater fra Brønnøysund").

``registry_checked_at`` is when the register itself last gave the data: the time in the record's ``fetched_at``,
never "now" for a kept (cached) answer, and untouched when the register is down or answers nonsense.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask_babel import lazy_gettext as _
from sqlalchemy.orm import Session
from stdnum.no import orgnr

from models import Client
from services.registry import Address, CompanyRecord, CompanyRegistry, CompanyStatus, RegistryError
from services.registry.messages import error_kind, user_message

BATCH_SIZE = 100

FIELD_LABELS = {
    "name": _("Company name"),
    "organisation_form": _("Organisation form"),
    "business_address_lines": _("Business address"),
    "business_postal_code": _("Postcode"),
    "business_city": _("City"),
    "business_country_code": _("Country code"),
    "postal_address_lines": _("Postal address"),
    "postal_postal_code": _("Postal address postcode"),
    "postal_city": _("Postal address city"),
    "postal_country_code": _("Postal address country code"),
}

STATUS_WARNINGS = {
    CompanyStatus.BANKRUPT: _("The register says the company is bankrupt (konkurs)."),
    CompanyStatus.WINDING_UP: _("The register says the company is being wound up (under avvikling)."),
    CompanyStatus.FORCED_DISSOLUTION: _("The register says the company is under forced dissolution."),
    CompanyStatus.RECONSTRUCTION: _("The register says the company is in reconstruction negotiations."),
    CompanyStatus.DELETED: _("The register says the company is deleted."),
    CompanyStatus.REMOVED: _("The company has been removed from the register for legal reasons."),
}


def client_label(client_or_name: Client | str | None, org_number: str | None = None) -> str:
    """How a refresh names a client to the bureau: "Bodø Bygg AS (910000012)"."""
    if isinstance(client_or_name, Client):
        client_or_name, org_number = client_or_name.name, client_or_name.org_number
    name = client_or_name or "–"
    return f"{name} ({org_number})" if org_number else name


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    old: str | None
    new: str | None


def address_values(prefix: str, address: Address | None) -> dict[str, str | None]:
    if address is None:
        return {f"{prefix}_{key}": None for key in ("address_lines", "postal_code", "city", "country_code")}
    return {
        f"{prefix}_address_lines": "\n".join(address.lines) or None,
        f"{prefix}_postal_code": address.postal_code,
        f"{prefix}_city": address.city,
        f"{prefix}_country_code": address.country_code,
    }


def registry_values(record: CompanyRecord) -> dict[str, str | None]:
    """The client fields the register decides, as the register gives them."""
    values: dict[str, str | None] = {"name": record.name, "organisation_form": record.organisation_form}
    values |= address_values("business", record.business_address)
    values |= address_values("postal", record.postal_address)
    # A deleted or removed company keeps what we know: the register no longer has its data.
    if record.status in (CompanyStatus.DELETED, CompanyStatus.REMOVED):
        return {}
    return values


# The country a Norwegian register means when an address carries no country code of its own.
HOME_COUNTRY = "no"
_CARE_OF = re.compile(r"\bc\s*/\s*o\b", re.IGNORECASE)


def comparable(field_name: str, value: str | None) -> str:
    """A value as the register compares it: whitespace, line endings and case do not count.

    The register is case-insensitive (it keeps names and places in capitals), ``c/o`` is the same however it is
    spelt, a form's address has CR LF line endings where the register has none, and a Norwegian address without a
    country code is in Norway: so "NO" and no country code are the same country.
    """
    text = value or ""
    if field_name.endswith("_address_lines"):
        lines = (" ".join(line.split()) for line in text.splitlines())
        text = "\n".join(line for line in lines if line)
        text = _CARE_OF.sub("c/o", text)
    else:
        text = " ".join(text.split())
    if field_name.endswith("_postal_code"):
        text = text.replace(" ", "")
    text = text.casefold()
    if field_name.endswith("_country_code") and text == HOME_COUNTRY:
        return ""
    return text


def differs(field_name: str, old: str | None, new: str | None) -> bool:
    """Whether the register's ``new`` is a real change of the client's ``old`` (never "X → X")."""
    return comparable(field_name, old) != comparable(field_name, new)


def diff(client: Client, record: CompanyRecord) -> list[FieldChange]:
    """Field by field, what applying the register's data would change; equal values after ``comparable`` are not."""
    changes = []
    for name, new in registry_values(record).items():
        old = getattr(client, name)
        if differs(name, old, new):
            changes.append(FieldChange(name, str(FIELD_LABELS[name]), old, new))
    return changes


def warnings(record: CompanyRecord) -> list[str]:
    """What the bureau must be told loudly about the company's state in the register."""
    found = [str(STATUS_WARNINGS[record.status])] if record.status in STATUS_WARNINGS else []
    return found + [str(remark) for remark in record.remarks]


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def record_check(client: Client, record: CompanyRecord) -> None:
    """Stamp ``registry_checked_at`` with when the register gave ``record``; never later, never backwards."""
    if record.fetched_at is None:
        return  # nobody knows when (or whether) the register said this: it is no check
    checked = client.registry_checked_at
    if checked is None or _aware(record.fetched_at) > _aware(checked):
        client.registry_checked_at = record.fetched_at


def apply(client: Client, record: CompanyRecord) -> list[FieldChange]:
    """Copy the register's data onto the client; returns what changed."""
    changes = diff(client, record)
    for change in changes:
        setattr(client, change.field, change.new)
    client.registry_status = str(record.status)
    record_check(client, record)
    return changes


@dataclass
class RefreshSummary:
    updated: list[Client] = field(default_factory=list)
    unchanged: list[Client] = field(default_factory=list)
    warned: list[tuple[Client, list[str]]] = field(default_factory=list)
    not_found: list[Client] = field(default_factory=list)
    without_number: list[Client] = field(default_factory=list)
    invalid_number: list[Client] = field(default_factory=list)
    # Not checked because the register failed first (slow, down or answering nonsense): left exactly as they were.
    not_checked: list[Client] = field(default_factory=list)
    failed: str | None = None
    # The failure's kind (see ``services.registry.messages.error_kind``): "slow", "unavailable", "nonsense", …
    failed_kind: str | None = None


def refresh_many(session: Session, registry: CompanyRegistry, clients: Sequence[Client]) -> RefreshSummary:
    """Refresh several clients with one register call per 100 numbers, always asking the register afresh.

    A batch the register fails (slow, down, nonsense) changes nothing, and neither do the batches after it: they are
    reported in ``not_checked`` with the reason in ``failed``, never as "not found".
    """
    summary = RefreshSummary()
    numbered = [c for c in clients if c.org_number and orgnr.is_valid(c.org_number)]
    summary.without_number = [c for c in clients if not c.org_number]
    summary.invalid_number = [c for c in clients if c.org_number and not orgnr.is_valid(c.org_number)]
    for start in range(0, len(numbered), BATCH_SIZE):
        batch = numbered[start : start + BATCH_SIZE]
        try:
            # max_age=0: a kept answer is never passed off as this check.
            records = registry.lookup_many([c.org_number for c in batch], max_age=0)
        except RegistryError as exc:
            summary.failed = user_message(exc)
            summary.failed_kind = error_kind(exc)
            summary.not_checked = list(numbered[start:])
            break
        for client in batch:
            record = records.get(client.org_number)
            if record is None:
                summary.not_found.append(client)
                continue
            (summary.updated if apply(client, record) else summary.unchanged).append(client)
            found = warnings(record)
            if found:
                summary.warned.append((client, found))
    session.flush()
    return summary
