"""Failed logins, kept in the database so the throttle holds across processes and gunicorn workers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import Versioned, utcnow


class LoginFailure(Versioned, db.Model):
    """One failed login, counted against a key: ``account:<e-mail>`` or ``address:<client address>``.

    Not tenant-owned: a login attempt is not yet in any bureau. Rows are only inserted and deleted (``version``
    is there because every table has one). Rows older than the throttle window are deleted.
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_failed_at", "key", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), nullable=False)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
