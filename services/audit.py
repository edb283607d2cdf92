"""Change history: every ORM create, update and delete is written to ``audit_entries``."""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import has_request_context
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Bureau,
    Client,
    CustomerTemplate,
    Package,
    PackageAssignment,
    Permission,
    Person,
    User,
)
from models.base import utcnow

AUDITED = (Bureau, Client, CustomerTemplate, Package, PackageAssignment, Permission, Person, User)
# Stored as "***" (set) or None: the history says that a secret changed, never what it is.
SECRET_FIELDS = {"password_hash", "invitation_nonce", "consent_nonce"}
SKIPPED_FIELDS = {"version", "created_at", "last_login_at", "session_token", "login_email"}

_actor: contextvars.ContextVar[tuple[int | None, str] | None] = contextvars.ContextVar("audit_actor", default=None)


@contextmanager
def acting_as(user: User | None, label: str | None = None) -> Iterator[None]:
    """Attribute changes made inside the block to ``user`` (or a label such as a CLI command)."""
    token = _actor.set((user.id if user else None, label or (str(user) if user else "system")))
    try:
        yield
    finally:
        _actor.reset(token)


def _current_actor() -> tuple[int | None, str]:
    explicit = _actor.get()
    if explicit is not None:
        return explicit
    if has_request_context():
        from flask_login import current_user

        if current_user and current_user.is_authenticated:
            return current_user.id, str(current_user)
    return None, "system"


def current_actor_id() -> int | None:
    """The acting user's id (``acting_as`` or the logged-in user), None for the system; the policy hooks ask."""
    return _current_actor()[0]


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple | set):
        return sorted(str(v) for v in value)
    if isinstance(value, dict):  # the invoice e-mail texts: kept as data, so the history can show them
        return {str(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _column_changes(obj: Any, action: str) -> dict[str, Any]:
    state = inspect(obj)
    changes: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in SKIPPED_FIELDS:
            continue
        history = state.attrs[key].history
        if action == "update":
            if not history.has_changes():
                continue
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old == new:
                continue
        elif action == "create":
            old, new = None, (history.added[0] if history.added else state.attrs[key].value)
            if new is None:
                continue
        else:
            old, new = state.attrs[key].value, None
            if history.deleted:
                old = history.deleted[0]
        if key in SECRET_FIELDS:
            changes[key] = {"from": "***" if old else None, "to": "***" if new else None}
        else:
            changes[key] = {"from": _plain(old), "to": _plain(new)}
    if action == "update":
        for rel in state.mapper.relationships:
            if not rel.uselist or rel.secondary is None:
                continue
            history = state.attrs[rel.key].history
            if history.added or history.deleted:
                before = list(history.unchanged) + list(history.deleted)
                after = list(history.unchanged) + list(history.added)
                changes[rel.key] = {"from": _plain(before), "to": _plain(after)}
    return changes


def _bureau_of(obj: Any) -> int | None:
    if isinstance(obj, Bureau):
        return obj.id
    return getattr(obj, "bureau_id", None)


def client_label(name: str | None, org_number: str | None) -> str:
    """How the history names a client: "Bodø Bygg AS (910000012)", or the name alone before it has a number."""
    return f"{name} ({org_number})" if org_number else (name or "")


class _Labels:
    """Names for the records of one flush, read from the session's identity map or else from the database (one
    query per record not at hand, remembered for the flush), so an entry names its record and its client."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[tuple[type, int], Any] = {}

    def _row(self, model: type, key: int | None) -> Any:
        if key is None:
            return None
        if (model, key) not in self.cache:
            obj = self.session.identity_map.get(self.session.identity_key(model, key))
            if obj is None:
                table = model.__table__
                obj = self.session.connection().execute(select(table).where(table.c.id == key)).first()
            self.cache[model, key] = obj
        return self.cache[model, key]

    def client(self, key: int | None) -> str | None:
        client = self._row(Client, key)
        return client_label(client.name, client.org_number) if client is not None else None

    def person(self, key: int | None) -> tuple[str | None, int | None]:
        person = self._row(Person, key)
        if person is None:
            return None, None
        return f"{person.first_name} {person.last_name}".strip(), person.client_id

    def user(self, key: int | None) -> tuple[str | None, int | None]:
        user = self._row(User, key)
        return self.person(user.person_id) if user is not None else (None, None)

    def package(self, key: int | None) -> str | None:
        package = self._row(Package, key)
        return package.name if package is not None else None

    def describe(self, obj: Any) -> tuple[str | None, int | None]:
        """The record's label and the id of the client it belongs to."""
        if isinstance(obj, Client):
            return client_label(obj.name, obj.org_number), obj.id
        if isinstance(obj, Person):
            return obj.full_name, obj.client_id
        if isinstance(obj, User):
            return self.person(obj.person_id)
        if isinstance(obj, PackageAssignment):
            name, client_id = self.user(obj.user_id)
            package = self.package(obj.package_id)
            return " – ".join(part for part in (package, name) if part) or None, client_id
        if isinstance(obj, Package | CustomerTemplate | Permission | Bureau):
            return obj.name, None
        return None, None


def _record(session: Session, flush_context: Any) -> None:
    actor_id, actor_label = _current_actor()
    labels = _Labels(session)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for action, objects in (
        ("create", session.new),
        ("update", session.dirty),
        ("delete", session.deleted),
    ):
        for obj in objects:
            if not isinstance(obj, AUDITED):
                continue
            if action == "update" and not session.is_modified(obj, include_collections=True):
                continue
            changes = _column_changes(obj, action)
            if action == "update" and not changes:
                continue
            with session.no_autoflush:
                record_label, client_id = labels.describe(obj)
            rows.append(
                {
                    "bureau_id": _bureau_of(obj),
                    "at": now,
                    "actor_id": actor_id,
                    "actor_label": actor_label[:300],
                    "action": action,
                    "entity": obj.__tablename__,
                    "entity_id": inspect(obj).identity[0] if inspect(obj).identity else obj.id,
                    "changes": changes,
                    "record_label": record_label[:300] if record_label else None,
                    "client_id": client_id,
                    "client_label": (labels.client(client_id) or "")[:300] or None,
                    "version": 1,
                }
            )
    if rows:
        session.connection().execute(AuditEntry.__table__.insert(), rows)


def _keep_old_value(target: Any, value: Any, oldvalue: Any, initiator: Any) -> None:
    """No-op "set" listener; registering it with active_history makes the old value load."""


def register_audit(db: Any) -> None:
    """Listen once per process on every ORM session; make every audited column keep its old value."""
    if event.contains(Session, "after_flush", _record):
        return
    event.listen(Session, "after_flush", _record)
    for model in AUDITED:
        for attr in inspect(model).column_attrs:
            event.listen(getattr(model, attr.key), "set", _keep_old_value, active_history=True)
