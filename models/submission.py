"""Used one-time tokens of the create forms, so that a second POST of the same form creates nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import TenantOwned, Versioned, utcnow


class SubmissionToken(TenantOwned, Versioned, db.Model):
    """A create form's token, stored in the same transaction as what the form created (``services/submissions.py``).

    The unique ``nonce`` is the lock: of two POSTs of one form, in one process or two, on either engine, only one
    can insert it; the other waits for that transaction and then finds the row (and the first result's page) or,
    when the first rolled back, goes ahead itself. Rows older than the token's lifetime are deleted by the worker.
    """

    __tablename__ = "submission_tokens"
    __table_args__ = (UniqueConstraint("nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32), nullable=False)
    form: Mapped[str] = mapped_column(String(100), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Where the first submission led (the new client's page, the new record's details), shown to a repeat.
    result_url: Mapped[str | None] = mapped_column(String(500))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
