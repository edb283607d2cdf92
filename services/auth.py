"""Staff authentication."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class LoginCandidate:
    """Whom a login attempt may log in and the hash its password is checked against, read before the check.

    The check (scrypt, a tenth of a second of CPU or more) runs with no transaction open: on SQLite a login's
    transaction holds the database's one write lock, and 50 simultaneous logins each holding it through a hash
    outlasted the busy timeout ("database is locked").
    """

    user_id: int | None = None
    password_hash: str | None = None


def login_candidate(session: Session, email: str) -> LoginCandidate:
    """The active staff user of this e-mail with a password, or an empty candidate; reads only."""
    user = find_staff_by_email(session, email)
    if user is None or not user.is_active or not user.password_hash:
        return LoginCandidate()
    return LoginCandidate(user.id, user.password_hash)


def password_matches(candidate: LoginCandidate, password: str) -> bool:
    """Check the password against the candidate's hash, or a dummy hash when there is none (the same time either way)."""
    matches = check_password_hash(candidate.password_hash or _dummy_hash(), password or "")
    return matches and candidate.password_hash is not None


def complete_login(session: Session, candidate: LoginCandidate) -> User | None:
    """Record the login of a candidate whose password matched, if it is still active with that same password."""
    user = session.get(User, candidate.user_id) if candidate.user_id is not None else None
    if user is None or not user.is_active or user.password_hash != candidate.password_hash:
        return None
    if find_staff_by_email(session, user.login_email or "") is not user:
        return None  # no longer a staff login (role or e-mail changed since the password was checked)
    user.last_login_at = utcnow()
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active staff user whose password matches, recording the login time.

    Active means ``User.is_active``: a user past the end date is refused even before it is blocked for the record.
    Exactly one password hash is checked whatever the outcome, so the answer time does not tell whether the e-mail
    belongs to a user. The login page runs the same steps with the transaction ended before the check.
    """
    candidate = login_candidate(session, email)
    if not password_matches(candidate, password):
        return None
    return complete_login(session, candidate)
