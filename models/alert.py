"""Register alerts: what the register's change feed said about a client, and where the watch has read up to.

The register watch (``services.registry_watch``) reads ``/oppdateringer/enheter`` for every bureau at once, so its
position is one row for the whole installation; the alerts it raises belong to the bureau whose client they name.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Date, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import OrgNumber, TenantOwned, Versioned, enum_column, utcnow

if TYPE_CHECKING:
    from models.client import Client


class AlertKind(enum.StrEnum):
    BANKRUPT = "bankrupt"
    WINDING_UP = "winding_up"
    FORCED_DISSOLUTION = "forced_dissolution"
    RECONSTRUCTION = "reconstruction"
    DELETED = "deleted"  # Sletting in the feed, or slettedato set
    REMOVED = "removed"  # Fjernet in the feed, or 410 from the register
    NAME_CHANGED = "name_changed"
    ADDRESS_CHANGED = "address_changed"
    ORGANISATION_FORM_CHANGED = "organisation_form_changed"


# Kinds that are recorded on the client at once (registry_status); the others offer "Oppdater fra Brønnøysund".
STATUS_KINDS = frozenset(
    {
        AlertKind.BANKRUPT,
        AlertKind.WINDING_UP,
        AlertKind.FORCED_DISSOLUTION,
        AlertKind.RECONSTRUCTION,
        AlertKind.DELETED,
        AlertKind.REMOVED,
    }
)


class RegistryAlert(TenantOwned, Versioned, db.Model):
    __tablename__ = "registry_alerts"
    __table_args__ = (
        # The same change seen twice never makes two alerts: ``change_key`` names the change (for example the new
        # name, or the bankruptcy date), so a second run, or a second update about the same change, finds it here.
        UniqueConstraint("client_id", "kind", "change_key", name="uq_registry_alerts_change"),
        # Hjem and the alerts grid: a bureau's open alerts, newest first (the few open ones, in a partial index).
        Index(
            "ix_registry_alerts_open",
            "bureau_id",
            "seen_at",
            "id",
            sqlite_where=text("acknowledged_at IS NULL"),
            postgresql_where=text("acknowledged_at IS NULL"),
        ),
        Index("ix_registry_alerts_bureau_seen", "bureau_id", "seen_at", "id"),
        # The daily digest: the few alerts no e-mail has named yet.
        Index(
            "ix_registry_alerts_undigested",
            "bureau_id",
            "id",
            sqlite_where=text("digested_at IS NULL"),
            postgresql_where=text("digested_at IS NULL"),
        ),
        # The grid's filters: a bureau's alerts of one kind or one client, newest first.
        Index("ix_registry_alerts_bureau_kind_seen", "bureau_id", "kind", "seen_at", "id"),
        Index("ix_registry_alerts_bureau_client_seen", "bureau_id", "client_id", "seen_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True, nullable=False)
    kind: Mapped[AlertKind] = enum_column(AlertKind, name="alert_kind", nullable=False)
    change_key: Mapped[str] = mapped_column(String(200), nullable=False)
    # The client as it was named when the alert was raised (it keeps its label after a rename or archiving).
    org_number: Mapped[str | None] = mapped_column(OrgNumber)
    client_name: Mapped[str] = mapped_column(String(200), nullable=False)
    # What changed: {"old": ..., "new": ...} for name, address and form; {"date": ...} and the like for statuses.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    register_date: Mapped[date | None] = mapped_column(Date)
    update_id: Mapped[int | None] = mapped_column(BigInteger)  # the feed's oppdateringsid that brought it
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_by_label: Mapped[str | None] = mapped_column(String(300))
    # Whether the bureau's administrators have had it in an e-mail digest (ALERT_DIGEST=daily).
    digested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    client: Mapped[Client] = relationship()

    def __str__(self) -> str:
        return f"{self.client_name}: {self.kind.value}"


class RegistryWatchState(db.Model):
    """Where the watch has read the change feed up to: one row (id 1) for the installation."""

    __tablename__ = "registry_watch_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The last oppdateringsid handled; None until the first run has found its starting point.
    position: Mapped[int | None] = mapped_column(BigInteger)
    # Where the first run started (``dato``): REGISTRY_WATCH_SINCE, or the moment of the first run.
    started_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))
    # The lease of the run in progress: one worker (or CLI) at a time reads the feed; a run that died is taken over
    # once its lease has run out. ``lock_token`` fences the run's final write.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lock_token: Mapped[str | None] = mapped_column(String(64))
    # When the last daily alert digest went out (ALERT_DIGEST=daily), for every bureau at once.
    last_digest_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}
