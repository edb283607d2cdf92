"""The change history: who changed what, when, from what to what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import Versioned, utcnow


class AuditEntry(Versioned, db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_entity", "entity", "entity_id"),
        # The event log grid's sorts and filters within a bureau (newest first by default).
        Index("ix_audit_entries_bureau_at", "bureau_id", "at", "id"),
        Index("ix_audit_entries_bureau_entity_at", "bureau_id", "entity", "at", "id"),
        Index("ix_audit_entries_bureau_action_at", "bureau_id", "action", "at", "id"),
        Index("ix_audit_entries_bureau_actor", "bureau_id", "actor_label"),
        Index("ix_audit_entries_bureau_entity_id", "bureau_id", "entity_id"),
        # The event log's client filter and a client's own log: everything about one client, newest first.
        Index("ix_audit_entries_bureau_client_at", "bureau_id", "client_id", "at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bureau_id: Mapped[int | None] = mapped_column(ForeignKey("bureaus.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str | None] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(10), nullable=False)  # create / update / delete
    entity: Mapped[str] = mapped_column(String(50), nullable=False)
    entity_id: Mapped[int] = mapped_column(Integer, nullable=False)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    # What the record was called when the change was written ("Bodø Bygg AS (910000012)", a person's name), so the
    # log still names it after the record is archived or deleted.
    record_label: Mapped[str | None] = mapped_column(String(300))
    # The client the record belongs to (the client itself, its people, users and their packages); no foreign key:
    # the entry outlives the client.
    client_id: Mapped[int | None] = mapped_column(Integer)
    client_label: Mapped[str | None] = mapped_column(String(300))

    actor = relationship("User", foreign_keys=[actor_id])

    def __str__(self) -> str:
        return f"{self.action} {self.entity}#{self.entity_id}"
