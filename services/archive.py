"""Archive instead of delete: clients, people and users with history are archived, never lost.

An archived record is gone from the default grids and the pickers (``is_live``), keeps all of its history, and a
client's org number stays reserved in the bureau (the unique constraint does not look at ``archived_at``).
Only a record without history (``history_of`` is empty) can be deleted for good, by an administrator.

Decisions:
- staff may archive customer clients and people (routine and reversible); never the internal client, never an
  administrator's person (``services.policy``); restoring and deleting for good are for administrators;
- archiving blocks the users concerned that are not blocked yet (they cannot log in to the suite and stop being billed
  from that day); restoring does not reactivate them;
- a user is archived together with its person (one login per person);
- while a client is archived, nothing of it changes: not the client, its people, their users or packages, nor new
  e-mails for it (``refuse_changes_to_archived``, a flush hook, so every surface gets the same answer).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from models import (
    AuditEntry,
    BillingSnapshotRow,
    Client,
    ConsentStatus,
    OutboxMessage,
    OutboxStatus,
    PackageAssignment,
    Person,
    User,
    UserStatus,
    utcnow,
)
from services import policy
from services.errors import DomainError
from services.invitations import block_user
from services.policy import Verb

ARCHIVABLE = (Client, Person, User)
# Columns that may still change on an archived row: the archive itself and bookkeeping that is no change of content.
UNGUARDED_COLUMNS = frozenset({"archived_at", "version", "last_login_at", "session_token", "login_email"})
# An e-mail in these states may already have left (or is leaving): it is history, not something to cancel.
SENT_STATES = (OutboxStatus.SENT, OutboxStatus.SENDING)
# Changes that are no history by themselves: what "+ Ny kunde" sets up right after the insert (an answered consent or
# a delivered e-mail counts on its own), and archiving or restoring.
CREATION_FIELDS = frozenset(
    {"contact_person_id", "consent_status", "consent_requested_at", "consent_nonce", "archived_at"}
)


def is_live(model: type) -> ColumnElement[bool]:
    """SQL: the row is not archived, neither itself nor through its client (grids, pickers, lookups)."""
    if model is Client:
        return Client.archived_at.is_(None)
    if model is Person:
        return Person.archived_at.is_(None) & ~Person.client.has(Client.archived_at.is_not(None))
    if model is User:
        return User.archived_at.is_(None) & ~User.person.has(Person.client.has(Client.archived_at.is_not(None)))
    raise TypeError(f"{model.__name__} is not archivable")


def is_archived(model: type) -> ColumnElement[bool]:
    """SQL: the row is archived, itself or through its client (the grids' filter "Archived: yes")."""
    return ~is_live(model)


def client_of(obj: Client | Person | User) -> Client | None:
    if isinstance(obj, Client):
        return obj
    person = obj.person if isinstance(obj, User) else obj
    return person.client if person is not None else None


def archived_client(obj: Client | Person | User) -> Client | None:
    """The archived client that freezes ``obj``, if any."""
    client = client_of(obj)
    return client if client is not None and client.archived_at is not None else None


# --- history ------------------------------------------------------------------------------------------


def _audit_beyond_creation(session: Session, entity: str, entity_id: int) -> bool:
    """Changes recorded after the record was made, other than ``CREATION_FIELDS``."""
    updates = session.scalars(
        select(AuditEntry.changes)
        .where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id, AuditEntry.action != "create")
        .order_by(AuditEntry.id)
        .limit(100)
    )
    return any(set(changes or {}) - CREATION_FIELDS for changes in updates)


def _user_history(session: Session, user: User) -> list[str]:
    reasons = []
    if user.accepted_at or user.invitation_sent_at or user.last_login_at or user.status != UserStatus.INVITED:
        reasons.append(str(_l("the user has been invited or active")))
    if session.scalar(select(PackageAssignment.id).where(PackageAssignment.user_id == user.id).limit(1)):
        reasons.append(str(_l("packages have been assigned to the user")))
    if session.scalar(select(User.id).where(User.employee_id == user.id).limit(1)):
        reasons.append(str(_l("the user is a bureau user on clients")))
    if session.scalar(select(AuditEntry.id).where(AuditEntry.actor_id == user.id).limit(1)):
        reasons.append(str(_l("the user has made changes that are in the history")))
    if _audit_beyond_creation(session, "users", user.id):
        reasons.append(str(_l("the user has been changed since it was created")))
    related = session.scalar(
        select(OutboxMessage.id).where(
            OutboxMessage.related == f"user:{user.id}", OutboxMessage.status.in_(SENT_STATES)
        )
    )
    if related:
        reasons.append(str(_l("e-mails have been sent to the user")))
    return reasons


def _person_history(session: Session, person: Person, *, deleted_client: Client | None = None) -> list[str]:
    """``deleted_client``: the client deleted with the person (being its contact person is then no history)."""
    reasons = []
    if person.user is not None:
        reasons += _user_history(session, person.user)
    contact_of = select(Client.id).where(Client.contact_person_id == person.id)
    if deleted_client is not None:
        contact_of = contact_of.where(Client.id != deleted_client.id)
    if session.scalar(contact_of.limit(1)):
        reasons.append(str(_l("the person is a client's contact person")))
    if _audit_beyond_creation(session, "persons", person.id):
        reasons.append(str(_l("the person has been changed since they were created")))
    return reasons


def _client_history(session: Session, client: Client) -> list[str]:
    reasons = []
    users = session.scalar(
        select(func.count()).select_from(User).join(User.person).where(Person.client_id == client.id)
    )
    if users:
        reasons.append(str(_l("%(count)s person(s) with a user", count=users)))
    assigned = session.scalar(
        select(PackageAssignment.id)
        .join(PackageAssignment.user)
        .join(User.person)
        .where(Person.client_id == client.id)
        .limit(1)
    )
    if assigned:
        reasons.append(str(_l("package assignments (billing basis)")))
    billed = session.scalar(select(BillingSnapshotRow.id).where(BillingSnapshotRow.client_id == client.id).limit(1))
    if billed:
        reasons.append(str(_l("the client is in a closed billing month")))
    if client.consent_status in (ConsentStatus.GIVEN, ConsentStatus.DECLINED) or client.consent_at is not None:
        reasons.append(str(_l("the GDPR consent has been answered")))
    sent = session.scalar(
        select(OutboxMessage.id)
        .where(OutboxMessage.client_id == client.id, OutboxMessage.status.in_(SENT_STATES))
        .limit(1)
    )
    if sent:
        reasons.append(str(_l("e-mails have been sent for the client")))
    if _audit_beyond_creation(session, "clients", client.id):
        reasons.append(str(_l("the client has been changed since it was created")))
    for person in client.persons:
        if person.user is None and _person_history(session, person, deleted_client=client):
            reasons.append(str(_l("%(name)s has history", name=person.full_name)))
    return reasons


def history_of(session: Session, obj: Client | Person | User) -> list[str]:
    """Why ``obj`` has history (empty: it can be deleted for good). Each reason is a user-facing phrase."""
    with session.no_autoflush:
        if isinstance(obj, Client):
            return _client_history(session, obj)
        if isinstance(obj, User):
            return _person_history(session, obj.person)
        if isinstance(obj, Person):
            return _person_history(session, obj)
    raise TypeError(f"{type(obj).__name__} is not archivable")


# --- archive, restore, delete ------------------------------------------------------------------------

VERBS = {
    Client: (Verb.CLIENT_ARCHIVE, Verb.CLIENT_RESTORE, Verb.CLIENT_DELETE),
    Person: (Verb.PERSON_ARCHIVE, Verb.PERSON_RESTORE, Verb.PERSON_DELETE),
    User: (Verb.PERSON_ARCHIVE, Verb.PERSON_RESTORE, Verb.PERSON_DELETE),
}


def verbs_for(model: type) -> tuple[Verb, Verb, Verb]:
    """The policy verbs (archive, restore, delete) for a grid's model."""
    return VERBS[model]


def _label(obj: Client | Person | User) -> str:
    if isinstance(obj, Client):
        return obj.name
    person = obj.person if isinstance(obj, User) else obj
    return person.full_name


def _person(obj: Person | User) -> Person:
    return obj.person if isinstance(obj, User) else obj


def archive_refusal(session: Session, obj: Client | Person | User, *, actor: User | None) -> str | None:
    """Why ``actor`` may not archive ``obj`` now, or None (the page asks this to offer the button)."""
    reason = policy.refusal(session, actor, verbs_for(type(obj))[0], obj)
    if reason is not None:
        return reason
    frozen = archived_client(obj) if not isinstance(obj, Client) else None
    if frozen is not None:
        return str(_l("%(client)s is archived already, and its people with it.", client=frozen.name))
    return None


def archive(session: Session, obj: Client | Person | User, *, actor: User | None) -> int:
    """Archive a client, person or user and block the users concerned; returns how many users were blocked."""
    if obj.archived_at is not None:
        return 0
    policy.check(session, actor, verbs_for(type(obj))[0], obj)
    refusal = archive_refusal(session, obj, actor=actor)
    if refusal is not None:
        raise DomainError(refusal)
    if isinstance(obj, Client):
        users = [p.user for p in obj.persons if p.user is not None]
    else:
        person = _person(obj)
        users = [person.user] if person.user is not None else []
    # No change may leave the bureau without an active administrator: the policy's flush hook refuses that one.
    blocked = sum(block_user(user) for user in users)
    now = utcnow()
    session.flush()  # the users are blocked while their client is still open
    if isinstance(obj, Client):
        obj.archived_at = now
    else:
        person = _person(obj)
        person.archived_at = now
        if person.user is not None:
            person.user.archived_at = now
    session.flush()
    return blocked


def restore(session: Session, obj: Client | Person | User, *, actor: User | None) -> None:
    """Bring an archived record back into the grids; its users stay blocked until someone reactivates them."""
    policy.check(session, actor, verbs_for(type(obj))[1], obj)
    if isinstance(obj, Client):
        obj.archived_at = None
    else:
        frozen = archived_client(obj)
        if frozen is not None:
            raise DomainError(_l("%(client)s is archived: restore the client first.", client=frozen.name))
        person = _person(obj)
        person.archived_at = None
        if person.user is not None:
            person.user.archived_at = None
    session.flush()


def delete_permanently(session: Session, obj: Client | Person | User, *, actor: User | None) -> None:
    """Delete a record without history for good (administrators only); anything with history is refused."""
    policy.check(session, actor, verbs_for(type(obj))[2], obj)
    if isinstance(obj, User | Person) and _person(obj).user is not None and _person(obj).user.is_staff:
        raise DomainError(_l("Staff cannot be deleted: archive them instead."))
    reasons = history_of(session, obj)
    if reasons:
        raise DomainError(
            _l(
                "%(name)s has history (%(reasons)s): archive it instead.",
                name=_label(obj),
                reasons="; ".join(reasons),
            )
        )
    if isinstance(obj, Client):
        # E-mails that never left die with the client (one already sent would have counted as history).
        for message in session.scalars(select(OutboxMessage).where(OutboxMessage.client_id == obj.id)):
            session.delete(message)
        session.delete(obj)  # its people go with it (the ORM clears the contact person first)
    else:
        person = _person(obj)
        if person.user is not None:
            unsent = select(OutboxMessage).where(OutboxMessage.related == f"user:{person.user.id}")
            for message in session.scalars(unsent):
                session.delete(message)
        session.delete(person)
    session.flush()


def archive_many(session: Session, records: Iterable[Any], *, actor: User | None) -> tuple[int, int]:
    """Archive each record (all or nothing); returns (records archived, users blocked)."""
    archived = blocked = 0
    for record in records:
        if record.archived_at is None:
            blocked += archive(session, record, actor=actor)
            archived += 1
    return archived, blocked


def restore_many(session: Session, records: Iterable[Any], *, actor: User | None) -> int:
    """Restore each archived record (all or nothing); returns how many."""
    restored = 0
    for record in records:
        if record.archived_at is not None:
            restore(session, record, actor=actor)
            restored += 1
    return restored


# --- the guard: an archived client does not change -------------------------------------------------


def _stored_archived(obj: Any) -> bool:
    """Whether the row was archived before this flush (the committed value, not the pending one)."""
    history = inspect(obj).attrs.archived_at.history
    before = history.deleted[0] if history.deleted else (history.unchanged[0] if history.unchanged else None)
    return before is not None


def _content_changed(obj: Any) -> bool:
    state = inspect(obj)
    for attr in state.mapper.attrs:
        if attr.key in UNGUARDED_COLUMNS:
            continue
        if state.attrs[attr.key].history.has_changes():
            return True
    return False


def _frozen_client_name(session: Session, client_id: int | None, cache: dict) -> str | None:
    if client_id is None:
        return None
    if client_id not in cache:
        row = session.execute(select(Client.name, Client.archived_at).where(Client.id == client_id)).first()
        cache[client_id] = row.name if row is not None and row.archived_at is not None else None
    return cache[client_id]


def _client_id_of(obj: Any) -> int | None:
    if isinstance(obj, Client):
        return obj.id
    if isinstance(obj, Person):
        return obj.client_id if obj.client_id is not None else (obj.client.id if obj.client is not None else None)
    if isinstance(obj, User):
        return _client_id_of(obj.person) if obj.person is not None else None
    if isinstance(obj, PackageAssignment):
        return _client_id_of(obj.user) if obj.user is not None else None
    if isinstance(obj, OutboxMessage):
        return obj.client_id
    return None


def refuse_changes_to_archived(session: Session, flush_context: Any, instances: Any) -> None:
    """Before every flush: nothing of an archived client (or archived person) changes until it is restored."""
    cache: dict = {}
    with session.no_autoflush:
        for obj in list(session.dirty) + list(session.new):
            if not isinstance(obj, (*ARCHIVABLE, PackageAssignment, OutboxMessage)):
                continue
            is_new = obj in session.new
            if isinstance(obj, OutboxMessage) and not is_new:
                continue  # the worker delivering what was queued before
            if not is_new and not _content_changed(obj):
                continue
            if isinstance(obj, Person | User) and not is_new and _stored_archived(obj):
                raise DomainError(_l("%(name)s is archived: restore them first.", name=_label(obj)))
            name = _frozen_client_name(session, _client_id_of(obj), cache)
            if name is not None:
                raise DomainError(_l("%(client)s is archived: restore it first.", client=name))


def register_archive_guard() -> None:
    """Listen once per process on every ORM session."""
    if not event.contains(Session, "before_flush", refuse_changes_to_archived):
        event.listen(Session, "before_flush", refuse_changes_to_archived)


__all__ = [
    "archive",
    "archive_many",
    "delete_permanently",
    "history_of",
    "is_archived",
    "is_live",
    "register_archive_guard",
    "restore",
    "restore_many",
]
