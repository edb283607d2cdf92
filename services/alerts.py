"""Register alerts as the bureau sees them: the open ones, newest first, and acknowledging them.

The register watch (``services.registry_watch``) raises alerts; every surface that lists or acknowledges them (Hjem,
the alerts grid, the CLI) goes through here, so an alert of another bureau is never listed or touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from models import RegistryAlert, User
from models.base import utcnow

MAX_ID = 2**31 - 1


def open_alerts_query(bureau_id: int) -> Select[tuple[RegistryAlert]]:
    """A bureau's unacknowledged alerts, newest first (read from the partial index ``ix_registry_alerts_open``)."""
    return (
        select(RegistryAlert)
        .where(RegistryAlert.bureau_id == bureau_id, RegistryAlert.acknowledged_at.is_(None))
        .order_by(RegistryAlert.seen_at.desc(), RegistryAlert.id.desc())
    )


def bureau_alerts_query(bureau_id: int, *, open_only: bool = False) -> Select[tuple[RegistryAlert]]:
    """A bureau's alerts, newest first (``ix_registry_alerts_bureau_seen``, or the open ones' partial index)."""
    if open_only:
        return open_alerts_query(bureau_id)
    return (
        select(RegistryAlert)
        .where(RegistryAlert.bureau_id == bureau_id)
        .order_by(RegistryAlert.seen_at.desc(), RegistryAlert.id.desc())
    )


def alert_json(alert: RegistryAlert) -> dict[str, Any]:
    """An alert as the CLI's JSON contract (dates ISO, times UTC)."""
    return {
        "org_number": alert.org_number,
        "client_name": alert.client_name,
        "kind": alert.kind.value,
        "details": alert.details,
        "register_date": alert.register_date.isoformat() if alert.register_date else None,
        "seen_at": _utc(alert.seen_at),
        "acknowledged_at": _utc(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by_label,
    }


def _utc(moment: Any) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


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
    # An id no row can have (beyond the 32-bit id column; PostgreSQL refuses to compare such a value) is passed over.
    ids = sorted({int(i) for i in alert_ids if 0 < int(i) <= MAX_ID})
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
