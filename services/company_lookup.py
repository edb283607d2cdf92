"""What "+ Ny kunde"'s register typeahead shows: the register's matches as the bureau needs to see them.

A match says whether the bureau already has the company ("finnes allerede: åpne"), warns when the register marks it
deleted, removed, bankrupt or being wound up, and always has a name to show (a company removed for legal reasons
has none in the register). The contact suggestions say so when the register lists nobody to suggest (an ANS has
partners, no daglig leder or styreleder).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Client, ContactRole
from services.client_refresh import STATUS_WARNINGS
from services.registry import CompanyRecord, CompanyStatus, HolderKind, RoleHolder

NO_CONTACT_IN_REGISTER = _(
    "The register lists no daglig leder or styreleder for this company: fill in the contact person by hand."
)
NO_NAME_IN_REGISTER = _("No name in the register")


@dataclass(frozen=True)
class ExistingClient:
    """The bureau's client that already has a match's org number (archived ones too: the number stays theirs)."""

    id: int
    name: str
    archived: bool


def existing_clients(session: Session, bureau_id: int, org_numbers: Iterable[str]) -> dict[str, ExistingClient]:
    """The bureau's clients with these org numbers, keyed by number (one query)."""
    numbers = sorted({n for n in org_numbers if n})
    if not numbers:
        return {}
    rows = session.execute(
        select(Client.org_number, Client.id, Client.name, Client.archived_at).where(
            Client.bureau_id == bureau_id, Client.org_number.in_(numbers)
        )
    )
    return {number: ExistingClient(id, name, archived_at is not None) for number, id, name, archived_at in rows}


def match_view(record: CompanyRecord, existing: ExistingClient | None) -> dict[str, Any]:
    """One typeahead match: the record's JSON plus ``display_name``, ``warning`` and ``existing``."""
    if record.name:
        display_name = record.name
    elif existing is not None:
        display_name = existing.name  # the register gives no name (removed): the bureau's own is the best there is
    else:
        display_name = str(NO_NAME_IN_REGISTER)
    warning = STATUS_WARNINGS.get(record.status)
    return {
        **record.to_json(),
        "display_name": display_name,
        "warning": str(warning) if warning is not None else None,
        "gone": record.status in (CompanyStatus.DELETED, CompanyStatus.REMOVED),
        "existing": (
            {"id": existing.id, "name": existing.name, "archived": existing.archived} if existing is not None else None
        ),
    }


def search_matches(session: Session, bureau_id: int, records: Sequence[CompanyRecord]) -> list[dict[str, Any]]:
    """The typeahead's matches for the bureau: each with its warning and the bureau's client with its number."""
    existing = existing_clients(session, bureau_id, (r.org_number for r in records))
    return [match_view(record, existing.get(record.org_number)) for record in records]


def contact_suggestions(holders: Sequence[RoleHolder]) -> tuple[list[dict[str, Any]], str | None]:
    """The daglig leder and styreleder to offer as contact person, or none and the sentence saying so."""
    wanted = [h for h in holders if (h.is_general_manager or h.is_chair) and h.kind is HolderKind.PERSON and h.name]
    suggestions = [
        {
            **h.to_json(),
            "contact_role": str(ContactRole.CEO if h.is_general_manager else ContactRole.CHAIR),
        }
        for h in wanted
    ]
    return suggestions, None if suggestions else str(NO_CONTACT_IN_REGISTER)
