"""Revocable sessions: every login cookie carries the user's session token, and one flush hook replaces it.

The hook sees every change however it was made (Flask-Admin forms, bulk actions, services, the CLI), so no surface
can forget to end a user's sessions. A new token is drawn when the user's password, status or staff role changes,
or the e-mail of the user's person; logging out draws one explicitly (``end_sessions``). The same hook keeps
``User.login_email`` in step: the lower-cased e-mail of a staff user, unique across the installation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from models import Person, User
from models.base import has_changed
from models.person import new_session_token

# A change of any of these ends the user's sessions.
REVOKING_USER_FIELDS = ("password_hash", "status", "staff_role")


def normalise_login_email(email: str | None) -> str | None:
    """The one form of a login e-mail that is compared and stored: trimmed and lower-cased."""
    email = (email or "").strip().lower()
    return email or None


def end_sessions(user: User) -> None:
    """End every session of ``user`` (logout, or a change that must log the user out everywhere)."""
    user.session_token = new_session_token()


def login_email_for(user: User) -> str | None:
    """What ``User.login_email`` should hold: a staff user's normalised e-mail, else nothing."""
    if user.staff_role is None or user.person is None:
        return None
    return normalise_login_email(user.person.email)


def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    users: dict[int, User] = {}
    with session.no_autoflush:
        for obj in list(session.new) + list(session.dirty):
            if isinstance(obj, User):
                users[id(obj)] = obj
                if obj not in session.new and has_changed(obj, *REVOKING_USER_FIELDS):
                    end_sessions(obj)
            elif isinstance(obj, Person) and obj not in session.new and has_changed(obj, "email"):
                user = obj.user
                if user is not None:
                    users[id(user)] = user
                    if user not in session.new:
                        end_sessions(user)
        for user in users.values():
            wanted = login_email_for(user)
            if user.login_email != wanted:
                user.login_email = wanted


def register_sessions() -> None:
    """Listen once per process on every ORM session (like ``services.audit.register_audit``)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
