"""Closing a billing month: its billing basis computed once and stored, and never changed afterwards.

``close_month`` computes the month with the export's own queries and stores it as a snapshot (models/billing.py);
from then on every reader gets the month from the snapshot (``billing.basis_rows``): the same bytes forever.
``register_closed_month_guard`` refuses, in one ``before_flush`` listener that every surface passes through, a
change that would alter a closed month in the live tables: an assignment whose days inside the month change, or
a user's end date moved inside it. Reopening is not offered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import event, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    BillingMonth,
    BillingSnapshotDetail,
    BillingSnapshotRow,
    Bureau,
    Client,
    PackageAssignment,
    Person,
    User,
    utcnow,
)
from models.base import has_changed, value_before_flush
from services import billing, policy
from services.errors import DomainError

log = logging.getLogger(__name__)
INSERT_BATCH = 5000
STREAMED = {"stream_results": True, "yield_per": INSERT_BATCH}


class ClosedMonthError(DomainError):
    """The change would alter a closed billing month."""


@dataclass(frozen=True)
class CloseResult:
    """What a close did, as plain values (valid after the commit, without reading the month again)."""

    bureau_id: int
    period: str
    clients: int
    users: int
    rows: int
    amount: Decimal
    closed_at: datetime
    closed_by: str
    already_closed: bool

    @classmethod
    def of(cls, month: BillingMonth, *, already_closed: bool) -> CloseResult:
        return cls(
            bureau_id=month.bureau_id,
            period=month.period,
            clients=month.clients,
            users=month.users,
            rows=month.rows,
            amount=Decimal(month.amount),
            closed_at=month.closed_at if month.closed_at.tzinfo else month.closed_at.replace(tzinfo=UTC),
            closed_by=month.closed_by_label,
            already_closed=already_closed,
        )

    def to_json(self, bureau_org_number: str) -> dict[str, Any]:
        return {
            "bureau": bureau_org_number,
            "period": self.period,
            "status": "already_closed" if self.already_closed else "closed",
            "clients": self.clients,
            "users": self.users,
            "rows": self.rows,
            "amount": f"{self.amount:.2f}",
            "closed_at": self.closed_at.isoformat(),
            "closed_by": self.closed_by,
        }


def can_close(period: billing.Period, today: date) -> bool:
    """Only a month that has ended can be closed: never the running month or a future one."""
    return period.end < today


def refuse_open_month(period: billing.Period, today: date) -> None:
    if not can_close(period, today):
        raise DomainError(_l("%(month)s has not ended yet: only a past month can be closed.", month=str(period)))


def _stored_month(session: Session, bureau_id: int, period: billing.Period) -> BillingMonth | None:
    return session.scalar(
        select(BillingMonth).where(BillingMonth.bureau_id == bureau_id, BillingMonth.period == str(period))
    )


def _batched(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= INSERT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(conn, model, rows: Iterable[dict[str, Any]]) -> None:
    """Store the lines in batches as they are read: memory does not grow with the month.

    The rows are read through a server-side cursor on PostgreSQL, which lets other statements run on the same
    connection between its fetches; there each batch goes in with COPY (a close of 100,000 clients writes a
    million lines: INSERTs took three quarters of its time), elsewhere with one multi-row INSERT.
    """
    table = model.__table__
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        driver = conn.connection.driver_connection
        for batch in _batched(rows):
            columns = list(batch[0])
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                for row in batch:
                    copy.write_row([row[column] for column in columns])
        return
    for batch in _batched(rows):
        conn.execute(insert(table), batch)


def _summary_snapshot(conn, month_id: int, bureau_id: int, period: billing.Period) -> Iterator[dict[str, Any]]:
    """The summary lines as ``summary_query`` gives them, with the client's id added (the snapshot's key)."""
    query = billing.summary_query(bureau_id, period).add_columns(Client.id)
    result = conn.execute(query, execution_options=STREAMED)
    for position, (org, name, code, pname, kind, users, unit_price, client_id) in enumerate(result):
        price = Decimal(unit_price)
        yield {
            "month_id": month_id,
            "position": position,
            "client_id": client_id,
            "client_org_number": org,
            "client_name": name,
            "package_code": code,
            "package_name": pname,
            "package_kind": billing._kind_text(kind),
            "users": users,
            "unit_price": price,
            "amount": price * users,
        }


def _detail_snapshot(conn, month_id: int, bureau_id: int, period: billing.Period) -> Iterator[dict[str, Any]]:
    """The detail lines as ``detail_query`` gives them, the days counted as ``detail_rows`` counts them."""
    query = billing.detail_query(bureau_id, period).add_columns(Client.id)
    for position, row in enumerate(conn.execute(query, execution_options=STREAMED)):
        org, name, first, last, email, code, pname, kind = row[:8]
        valid_from, valid_to, status, blocked_on, end, user_id, client_id = row[8:]  # client_id: added above
        yield {
            "month_id": month_id,
            "position": position,
            "client_id": client_id,
            "client_org_number": org,
            "client_name": name,
            "user_id": user_id,
            "user_name": f"{first} {last}",
            "user_email": email,
            "package_code": code,
            "package_name": pname,
            "package_kind": billing._kind_text(kind),
            "days_billable": billing.billable_days(period, valid_from, valid_to, status, blocked_on, end),
        }


def close_month(
    session: Session,
    bureau_id: int,
    period: billing.Period,
    *,
    actor: User | None,
    actor_label: str | None = None,
    today: date,
) -> CloseResult:
    """Close the bureau's month: compute its billing basis once and store it; a month already closed is kept.

    Flushes, never commits. Reads and writes in the session's transaction (on SQLite a writer's, so nothing
    changes under it; on PostgreSQL the edge asks for REPEATABLE READ, see ``begin_consistent``). A close racing
    another for the same month loses on the unique (bureau, period): the caller rolls back and reports
    ``already_closed`` (``close_or_report``).
    """
    policy.check(session, actor, policy.Verb.BILLING_CLOSE)
    refuse_open_month(period, today)
    existing = _stored_month(session, bureau_id, period)
    if existing is not None:
        return CloseResult.of(existing, already_closed=True)
    conn = session.connection()
    totals = billing.summarise(conn, bureau_id, period)
    label = actor_label or (str(actor) if actor is not None else "system")
    month = BillingMonth(
        bureau_id=bureau_id,
        period=str(period),
        closed_at=utcnow(),
        closed_by_id=actor.id if actor is not None else None,
        closed_by_label=label[:300],
        clients=totals.clients,
        users=totals.users,
        rows=totals.rows,
        amount=totals.amount,
    )
    session.add(month)
    session.flush()  # the unique (bureau, period) decides a race here, before the rows are written
    for table, rows in (
        (BillingSnapshotRow, _summary_snapshot(conn, month.id, bureau_id, period)),
        (BillingSnapshotDetail, _detail_snapshot(conn, month.id, bureau_id, period)),
    ):
        _write(conn, table, rows)
    session.add(
        AuditEntry(
            bureau_id=bureau_id,
            actor_id=actor.id if actor is not None else None,
            actor_label=label[:300],
            action="create",
            entity=BillingMonth.__tablename__,
            entity_id=month.id,
            record_label=str(month.period),
            changes={
                "period": {"from": None, "to": month.period},
                "clients": {"from": None, "to": month.clients},
                "users": {"from": None, "to": month.users},
                "rows": {"from": None, "to": month.rows},
                "amount": {"from": None, "to": str(month.amount)},
            },
        )
    )
    session.flush()
    return CloseResult.of(month, already_closed=False)


def begin_consistent(session: Session) -> None:
    """Start the session's transaction so that a close reads one snapshot (REPEATABLE READ on PostgreSQL)."""
    session.rollback()
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def close_or_report(
    session: Session,
    bureau_id: int,
    period: billing.Period,
    *,
    actor: User | None,
    actor_label: str | None = None,
    today: date,
) -> CloseResult:
    """The edge's unit of work: close and commit; a lost race is rolled back and reported as already closed."""
    begin_consistent(session)
    try:
        result = close_month(session, bureau_id, period, actor=actor, actor_label=actor_label, today=today)
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = _stored_month(session, bureau_id, period)
        if existing is None:
            raise
        result = CloseResult.of(existing, already_closed=True)
        session.rollback()
        return result
    except Exception:
        session.rollback()
        raise
    return result


def _days_in_month(day: date) -> int:
    return billing.Period.parse(day.strftime("%Y-%m")).end.day


def close_previous_months(session: Session, today: date, close_day: int, label: str) -> list[CloseResult]:
    """The worker's housekeeping: from ``close_day`` of a month on, close the previous month of every bureau.

    Idempotent (a closed month stays as it is); one bureau's failure is logged and the others still close.
    """
    if today.day < min(close_day, _days_in_month(today)):  # a close day of 31 means the month's last in February
        return []
    period = billing.Period.previous_month(today)
    session.rollback()
    closed = set(session.scalars(select(BillingMonth.bureau_id).where(BillingMonth.period == str(period))))
    bureau_ids = [bureau_id for bureau_id in session.scalars(select(Bureau.id).order_by(Bureau.id))]
    session.rollback()
    results = []
    for bureau_id in bureau_ids:
        if bureau_id in closed:
            continue
        try:
            results.append(close_or_report(session, bureau_id, period, actor=None, actor_label=label, today=today))
        except Exception:  # noqa: BLE001 - one bureau's failure must not keep the others open
            log.exception("Closing %s for bureau %s failed; the worker tries again tomorrow", period, bureau_id)
    return results


# --- the guard: nothing may alter a closed month ---------------------------------------------------


def _days_in(period: billing.Period, first: date | None, last: date | None) -> int:
    """How many days of the period the inclusive range [first, last] covers (last None: open-ended)."""
    if first is None:
        return 0
    start = first if first > period.start else period.start
    end = period.end if last is None or last > period.end else last
    return max((end - start).days + 1, 0)


def _billed_owner(assignment: PackageAssignment) -> bool:
    """Whether the assignment's user belongs to a billed client (unknown counts as billed: refuse rather than miss)."""
    user = assignment.user
    person = user.person if user is not None else None
    client = person.client if person is not None else None
    return client is None or not (client.is_demo or client.is_internal)


def _owner_deleted(session: Session, assignment: PackageAssignment) -> bool:
    """Deleting a user, person or client deletes its assignments too; the snapshot keeps the closed month."""
    user = assignment.user
    person = user.person if user is not None else None
    client = person.client if person is not None else None
    return any(owner is not None and owner in session.deleted for owner in (user, person, client))


class _ClosedPeriods:
    """The closed periods of each bureau met in one flush, read once per bureau."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[int, list[billing.Period]] = {}

    def of(self, bureau_id: int | None) -> list[billing.Period]:
        if bureau_id is None:
            return []
        if bureau_id not in self.cache:
            periods = self.session.scalars(
                select(BillingMonth.period).where(BillingMonth.bureau_id == bureau_id).order_by(BillingMonth.period)
            )
            self.cache[bureau_id] = [billing.Period.parse(text) for text in periods]
        return self.cache[bureau_id]


def _refuse(period: billing.Period) -> None:
    raise ClosedMonthError(
        _l(
            "The billing month %(month)s is closed, and this change would alter it. Nothing was saved; "
            "choose dates after the closed month.",
            month=str(period),
        )
    )


def _affected(
    periods: list[billing.Period], old: tuple[date | None, date | None], new: tuple[date | None, date | None]
) -> billing.Period | None:
    """The first closed period whose days the change from ``old`` to ``new`` alters."""
    for period in periods:
        if _days_in(period, *old) != _days_in(period, *new):
            return period
    return None


def _check_assignments(session: Session, closed: _ClosedPeriods) -> None:
    # The owner is looked at only when a closed month is touched: no extra loads for the everyday change.
    for obj in session.new:
        if isinstance(obj, PackageAssignment):
            periods = closed.of(obj.bureau_id or (obj.user.bureau_id if obj.user is not None else None))
            first = obj.valid_from or date.today()  # the column's default
            period = _affected(periods, (None, None), (first, obj.valid_to))
            if period is not None and _billed_owner(obj):
                _refuse(period)
    for obj in session.deleted:
        if isinstance(obj, PackageAssignment):
            old = (value_before_flush(obj, "valid_from"), value_before_flush(obj, "valid_to"))
            period = _affected(closed.of(obj.bureau_id), old, (None, None))
            if period is not None and not _owner_deleted(session, obj) and _billed_owner(obj):
                _refuse(period)
    for obj in session.dirty:
        if not isinstance(obj, PackageAssignment) or not session.is_modified(obj):
            continue
        if not has_changed(obj, "valid_from", "valid_to", "user_id", "package_id", "user", "package"):
            continue
        periods = closed.of(value_before_flush(obj, "bureau_id"))
        old = (value_before_flush(obj, "valid_from"), value_before_flush(obj, "valid_to"))
        new = (obj.valid_from, obj.valid_to)
        moved = has_changed(obj, "user_id", "package_id", "user", "package")
        if moved:  # another user's or package's days: both the old and the new holding change
            period = _affected(periods, old, (None, None)) or _affected(periods, (None, None), new)
        else:
            period = _affected(periods, old, new)
        if period is not None:
            _refuse(period)


def _check_end_dates(session: Session, closed: _ClosedPeriods) -> None:
    for obj in session.dirty:
        if not isinstance(obj, User):
            continue
        history = inspect(obj).attrs.end_date.history
        if not history.has_changes():
            continue
        old_end = history.deleted[0] if history.deleted else None
        new_end = obj.end_date
        for period in closed.of(obj.bureau_id):
            # The days of the period after each end date; the user's billable days change over the days between.
            old_cut = _cut(period, old_end)
            new_cut = _cut(period, new_end)
            if old_cut == new_cut:
                continue
            first, last = sorted((old_cut, new_cut))
            if _holds_between(session, obj, first + timedelta(days=1), last):
                _refuse(period)


def _cut(period: billing.Period, end: date | None) -> date:
    """The last billable day of the period under this end date (the day before the period when none)."""
    if end is None or end >= period.end:
        return period.end
    return max(end, period.start - timedelta(days=1))


def _holds_between(session: Session, user: User, first: date, last: date) -> bool:
    """Whether the stored user, on a billed client, held a package on a day in [first, last]."""
    held = session.scalar(
        select(PackageAssignment.id)
        .join(User, User.id == PackageAssignment.user_id)
        .join(Person, Person.id == User.person_id)
        .join(Client, Client.id == Person.client_id)
        .where(
            PackageAssignment.user_id == user.id,
            Client.is_demo.is_(False),
            Client.is_internal.is_(False),
            PackageAssignment.valid_from <= last,
            (PackageAssignment.valid_to.is_(None)) | (PackageAssignment.valid_to >= first),
        )
        .limit(1)
    )
    return held is not None


def _guard(session: Session, flush_context, instances) -> None:
    """Refuse any flush that would alter a closed billing month (see the module docstring)."""
    if not any(isinstance(obj, PackageAssignment | User) for obj in (*session.new, *session.dirty, *session.deleted)):
        return
    closed = _ClosedPeriods(session)
    with session.no_autoflush:
        _check_assignments(session, closed)
        _check_end_dates(session, closed)


def register_closed_month_guard() -> None:
    """Listen once per process on every ORM session (as services.audit.register_audit does)."""
    if not event.contains(Session, "before_flush", _guard):
        event.listen(Session, "before_flush", _guard)
