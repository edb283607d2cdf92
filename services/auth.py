"""Staff authentication."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Client, Person, User, UserStatus, utcnow


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
    """Return the active staff user whose password matches, recording the login time."""
    user = find_staff_by_email(session, email)
    if user is None or user.status != UserStatus.ACTIVE or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    session.flush()
    return user
