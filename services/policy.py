"""Who may do what to whom inside a bureau: the one home of every authority rule.

Every surface asks here — Flask-Admin's create/edit/delete forms, row and bulk actions, the client page's tabs,
imports, CLI commands that act for a user, and templates (through flags their view computes with ``can``).
Decisions read the *stored* state of the actor and the target (a column query, not the ORM object that a form may
just have changed), so posting a form back with ``staff_role=admin`` cannot make its own check pass.

``actor`` is the acting staff ``User`` or ``None`` for the system (seed, CLI housekeeping, the worker), which may
do anything a rule allows at all.

The table (README "Who may do what" repeats it for people). "Staff user" is any user with a staff role (an
administrator or an ordinary employee of the bureau); managing staff is administrator work:

| verb | staff | administrator |
|---|---|---|
| catalogue.edit (packages, permissions, templates, assignments grid) | no | yes |
| billing.close | no | yes |
| outbox.read_text (the e-mail text holds the recipient's personal links) | no | yes |
| client.archive | yes (not the internal client) | yes (not the internal client) |
| client.restore, client.delete (only without history) | no | yes |
| client.add_people (Personer tab "+", people import, giving an employee access to clients) | yes | yes |
| person.archive | yes, not a staff user's person | yes, not their own |
| person.restore, person.delete (only without history) | no | yes, not their own |
| user.edit_identity (name, e-mail) | their own, or a user who is not staff | yes |
| user.change_status (deactivate, reactivate), user.set_end_date | not a staff user, not themselves | not themselves |
| user.change_access (packages, permissions, bureau role, bank, user administration) | not a staff user | yes |
| user.invite | not a staff user; only an invitable user | only an invitable user |
| user.set_staff_role | no | yes, never their own |
| saved_view.change (rename, delete) | their own views | their own views, and the bureau's shared views |

A bureau user (an employee's access to a client, ``PersonKind.RESELLER_USER``) counts as its employee in the "staff"
column: its name, e-mail, bureau role, bank access, end date and status are the employee's, so ordinary staff do not
change a staff employee's access (an administrator's, a colleague's or their own); giving access stays open to staff.

Rules that hold whoever acts (enforced once, in the flush hooks below, so no surface can skip them):

- no change may leave a bureau without an active administrator (``active_admin_clause`` says who counts);
- a user becomes active only by accepting an invitation, by reactivation of a user who already had a login, as a
  bureau user (the employee's own access), or by the system (seed, CLI); nobody sets another user's password.

And one more that every surface editing an e-mail shares (``services.users.change_email``): a new e-mail address for
someone who has logged in puts the user back to *invited* (password and acceptance cleared), so only the owner of the
new address can get a login, through a new invitation.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, event, func, or_, select
from sqlalchemy.orm import Session

from models import Bureau, Client, Person, PersonKind, StaffRole, User, UserStatus
from models.base import has_changed, value_before_flush
from services.errors import DomainError


class PolicyError(DomainError):
    """The actor may not do this; ``str(exc)`` says why, in the user's language."""


class Verb(enum.StrEnum):
    CATALOGUE_EDIT = "catalogue.edit"
    BILLING_CLOSE = "billing.close"
    OUTBOX_READ_TEXT = "outbox.read_text"
    CLIENT_ARCHIVE = "client.archive"
    CLIENT_ADD_PEOPLE = "client.add_people"
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
    SAVED_VIEW_CHANGE = "saved_view.change"


# Verbs only a bureau administrator may use at all.
ADMIN_ONLY = frozenset(
    {
        Verb.CATALOGUE_EDIT,
        Verb.BILLING_CLOSE,
        Verb.OUTBOX_READ_TEXT,
        Verb.CLIENT_RESTORE,
        Verb.CLIENT_DELETE,
        Verb.PERSON_RESTORE,
        Verb.PERSON_DELETE,
        Verb.USER_SET_STAFF_ROLE,
    }
)
# Verbs on a user (or a person's user) that ordinary staff may not use on a staff user (administrator or employee).
PROTECTS_STAFF = frozenset(
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
    {
        Verb.USER_CHANGE_STATUS,
        Verb.USER_SET_STAFF_ROLE,
        Verb.PERSON_ARCHIVE,
        Verb.PERSON_DELETE,
        Verb.USER_SET_END_DATE,
    }
)
# Verbs a staff member may use on their own user although it is a staff user.
ALLOWED_ON_ONESELF = frozenset({Verb.USER_EDIT_IDENTITY})

REFUSALS = {
    "admin_only": _l("Only a bureau administrator can do this."),
    "protects_staff": _l("Only a bureau administrator can manage staff."),
    "oneself": _l("You cannot do this to your own user."),
    "other_bureau": _l("This belongs to another bureau."),
    "internal_client": _l("The internal client holds the bureau's own employees: it cannot be archived or deleted."),
    "last_admin": _l("The bureau would have no active administrator left: make another user administrator first."),
    "activation": _l("A user becomes active only by accepting the invitation: send an invitation instead."),
    "password": _l("Nobody can set another user's password: send an invitation instead."),
    "shared_view": _l("Only the owner of a shared view or a bureau administrator can rename or delete it."),
    "private_view": _l("The saved view was not found. It may have been deleted."),
}


@dataclass(frozen=True)
class Stored:
    """A user's authority as the database holds it."""

    user_id: int
    bureau_id: int
    staff_role: StaffRole | None
    employee_id: int | None = None  # a bureau user's employee: the access is that employee's own

    @property
    def is_admin(self) -> bool:
        return self.staff_role == StaffRole.ADMIN

    @property
    def is_staff(self) -> bool:
        return self.staff_role is not None


_CACHE_KEY = "policy_stored"


def stored(session: Session, user_id: int | None) -> Stored | None:
    """The user's stored bureau and staff role, read with a column query (pending changes are not flushed).

    Remembered in the session until its next flush, commit or rollback, so a page asking ``can`` per row and
    action reads each user once.
    """
    if user_id is None:
        return None
    cache = session.info.setdefault(_CACHE_KEY, {})
    if user_id not in cache:
        with session.no_autoflush:
            row = session.execute(
                select(User.bureau_id, User.staff_role, User.employee_id).where(User.id == user_id)
            ).first()
        cache[user_id] = Stored(user_id, row.bureau_id, row.staff_role, row.employee_id) if row is not None else None
    return cache[user_id]


def _forget_stored(session: Session, *args: Any) -> None:
    session.info.pop(_CACHE_KEY, None)


def _target_user_id(target: object) -> int | None:
    """The user a target stands for: a User, a Person's user, or None (clients, packages, months)."""
    if isinstance(target, User):
        return target.id
    if isinstance(target, Person):
        user = target.user
        return user.id if user is not None else None
    return None


def _target_bureau_id(target: object) -> int | None:
    return getattr(target, "bureau_id", None) if target is not None else None


def _state_refusal(verb: Verb, target: object) -> str | None:
    """Rules of the target's state that decide whether the verb makes sense at all (e.g. who can be invited)."""
    if verb in (Verb.CLIENT_ARCHIVE, Verb.CLIENT_DELETE) and isinstance(target, Client) and target.is_internal:
        return str(REFUSALS["internal_client"])
    if verb is Verb.USER_INVITE and isinstance(target, User | Person):
        from services.invitations import check_invitable_target

        try:
            check_invitable_target(target, date.today())
        except DomainError as exc:
            return str(exc)
    return None


def refusal(session: Session, actor: User | None, verb: Verb, target: object = None) -> str | None:
    """Why ``actor`` may not ``verb`` the ``target``, or None when it may."""
    if actor is None:
        return _state_refusal(verb, target)
    me = stored(session, actor.id)
    if me is None or me.staff_role is None:
        return str(REFUSALS["admin_only"])
    if verb in ADMIN_ONLY and not me.is_admin:
        return str(REFUSALS["admin_only"])
    bureau_id = _target_bureau_id(target)
    if bureau_id is not None and bureau_id != me.bureau_id:
        return str(REFUSALS["other_bureau"])
    if verb is Verb.SAVED_VIEW_CHANGE:
        return _saved_view_refusal(session, me, target)
    target_id = _target_user_id(target)
    if target_id is not None:
        oneself = target_id == me.user_id
        if verb in NOT_ON_ONESELF and oneself:
            return str(REFUSALS["oneself"])
        if verb in PROTECTS_STAFF and not me.is_admin and not (oneself and verb in ALLOWED_ON_ONESELF):
            other = stored(session, target_id)
            if other is not None and other.is_staff:
                return str(REFUSALS["protects_staff"])
            # A bureau user is an employee's own access to a client: its name, e-mail, role, bank access, end date
            # and status are the employee's, so a staff employee's (an administrator's, or one's own) is staff work.
            employee = stored(session, other.employee_id) if other is not None else None
            if employee is not None and employee.is_staff:
                return str(REFUSALS["protects_staff"])
    return _state_refusal(verb, target)


def _saved_view_refusal(session: Session, me: Stored, target: object) -> str | None:
    """A private view is its owner's alone (to anyone else it does not exist); a shared one is also the bureau
    administrators' to rename or delete. Read from the stored row, not from the object a form may have changed."""
    from models.saved_view import SavedView

    with session.no_autoflush:
        row = session.execute(
            select(SavedView.owner_id, SavedView.shared, SavedView.bureau_id).where(
                SavedView.id == getattr(target, "id", None)
            )
        ).first()
    if row is None or row.bureau_id != me.bureau_id:
        return str(REFUSALS["private_view"])
    if row.owner_id == me.user_id:
        return None
    if not row.shared:
        return str(REFUSALS["private_view"])
    return None if me.is_admin else str(REFUSALS["shared_view"])


def can(session: Session, actor: User | None, verb: Verb, target: object = None) -> bool:
    """Whether to offer the action (templates and menus ask this; the action itself calls ``check``)."""
    return refusal(session, actor, verb, target) is None


def check(session: Session, actor: User | None, verb: Verb, target: object = None) -> None:
    """Raise PolicyError with the reason unless ``actor`` may ``verb`` the ``target``."""
    reason = refusal(session, actor, verb, target)
    if reason is not None:
        raise PolicyError(reason)


def is_admin(session: Session, actor: User | None) -> bool:
    """Whether the actor is stored as a bureau administrator (the system counts as one)."""
    if actor is None:
        return True
    me = stored(session, actor.id)
    return me is not None and me.is_admin


# --- rules that hold whoever acts: checked on every flush ----------------------------------------


def active_admin_clause(today: date) -> ColumnElement[bool]:
    """The one definition of an active administrator: admin role, active, not archived, not past the end date."""
    return and_(
        User.staff_role == StaffRole.ADMIN,
        User.status == UserStatus.ACTIVE,
        User.archived_at.is_(None),
        or_(User.end_date.is_(None), User.end_date >= today),
    )


def active_admin_counts(session: Session, bureau_ids: set[int], today: date | None = None) -> dict[int, int]:
    """How many active administrators each bureau has, as the database holds it now."""
    if not bureau_ids:
        return {}
    rows = session.execute(
        select(User.bureau_id, func.count(User.id))
        .where(User.bureau_id.in_(bureau_ids), active_admin_clause(today or date.today()))
        .group_by(User.bureau_id)
    )
    counts = dict.fromkeys(bureau_ids, 0)
    counts.update({bureau_id: count for bureau_id, count in rows})
    return counts


_accepting: contextvars.ContextVar[bool] = contextvars.ContextVar("policy_accepting_invitation", default=False)


@contextmanager
def accepting_invitation() -> Iterator[None]:
    """The invitation page: inside this block a user may become active and set their own password."""
    token = _accepting.set(True)
    try:
        yield
    finally:
        _accepting.reset(token)


AUTHORITY_FIELDS = ("staff_role", "status", "end_date", "archived_at")
_WATCH_KEY = "policy_admin_bureaus"


def _bureaus_to_watch(session: Session) -> set[int]:
    """Bureaus where this flush could end an active administrator: role, status or end date, or a deletion."""
    watched = {
        obj.bureau_id
        for obj in session.dirty
        if isinstance(obj, User) and any(has_changed(obj, key) for key in AUTHORITY_FIELDS)
    }
    watched |= {obj.bureau_id for obj in session.deleted if isinstance(obj, User | Person | Client)}
    watched -= {obj.id for obj in session.deleted if isinstance(obj, Bureau)}
    watched.discard(None)
    return watched


def _has_had_login(user: User) -> bool:
    return bool(value_before_flush(user, "accepted_at") or value_before_flush(user, "password_hash"))


def _check_activation(session: Session, actor_id: int | None) -> None:
    """A user becomes active only by the invitation, a reactivation after a login, as a bureau user, or the system."""
    if actor_id is None or _accepting.get():
        return
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, User):
            continue
        if has_changed(obj, "password_hash") and obj.id != actor_id and obj.password_hash is not None:
            raise PolicyError(str(REFUSALS["password"]))
        kind = obj.person.kind if obj.person is not None else obj.person_kind  # person_kind syncs during flush
        if obj.status != UserStatus.ACTIVE or kind is PersonKind.RESELLER_USER:
            continue
        if obj in session.new:
            raise PolicyError(str(REFUSALS["activation"]))
        if has_changed(obj, "status"):
            was = value_before_flush(obj, "status")
            if not (was == UserStatus.BLOCKED and _has_had_login(obj)):
                raise PolicyError(str(REFUSALS["activation"]))


def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    from services.audit import current_actor_id

    _check_activation(session, current_actor_id())
    watched = _bureaus_to_watch(session)
    if watched:
        with session.no_autoflush:
            counts = active_admin_counts(session, watched)
        keep = {bureau_id for bureau_id, count in counts.items() if count > 0}
        session.info[_WATCH_KEY] = session.info.get(_WATCH_KEY, set()) | keep


def _after_flush(session: Session, flush_context: Any) -> None:
    _forget_stored(session)
    watched = session.info.pop(_WATCH_KEY, set())
    if not watched:
        return
    counts = active_admin_counts(session, watched)
    if any(count == 0 for count in counts.values()):
        raise PolicyError(str(REFUSALS["last_admin"]))


def register_policy() -> None:
    """Listen once per process on every ORM session (create_app calls this, like ``register_audit``)."""
    if event.contains(Session, "before_flush", _before_flush):
        return
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
    for name in ("after_commit", "after_rollback", "after_soft_rollback"):
        event.listen(Session, name, _forget_stored)
