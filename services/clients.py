"""Client operations."""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Client
from services.errors import DomainError


def find_duplicate_org_number(
    session: Session, bureau_id: int, org_number: str, *, exclude_id: int | None = None
) -> Client | None:
    """The bureau's other client with this org number, if any."""
    query = select(Client).where(Client.bureau_id == bureau_id, Client.org_number == org_number)
    if exclude_id is not None:
        query = query.where(Client.id != exclude_id)
    with session.no_autoflush:
        return session.scalars(query.limit(1)).first()


def mark_demo(session: Session, clients: Iterable[Client]) -> int:
    """Mark clients as demo (one-way). Returns how many changed; internal clients are refused."""
    changed = 0
    for client in clients:
        if client.is_internal:
            raise DomainError(_("The internal client cannot be a demo client."))
        if not client.is_demo:
            client.is_demo = True
            changed += 1
    session.flush()
    return changed
