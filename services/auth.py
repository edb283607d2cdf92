"""Staff authentication."""

from __future__ import annotations

from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from models import User, utcnow
from services.sessions import normalise_login_email


@cache
def _dummy_hash() -> str:
    """A hash of no one's password, checked when there is no user, so an unknown e-mail takes as long as a known one."""
    return generate_password_hash("no user has this password")


def find_staff_by_email(session: Session, email: str) -> User | None:
    """The staff user (a user of an internal client with a staff role) whose login e-mail this is."""
    login_email = normalise_login_email(email)
    if login_email is None:
        return None
    user = session.scalars(select(User).where(User.login_email == login_email)).first()
    if user is None or not user.is_staff or not user.person.client.is_internal:
        return None
    return user


def burn_password_check(password: str) -> None:
    """Spend the time of one password check on nothing (a throttled or unknown login)."""
    check_password_hash(_dummy_hash(), password or "")


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active staff user whose password matches, recording the login time.

    Active means ``User.is_active``: a user past the end date is refused even before it is blocked for the record.
    Exactly one password hash is checked whatever the outcome, so the answer time does not tell whether the e-mail
    belongs to a user.
    """
    user = find_staff_by_email(session, email)
    usable = user is not None and user.is_active and bool(user.password_hash)
    matches = check_password_hash(user.password_hash if usable else _dummy_hash(), password or "")
    if not usable or not matches:
        return None
    user.last_login_at = utcnow()
    session.flush()
    return user
