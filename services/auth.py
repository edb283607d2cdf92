"""Staff authentication."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Client, Person, User, utcnow


def find_staff_by_email(session: Session, email: str) -> User | None:
    """The staff user (a user of an internal client with a staff role) with this e-mail."""
    return session.scalars(
        select(User)
        .join(User.person)
        .join(Person.client)
        .where(
            func.lower(Person.email) == email.strip().lower(),
            Client.is_internal.is_(True),
            User.staff_role.is_not(None),
        )
        .order_by(User.id)
        .limit(1)
    ).first()


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active staff user whose password matches, recording the login time.

    Active means ``User.is_active``: a user past the end date is refused even before it is blocked for the record.
    """
    user = find_staff_by_email(session, email)
    if user is None or not user.is_active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    session.flush()
    return user
