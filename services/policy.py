"""Who may do what to whom inside a bureau: the one home of every authority rule.

Every surface asks here — Flask-Admin's create/edit/delete forms, row and bulk actions, the client page's tabs,
imports, CLI commands that act for a user, and templates (through flags their view computes with ``can``).
Decisions read the *stored* state of the actor and the target (a column query, not the ORM object that a form may
just have changed), so posting a form back with ``staff_role=admin`` cannot make its own check pass.

``actor`` is the acting staff ``User`` or ``None`` for the system (seed, CLI housekeeping, the worker), which may
do anything a rule allows at all.

The table (README "Who may do what" repeats it for people):

| verb | staff | administrator |
|---|---|---|
| catalogue.edit (packages, permissions, templates, assignments grid) | no | yes |
| billing.close | no | yes |
| client.archive | yes (not the internal client) | yes (not the internal client) |
| client.restore, client.delete (only without history) | no | yes |
| person.archive | yes, not an administrator's person | yes, not their own |
| person.restore, person.delete (only without history) | no | yes |
| user.edit_identity (name, e-mail) | not an administrator's | yes |
| user.change_status (block, reactivate), user.set_end_date, user.change_access, user.invite | not an administrator, not themselves | not themselves (invite: anyone invitable) |
| user.set_staff_role | no | yes, never their own |
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import StaffRole, User
from services.errors import DomainError


class PolicyError(DomainError):
    """The actor may not do this; ``str(exc)`` says why, in the user's language."""


class Verb(enum.StrEnum):
    CATALOGUE_EDIT = "catalogue.edit"
    BILLING_CLOSE = "billing.close"
    CLIENT_ARCHIVE = "client.archive"
    CLIENT_RESTORE = "client.restore"
    CLIENT_DELETE = "client.delete"
    PERSON_ARCHIVE = "person.archive"
    PERSON_RESTORE = "person.restore"
    PERSON_DELETE = "person.delete"
    USER_EDIT_IDENTITY = "user.edit_identity"
    USER_CHANGE_STATUS = "user.change_status"
    USER_SET_END_DATE = "user.set_end_date"
    USER_CHANGE_ACCESS = "user.change_access"
    USER_INVITE = "user.invite"
    USER_SET_STAFF_ROLE = "user.set_staff_role"


# Verbs only a bureau administrator may use at all.
ADMIN_ONLY = frozenset(
    {
        Verb.CATALOGUE_EDIT,
        Verb.BILLING_CLOSE,
        Verb.CLIENT_RESTORE,
        Verb.CLIENT_DELETE,
        Verb.PERSON_RESTORE,
        Verb.PERSON_DELETE,
        Verb.USER_SET_STAFF_ROLE,
    }
)
# Verbs on a user (or a person's user) that staff may not use on an administrator.
PROTECTS_ADMINS = frozenset(
    {
        Verb.PERSON_ARCHIVE,
        Verb.USER_EDIT_IDENTITY,
        Verb.USER_CHANGE_STATUS,
        Verb.USER_SET_END_DATE,
        Verb.USER_CHANGE_ACCESS,
        Verb.USER_INVITE,
    }
)
# Verbs nobody may use on their own user.
NOT_ON_ONESELF = frozenset(
    {Verb.USER_CHANGE_STATUS, Verb.USER_SET_STAFF_ROLE, Verb.PERSON_ARCHIVE, Verb.USER_SET_END_DATE}
)

REFUSALS = {
    "admin_only": _l("Only a bureau administrator can do this."),
    "protects_admin": _l("Only a bureau administrator can change an administrator."),
    "oneself": _l("You cannot do this to your own user."),
}


@dataclass(frozen=True)
class Stored:
    """A user's authority as the database holds it."""

    user_id: int
    bureau_id: int
    staff_role: StaffRole | None

    @property
    def is_admin(self) -> bool:
        return self.staff_role == StaffRole.ADMIN


def stored(session: Session, user_id: int | None) -> Stored | None:
    """The user's stored bureau and staff role, read with a column query (pending changes are not flushed)."""
    if user_id is None:
        return None
    with session.no_autoflush:
        row = session.execute(select(User.bureau_id, User.staff_role).where(User.id == user_id)).first()
    return Stored(user_id, row.bureau_id, row.staff_role) if row is not None else None


def _target_user_id(target: object) -> int | None:
    """The user a target stands for: a User, a Person's user, or None (clients, packages, months)."""
    from models import Person

    if isinstance(target, User):
        return target.id
    if isinstance(target, Person):
        user = target.user
        return user.id if user is not None else None
    return None


def refusal(session: Session, actor: User | None, verb: Verb, target: object = None) -> str | None:
    """Why ``actor`` may not ``verb`` the ``target``, or None when it may."""
    if actor is None:
        return None
    me = stored(session, actor.id)
    if me is None or me.staff_role is None:
        return str(REFUSALS["admin_only"])
    if verb in ADMIN_ONLY and not me.is_admin:
        return str(REFUSALS["admin_only"])
    target_id = _target_user_id(target)
    if target_id is not None:
        if verb in NOT_ON_ONESELF and target_id == me.user_id:
            return str(REFUSALS["oneself"])
        if verb in PROTECTS_ADMINS and not me.is_admin:
            other = stored(session, target_id)
            if other is not None and other.is_admin:
                return str(REFUSALS["protects_admin"])
    return None


def can(session: Session, actor: User | None, verb: Verb, target: object = None) -> bool:
    """Whether to offer the action (templates and menus ask this; the action itself calls ``check``)."""
    return refusal(session, actor, verb, target) is None


def check(session: Session, actor: User | None, verb: Verb, target: object = None) -> None:
    """Raise PolicyError with the reason unless ``actor`` may ``verb`` the ``target``."""
    reason = refusal(session, actor, verb, target)
    if reason is not None:
        raise PolicyError(reason)
