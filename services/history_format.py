"""The change history as a bureau reads it: labelled fields, values as the UI shows them, secrets never shown.

One formatter behind every place a history is shown (the client page, a record's detail page, the Hendelseslogg
and its export): ``format_history`` turns stored ``AuditEntry`` rows into ``HistoryRow`` view-models.
"""

from __future__ import annotations

import ast
import enum
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import format_currency, format_date, format_time, get_locale, to_user_timezone
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_views.labels import (
    CONSENT_STATUS,
    CONTACT_ROLE,
    FIELD_LABELS,
    HIDDEN_FIELDS,
    HISTORY_ACTION,
    LANGUAGE,
    PACKAGE_KIND,
    PERSON_KIND,
    RECORD_TYPE,
    REGISTRY_STATUS,
    RESELLER_ROLE,
    STAFF_ROLE,
    USER_STATUS,
)
from models import AuditEntry, Client, CustomerTemplate, Package, Person, User
from services.audit import SECRET_FIELDS, client_label
from services.billing import Dialect, inert, write_csv

# Coded values shown with the label the grids use, by (record type, field); ``None`` as record type: any.
CODED: dict[tuple[str | None, str], dict] = {
    ("clients", "consent_status"): CONSENT_STATUS,
    ("clients", "contact_role"): CONTACT_ROLE,
    ("clients", "registry_status"): REGISTRY_STATUS,
    ("persons", "kind"): PERSON_KIND,
    ("users", "status"): USER_STATUS,
    ("users", "reseller_role"): RESELLER_ROLE,
    ("users", "staff_role"): STAFF_ROLE,
    ("packages", "kind"): PACKAGE_KIND,
    (None, "language"): LANGUAGE,
}
COUNTRY_FIELDS = frozenset({"country_code", "business_country_code", "postal_country_code"})
# A field holding another record's id, shown as that record's name: field → the table it points to.
REFERENCES = {
    "contact_person_id": "persons",
    "person_id": "persons",
    "employee_id": "users",
    "user_id": "users",
    "template_id": "customer_templates",
    "package_id": "packages",
    "client_id": "clients",
}
DATE_FIELDS = frozenset({"end_date", "valid_from", "valid_to"})
MONEY_FIELDS = frozenset({"price", "amount"})
SECRET_SUFFIXES = ("_nonce", "_token", "_hash", "password")
EMPTY = "–"


@dataclass(frozen=True)
class FieldChange:
    """One field of an entry: its label and the values before and after, as text. A secret has neither value and
    ``note`` says that it changed."""

    label: str
    before: str | None = None
    after: str | None = None
    note: str | None = None

    def text(self, action: str) -> str:
        if self.note is not None:
            return f"{self.label}: {self.note}"
        if action == "create":
            return f"{self.label}: {self.after or EMPTY}"
        if action == "delete":
            return f"{self.label}: {self.before or EMPTY}"
        return f"{self.label}: {self.before or EMPTY} → {self.after or EMPTY}"


@dataclass(frozen=True)
class HistoryRow:
    """One entry as every history view shows it."""

    id: int
    at: str
    actor: str
    action: str
    action_label: str
    record_type: str
    record: str
    client: str
    changes: tuple[FieldChange, ...]

    @property
    def changes_text(self) -> str:
        return "; ".join(change.text(self.action) for change in self.changes)


def is_secret(field: str) -> bool:
    return field in SECRET_FIELDS or field.endswith(SECRET_SUFFIXES)


def format_moment(value: datetime | str | None) -> str:
    """A stored moment (UTC, ISO text or datetime) in the user's time zone and format: "01.12.2026 14:03"."""
    moment = _as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    local = to_user_timezone(moment)
    return f"{format_date(local, 'short')} {format_time(local, 'short')}"


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) > 10 and value[4:5] == "-" and value[10:11] in ("T", " "):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # stored in UTC


def _as_date(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


class Names:
    """Names for the ids an entry's fields hold, read in one query per table for a page of entries and only within
    the bureau: an id of another bureau's record (a crafted entry) is shown as unknown, never by its name."""

    def __init__(self, session: Session, bureau_id: int | None) -> None:
        self.session = session
        self.bureau_id = bureau_id
        self.names: dict[str, dict[int, str]] = {}

    def load(self, wanted: dict[str, set[int]]) -> None:
        for table, keys in wanted.items():
            keys = {key for key in keys if isinstance(key, int) and not isinstance(key, bool)}
            known = self.names.setdefault(table, {})
            missing = sorted(keys - known.keys())
            for start in range(0, len(missing), 500):
                known.update(self._read(table, missing[start : start + 500]))

    def _read(self, table: str, keys: list[int]) -> dict[int, str]:
        if table == "clients":
            statement = select(Client.id, Client.name, Client.org_number).where(
                Client.id.in_(keys), Client.bureau_id == self.bureau_id
            )
            return {key: client_label(name, org) for key, name, org in self.session.execute(statement)}
        if table == "persons":
            statement = select(Person.id, Person.first_name, Person.last_name).where(
                Person.id.in_(keys), Person.bureau_id == self.bureau_id
            )
        elif table == "users":
            statement = (
                select(User.id, Person.first_name, Person.last_name)
                .join(Person, Person.id == User.person_id)
                .where(User.id.in_(keys), User.bureau_id == self.bureau_id)
            )
        elif table == "packages":
            statement = select(Package.id, Package.name).where(
                Package.id.in_(keys), Package.bureau_id == self.bureau_id
            )
            return dict(self.session.execute(statement).tuples().all())
        elif table == "customer_templates":
            statement = select(CustomerTemplate.id, CustomerTemplate.name).where(
                CustomerTemplate.id.in_(keys), CustomerTemplate.bureau_id == self.bureau_id
            )
            return dict(self.session.execute(statement).tuples().all())
        else:
            return {}
        return {key: f"{first} {last}".strip() for key, first, last in self.session.execute(statement)}

    def name(self, table: str, key: Any) -> str:
        found = self.names.get(table, {}).get(key)
        return found if found is not None else _("(deleted or unknown)")


def field_label(entity: str, field: str) -> str:
    """The field's label as the grids and forms show it; a field no grid names is shown in words, not as code."""
    label = FIELD_LABELS.get(entity, {}).get(field)
    if label is not None:
        return str(label)
    return field.replace("_", " ").strip().capitalize()


def is_shown(entity: str, field: str) -> bool:
    """Whether the history shows the field: not internal columns, not an id no one can read."""
    if field in FIELD_LABELS.get(entity, {}):
        return True
    if field in HIDDEN_FIELDS or field in REFERENCES:
        return False
    return not (field == "id" or field.endswith("_id"))


def _stored_mapping(text: str) -> Any:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, dict) else text


def format_value(entity: str, field: str, value: Any, names: Names) -> str | None:
    """A stored value as the UI shows it, or None for no value."""
    if isinstance(value, str) and value[:1] == "{" and value[-1:] == "}":
        value = _stored_mapping(value)  # an entry older than the history's own JSON kept a mapping as its repr
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if field in REFERENCES:
        return names.name(REFERENCES[field], value)
    labels = CODED.get((entity, field)) or CODED.get((None, field))
    if labels is not None:
        key = value.value if isinstance(value, enum.Enum) else value
        return str(labels.get(key, key))
    if field in COUNTRY_FIELDS and isinstance(value, str):
        return get_locale().territories.get(value.upper(), value) if get_locale() else value
    if field in MONEY_FIELDS:
        try:
            return format_currency(Decimal(str(value)), "NOK")
        except (InvalidOperation, ValueError):
            return str(value)
    if field in DATE_FIELDS:
        day = _as_date(value)
        return format_date(day, "short") if day is not None else str(value)
    if field.endswith("_at") or isinstance(value, datetime):
        return format_moment(value)
    if field == "invoice_email_texts" and isinstance(value, dict):
        return "; ".join(
            f"{LANGUAGE.get(language, language)}: {(texts or {}).get('subject') or EMPTY}"
            for language, texts in sorted(value.items())
            if isinstance(texts, dict)
        )
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items())
    return str(value)


def _field_changes(entry: AuditEntry, names: Names) -> tuple[FieldChange, ...]:
    changes = entry.changes if isinstance(entry.changes, dict) else {}
    order = list(FIELD_LABELS.get(entry.entity, {}))
    shown = []
    for field in sorted(changes, key=lambda name: (order.index(name) if name in order else len(order), name)):
        change = changes[field]
        if not is_shown(entry.entity, field) or not isinstance(change, dict):
            continue
        label = field_label(entry.entity, field)
        if is_secret(field):
            note = _("(changed)") if change.get("to") else _("(removed)")
            shown.append(FieldChange(label, note=note))
            continue
        before = format_value(entry.entity, field, change.get("from"), names)
        after = format_value(entry.entity, field, change.get("to"), names)
        if entry.action == "update" and before == after:
            continue  # a value that only changed its spelling in storage ("NO" and "no") is no change to a reader
        shown.append(FieldChange(label, before, after))
    return tuple(shown)


def record_label(entry: AuditEntry) -> str:
    """The record's name as written with the entry; for an entry older than that, the name its own changes give."""
    if entry.record_label:
        return entry.record_label
    changes = entry.changes if isinstance(entry.changes, dict) else {}

    def value(field: str) -> str:
        change = changes.get(field) or {}
        found = change.get("to") or change.get("from") if isinstance(change, dict) else None
        return str(found) if found else ""

    if entry.entity == "clients" and value("name"):
        return client_label(value("name"), value("org_number") or None)
    person = f"{value('first_name')} {value('last_name')}".strip()
    if person:
        return person
    if value("name"):
        return value("name")
    return f"{RECORD_TYPE.get(entry.entity, entry.entity)} {entry.entity_id}"


def _wanted_ids(entries: Iterable[AuditEntry]) -> dict[str, set[int]]:
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        changes = entry.changes if isinstance(entry.changes, dict) else {}
        for field, table in REFERENCES.items():
            change = changes.get(field)
            if isinstance(change, dict):
                wanted.setdefault(table, set()).update(v for v in (change.get("from"), change.get("to")) if v)
    return wanted


def format_history(session: Session, entries: Sequence[AuditEntry], *, bureau_id: int | None) -> list[HistoryRow]:
    """The entries as the history views show them, with the names their ids stand for read within ``bureau_id``."""
    names = Names(session, bureau_id)
    names.load(_wanted_ids(entries))
    return [
        HistoryRow(
            id=entry.id,
            at=format_moment(entry.at),
            actor=entry.actor_label if entry.actor_label not in (None, "", "system") else _("System"),
            action=entry.action,
            action_label=str(HISTORY_ACTION.get(entry.action, entry.action)),
            record_type=str(RECORD_TYPE.get(entry.entity, entry.entity)),
            record=record_label(entry),
            client=entry.client_label or "",
            changes=_field_changes(entry, names),
        )
        for entry in entries
    ]


HISTORY_LIMIT = 200


def record_history(
    session: Session, record: Any, *, bureau_id: int | None, limit: int = HISTORY_LIMIT
) -> list[HistoryRow]:
    """A record's history, newest first; a client's is everything about it (its people, users and packages too)."""
    statement = select(AuditEntry).where(AuditEntry.bureau_id == bureau_id)
    if isinstance(record, Client):
        statement = statement.where(AuditEntry.client_id == record.id)
    else:
        statement = statement.where(AuditEntry.entity == record.__tablename__, AuditEntry.entity_id == record.id)
    entries = session.scalars(statement.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)).all()
    # A change of internal columns only (a link to the outbox, a copied kind) says nothing to a reader.
    return [
        row for row in format_history(session, entries, bureau_id=bureau_id) if row.changes or row.action != "update"
    ]


def history_csv(out: io.TextIOBase, rows: Iterable[HistoryRow], dialect: Dialect) -> int:
    """The rows as CSV with the event log's Norwegian headers, in the billing export's dialects (the Norwegian
    Excel one: semicolons and a BOM); a cell a spreadsheet would run as a formula stays text."""
    header = [_("When"), _("Who"), _("What"), _("Record type"), _("Record"), _("Client"), _("Changes")]
    return write_csv(
        out,
        header,
        (
            [
                inert(text)
                for text in (
                    row.at,
                    row.actor,
                    row.action_label,
                    row.record_type,
                    row.record,
                    row.client,
                    row.changes_text,
                )
            ]
            for row in rows
        ),
        dialect,
    )
