"""Login throttling, counted in the database so that it holds across processes and gunicorn workers.

Each failed login adds one row per key: the account (the normalised e-mail) and the client address. A key with
``LOGIN_MAX_FAILURES_PER_ACCOUNT`` (or ``..._PER_ADDRESS``) failures within ``LOGIN_THROTTLE_MINUTES`` is throttled
until the oldest of those failures leaves the window. Attempts while throttled are refused without looking at the
password and are not counted, so an attacker cannot keep someone's account locked for longer than one window.
A successful login clears the account's failures (not the address's). Rows older than the window are deleted.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models import LoginFailure, utcnow
from services.sessions import normalise_login_email


def _window() -> timedelta:
    return timedelta(minutes=int(current_app.config.get("LOGIN_THROTTLE_MINUTES", 15)))


def _keys(email: str | None, address: str | None) -> list[tuple[str, int]]:
    config = current_app.config
    keys = []
    account = normalise_login_email(email)
    if account:
        keys.append((f"account:{account}"[:300], int(config.get("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5))))
    if address:
        keys.append((f"address:{address}"[:300], int(config.get("LOGIN_MAX_FAILURES_PER_ADDRESS", 30))))
    return keys


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def hold_account(session: Session, email: str | None) -> None:
    """Make simultaneous attempts at one account count one after the other until this transaction ends.

    SQLite's write lock does that already; PostgreSQL takes a transaction-scoped advisory lock on the account.
    """
    account = normalise_login_email(email)
    if account and session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"account:{account}"[:300]))))


def seconds_to_wait(session: Session, email: str | None, address: str | None, *, now: datetime | None = None) -> int:
    """How many seconds until this e-mail and address may try again; 0 when not throttled."""
    now = now or utcnow()
    window = _window()
    wait = 0.0
    for key, limit in _keys(email, address):
        if limit <= 0:
            continue
        recent = session.scalars(
            select(LoginFailure.failed_at)
            .where(LoginFailure.key == key, LoginFailure.failed_at > now - window)
            .order_by(LoginFailure.failed_at.desc())
            .limit(limit)
        ).all()
        if len(recent) >= limit:
            free_at = _as_utc(recent[-1]) + window
            wait = max(wait, (free_at - now).total_seconds())
    return math.ceil(wait) if wait > 0 else 0


def record_failure(session: Session, email: str | None, address: str | None, *, now: datetime | None = None) -> None:
    """Count one failed login against the account and the address; forget failures older than the window.

    The login page counts an attempt against the account before it checks the password (so simultaneous guesses
    cannot slip past the limit; a right password then clears the account) and against the address once it failed.
    """
    now = now or utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - _window()))
    for key, _limit in _keys(email, address):
        session.add(LoginFailure(key=key, failed_at=now))
    session.flush()


def clear_account(session: Session, email: str | None) -> None:
    """A successful login forgets the account's failures."""
    account = normalise_login_email(email)
    if account:
        session.execute(delete(LoginFailure).where(LoginFailure.key == f"account:{account}"[:300]))
        session.flush()
