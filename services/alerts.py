"""Register alerts as the bureau sees them: the open ones, newest first, and acknowledging them.

The register watch (``services.registry_watch``) raises alerts; every surface that lists or acknowledges them (Hjem,
the alerts grid, the CLI) goes through here, so an alert of another bureau is never listed or touched.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from models import RegistryAlert, User
from models.base import utcnow

MAX_ID = 2**31 - 1  # the id column's range on PostgreSQL (INTEGER)


def open_alerts_query(bureau_id: int) -> Select[tuple[RegistryAlert]]:
    """A bureau's unacknowledged alerts, newest first (read from the partial index ``ix_registry_alerts_open``)."""
    return (
        select(RegistryAlert)
        .where(RegistryAlert.bureau_id == bureau_id, RegistryAlert.acknowledged_at.is_(None))
        .order_by(RegistryAlert.seen_at.desc(), RegistryAlert.id.desc())
    )


def open_alerts(session: Session, bureau_id: int, limit: int = 20) -> list[RegistryAlert]:
    return list(session.scalars(open_alerts_query(bureau_id).limit(limit)))


def count_open(session: Session, bureau_id: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(RegistryAlert)
        .where(RegistryAlert.bureau_id == bureau_id, RegistryAlert.acknowledged_at.is_(None))
    )


def acknowledge(session: Session, bureau_id: int, alert_ids: Iterable[int], user: User) -> int:
    """Mark the bureau's open alerts among ``alert_ids`` as acknowledged by ``user``; returns how many were.

    Ids of another bureau's alerts, of alerts already acknowledged (a double submit, a colleague first) and of
    alerts that do not exist are passed over, so acknowledging twice changes nothing the second time. The caller
    commits.
    """
    # An id beyond the column's range (a 32-bit integer on PostgreSQL) names no alert; binding it would fail there.
    ids = sorted({key for key in (int(i) for i in alert_ids) if 0 < key <= MAX_ID})
    if not ids:
        return 0
    result = session.execute(
        update(RegistryAlert)
        .where(
            RegistryAlert.bureau_id == bureau_id,
            RegistryAlert.id.in_(ids),
            RegistryAlert.acknowledged_at.is_(None),
        )
        .values(
            acknowledged_at=utcnow(),
            acknowledged_by_id=user.id,
            acknowledged_by_label=str(user)[:300],
            version=RegistryAlert.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
