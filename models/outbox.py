"""The e-mail outbox: every e-mail is a row here first, written with the change that caused it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TenantOwned, Timestamped, Versioned, enum_column

if TYPE_CHECKING:
    from models.client import Client


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the next delivery pass
    SENDING = "sending"  # claimed by a worker until locked_until
    SENT = "sent"
    DEFERRED = "deferred"  # a delivery attempt failed; retried at next_attempt_at
    FAILED = "failed"  # given up; only a person re-queues it
    HELD = "held"  # not delivered: no mail server configured


class OutboxMessage(TenantOwned, Versioned, Timestamped, db.Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        # The worker's query: due rows by status, oldest first.
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
        # The grid's sorts and filters within a bureau (newest first by default, ``id`` breaking ties).
        Index("ix_outbox_messages_bureau_created", "bureau_id", "created_at", "id"),
        Index("ix_outbox_messages_bureau_status_created", "bureau_id", "status", "created_at", "id"),
        Index("ix_outbox_messages_bureau_kind_created", "bureau_id", "kind", "created_at", "id"),
        Index("ix_outbox_messages_bureau_recipient", "bureau_id", "recipient"),
        Index("ix_outbox_messages_bureau_attempts", "bureau_id", "attempts"),
        Index("ix_outbox_messages_bureau_sent", "bureau_id", "sent_at"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    recipient: Mapped[str] = mapped_column(String(254), nullable=False)
    subject: Mapped[str] = mapped_column(String(300), nullable=False)
    body_text: Mapped[str] = mapped_column(Text, nullable=False)
    body_html: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"), index=True)
    related: Mapped[str | None] = mapped_column(String(200))

    status: Mapped[OutboxStatus] = enum_column(
        OutboxStatus, name="outbox_status", nullable=False, default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    client: Mapped[Client | None] = relationship()

    def __str__(self) -> str:
        return f"{self.subject} → {self.recipient}"
