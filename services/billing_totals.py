"""Open months' billing totals and package holder counts, kept up to date instead of recomputed on every view.

Decisions (issue 9):

- ``billing_totals`` holds one row per bureau and open month the page has shown (or the worker was asked for):
  clients, users, summary lines and the amount in øre (integers: sums stay exact on both databases).
  ``billing_client_totals`` holds each client's share; the shares add up to the totals, because a user belongs to
  exactly one client.
- A flush hook (``register_billing_change_hook``) writes, in the same transaction as the change, which clients'
  billing may have changed into ``billing_changes``: package assignments added, changed or removed; users blocked,
  unblocked or given another end date; persons moved to another client; clients marked demo or internal, or
  deleted; a package's price changed (the whole bureau). Archiving blocks users, so it is covered by the users.
- The worker (``refresh_due``, run by ``flask outbox worker`` and ``flask billing refresh-totals``) applies the
  changes: it recomputes only the changed clients' shares with the billing basis's own rules (``services.billing``,
  restricted to those clients) and adds the difference to the totals. A month never computed, or a bureau-wide
  change, gets a full recompute: one aggregate ``INSERT … SELECT`` into a temporary table in a read snapshot, then
  a short write transaction that swaps the shares in, unless a refresh came in between (the totals' ``version``).
- The page shows the stored totals with the time of the last refresh and how many changes are waiting. A small
  bureau (at most ``INLINE_CLIENTS`` clients) is refreshed by the page itself, so it always sees current figures.
- Package holder counts ("held today") change with the date alone (an assignment starting or ending, an end date
  passing), so they cannot be kept exact by writes: the worker recounts a bureau's packages when its data changed
  (at most every ``HOLDER_REFRESH``) or the day changed, and the grid says when they were counted.
- Closed months are read from their snapshot (services/billing_close.py); their totals here are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy import (
    Connection,
    case,
    column,
    delete,
    distinct,
    event,
    func,
    insert,
    select,
    table,
    text,
    update,
)
from sqlalchemy.orm import Session

from models import (
    BillingChange,
    BillingClientTotal,
    BillingMonth,
    BillingTotal,
    Client,
    Package,
    PackageAssignment,
    PackageHolderCount,
    Person,
    User,
    utcnow,
)
from models.base import has_changed, value_before_flush
from services import billing

log = logging.getLogger(__name__)

INLINE_CLIENTS = 5000  # a bureau this small is refreshed by the page itself
CHANGES_PER_PASS = 5000  # changes applied per bureau and pass
CLIENT_BATCH = 500  # client ids per statement
WAITING_SHOWN = 1000  # the page counts waiting changes up to this many
HOLDER_REFRESH = timedelta(minutes=5)
PREVIEW_LINES = 200
PREVIEW_CLIENT_BATCH = 50  # about 250 lines: one batch fills the preview
PREVIEW_MAX_CLIENTS = 2000  # clients looked at for the preview, at most

_CHANGES = BillingChange.__table__
_SHARES = BillingClientTotal.__table__
_TOTALS = BillingTotal.__table__
_HOLDERS = PackageHolderCount.__table__
# A read transaction on each engine for the long aggregates (extensions.py begins SQLite's others IMMEDIATE).
_READING = {"sqlite": {"read_only_snapshot": True}, "postgresql": {"isolation_level": "REPEATABLE READ"}}
_WRITING = {"sqlite": {"read_only_snapshot": False}, "postgresql": {"isolation_level": "READ COMMITTED"}}
_FRESH = table("billing_fresh", column("client_id"), column("users"), column("rows"), column("amount_ore"))


# --- recording changes (flush hook) ------------------------------------------------------------

_USER_KEYS = ("status", "blocked_at", "end_date")
_ASSIGNMENT_KEYS = ("valid_from", "valid_to", "user_id", "package_id", "user", "package")
_PENDING_KEY = "billing_changes_pending"


def _clients_of_users(session: Session, user_ids: set[int]) -> set[tuple[int, int]]:
    """(bureau, client) of the stored users."""
    pairs: set[tuple[int, int]] = set()
    ids = sorted(i for i in user_ids if i is not None)
    for start in range(0, len(ids), CLIENT_BATCH):
        rows = session.execute(
            select(Person.bureau_id, Person.client_id)
            .join(User, User.person_id == Person.id)
            .where(User.id.in_(ids[start : start + CLIENT_BATCH]))
        )
        pairs.update((bureau_id, client_id) for bureau_id, client_id in rows)
    return pairs


def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    """Note the clients whose billing this flush may change, as they were before it (old owners, deleted rows)."""
    pairs: set[tuple[int, int | None]] = set()
    user_ids: set[int] = set()
    for obj in session.deleted:
        if isinstance(obj, PackageAssignment):
            user_ids.add(value_before_flush(obj, "user_id"))
        elif isinstance(obj, User):
            user_ids.add(obj.id)
        elif isinstance(obj, Person):
            pairs.add((obj.bureau_id, value_before_flush(obj, "client_id")))
        elif isinstance(obj, Client):
            pairs.add((obj.bureau_id, obj.id))
    for obj in session.dirty:
        if isinstance(obj, PackageAssignment) and has_changed(obj, *_ASSIGNMENT_KEYS):
            user_ids.add(value_before_flush(obj, "user_id"))
        elif isinstance(obj, User) and has_changed(obj, *_USER_KEYS):
            user_ids.add(obj.id)
        elif isinstance(obj, Person) and has_changed(obj, "client_id", "client"):
            pairs.add((obj.bureau_id, value_before_flush(obj, "client_id")))
        elif isinstance(obj, Client) and has_changed(obj, "is_demo", "is_internal"):
            pairs.add((obj.bureau_id, obj.id))
        elif isinstance(obj, Package) and has_changed(obj, "price"):
            pairs.add((obj.bureau_id, None))
    if user_ids:
        with session.no_autoflush:
            pairs |= _clients_of_users(session, user_ids)
    if pairs:
        session.info[_PENDING_KEY] = session.info.get(_PENDING_KEY, set()) | pairs


def _after_flush(session: Session, flush_context: Any) -> None:
    """Add the new owners (known only now: new rows have their ids) and write the changes in this transaction."""
    pairs: set[tuple[int, int | None]] = session.info.pop(_PENDING_KEY, set())
    user_ids: set[int] = set()
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, PackageAssignment) and (obj in session.new or has_changed(obj, *_ASSIGNMENT_KEYS)):
            user_ids.add(obj.user_id)
        elif isinstance(obj, Person) and obj not in session.new and has_changed(obj, "client_id", "client"):
            pairs.add((obj.bureau_id, obj.client_id))
    if user_ids:
        pairs |= _clients_of_users(session, user_ids)
    pairs = {(bureau_id, client_id) for bureau_id, client_id in pairs if bureau_id is not None}
    if pairs:
        now = utcnow()
        session.connection().execute(
            insert(_CHANGES),
            [
                {"bureau_id": bureau_id, "client_id": client_id, "created_at": now, "version": 1}
                for bureau_id, client_id in sorted(pairs, key=lambda p: (p[0], p[1] or 0))
            ],
        )


def _forget(session: Session, *args: Any) -> None:
    session.info.pop(_PENDING_KEY, None)


def register_billing_change_hook() -> None:
    """Listen once per process on every ORM session (create_app calls this, like ``register_policy``)."""
    if event.contains(Session, "before_flush", _before_flush):
        return
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_rollback", _forget)
    event.listen(Session, "after_soft_rollback", _forget)


def record_bureau_change(conn: Connection, bureau_id: int) -> None:
    """For writers that bypass the ORM (bulk loads): every client of the bureau may have changed."""
    conn.execute(insert(_CHANGES).values(bureau_id=bureau_id, client_id=None, created_at=utcnow(), version=1))


# --- computing shares --------------------------------------------------------------------------


def _price_ore(conn: Connection, bureau_id: int, period: billing.Period) -> dict[int, int]:
    """Each package's unit price for the period in øre, by the billing basis's own rule."""
    rows = conn.execute(select(Package.id, billing._unit_price(period)).where(Package.bureau_id == bureau_id))
    return {package_id: int((Decimal(price) * 100).to_integral_value()) for package_id, price in rows}


def shares_query(conn: Connection, bureau_id: int, period: billing.Period, client_ids: Sequence[int] | None = None):
    """Per billed client: its distinct users, summary lines and amount in øre, as the export would give them.

    The lines are the summary export's (one per client and package); the users are counted once per client.
    """
    prices = _price_ore(conn, bureau_id, period)
    lines = (
        billing._billable_assignments(
            [Client.id.label("client_id"), Package.id.label("package_id"), func.count(distinct(User.id)).label("n")],
            bureau_id,
            period,
            client_ids,
        )
        .group_by(Client.id, Package.id)
        .subquery("lines")
    )
    price = case(prices, value=lines.c.package_id, else_=0) if prices else 0
    per_client = (
        select(
            lines.c.client_id,
            func.count().label("rows"),
            func.sum(lines.c.n * price).label("amount_ore"),
        )
        .group_by(lines.c.client_id)
        .subquery("per_client")
    )
    users = (
        billing._billable_assignments(
            [Client.id.label("client_id"), func.count(distinct(User.id)).label("users")], bureau_id, period, client_ids
        )
        .group_by(Client.id)
        .subquery("users")
    )
    return select(per_client.c.client_id, users.c.users, per_client.c.rows, per_client.c.amount_ore).join(
        users, users.c.client_id == per_client.c.client_id
    )


@dataclass(frozen=True)
class Sums:
    clients: int = 0
    users: int = 0
    rows: int = 0
    amount_ore: int = 0

    def __sub__(self, other: Sums) -> Sums:
        return Sums(*(a - b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.clients, self.users, self.rows, self.amount_ore)


def _sums(conn: Connection, table, *conditions) -> Sums:
    row = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(table.c.users), 0),
            func.coalesce(func.sum(table.c.rows), 0),
            func.coalesce(func.sum(table.c.amount_ore), 0),
        ).where(*conditions)
    ).one()
    return Sums(*(int(value) for value in row))


# --- the worker's step -------------------------------------------------------------------------


def _closed_periods(conn: Connection, bureau_id: int) -> set[str]:
    return set(conn.scalars(select(BillingMonth.period).where(BillingMonth.bureau_id == bureau_id)))


def _take_write_lock(conn: Connection) -> None:
    """SQLite: take the write lock before reading what is then written (as services.outbox does)."""
    if conn.dialect.name == "sqlite":
        conn.execute(update(_TOTALS).where(text("0")).values(version=_TOTALS.c.version))


def _lock_total(conn: Connection, bureau_id: int, period: str):
    return conn.execute(
        select(_TOTALS.c.id, _TOTALS.c.version, _TOTALS.c.computed_at)
        .where(_TOTALS.c.bureau_id == bureau_id, _TOTALS.c.period == period)
        .with_for_update()
    ).first()


def _apply_difference(conn: Connection, total_id: int, version: int, difference: Sums | None, fresh: Sums | None):
    values: dict[str, Any] = {"version": version + 1, "computed_at": utcnow()}
    if fresh is not None:
        values.update(clients=fresh.clients, users=fresh.users, rows=fresh.rows, amount_ore=fresh.amount_ore)
    elif difference is not None:
        values.update(
            clients=_TOTALS.c.clients + difference.clients,
            users=_TOTALS.c.users + difference.users,
            rows=_TOTALS.c.rows + difference.rows,
            amount_ore=_TOTALS.c.amount_ore + difference.amount_ore,
        )
    updated = conn.execute(
        update(_TOTALS).where(_TOTALS.c.id == total_id, _TOTALS.c.version == version).values(**values)
    )
    return updated.rowcount == 1


def refresh_clients(conn: Connection, bureau_id: int, period: str, client_ids: Sequence[int]) -> bool:
    """Recompute these clients' shares of a computed month and add the difference to its totals (one transaction)."""
    _take_write_lock(conn)
    total = _lock_total(conn, bureau_id, period)
    if total is None or total.computed_at is None:
        return False
    month = billing.Period.parse(period)
    difference = Sums()
    for start in range(0, len(client_ids), CLIENT_BATCH):
        batch = list(client_ids[start : start + CLIENT_BATCH])
        where = (_SHARES.c.bureau_id == bureau_id, _SHARES.c.period == period, _SHARES.c.client_id.in_(batch))
        old = _sums(conn, _SHARES, *where)
        conn.execute(delete(_SHARES).where(*where))
        rows = [
            {
                "bureau_id": bureau_id,
                "period": period,
                "client_id": client_id,
                "users": users,
                "rows": lines,
                "amount_ore": int(amount),
                "version": 1,
            }
            for client_id, users, lines, amount in conn.execute(shares_query(conn, bureau_id, month, batch))
        ]
        if rows:
            conn.execute(insert(_SHARES), rows)
        new = Sums(len(rows), *(sum(r[key] for r in rows) for key in ("users", "rows", "amount_ore")))
        difference = Sums(*(a + b for a, b in zip(difference.as_tuple(), (new - old).as_tuple(), strict=True)))
    return _apply_difference(conn, total.id, total.version, difference, None)


def recompute_period(engine, bureau_id: int, period: str, change_ids: Sequence[int] = ()) -> bool:
    """Compute a month's shares from scratch and swap them in; False when a refresh came in between (try again).

    The aggregate runs in one read snapshot into a temporary table, so on SQLite the write lock is held only for
    the swap (copying the shares), not for the half minute a million clients' month takes to compute. The
    changes ``change_ids`` (read before the snapshot) are deleted with the swap: the snapshot includes them.
    """
    month = billing.Period.parse(period)
    with engine.connect() as conn:
        try:
            conn.execute(text("DROP TABLE IF EXISTS billing_fresh"))
            conn.execute(
                text(
                    "CREATE TEMPORARY TABLE billing_fresh"
                    " (client_id INTEGER PRIMARY KEY, users INTEGER, rows INTEGER, amount_ore BIGINT)"
                )
            )
            conn.commit()
            conn.execution_options(**_READING[conn.dialect.name])  # writers go on meanwhile
            version = conn.scalar(
                select(_TOTALS.c.version).where(_TOTALS.c.bureau_id == bureau_id, _TOTALS.c.period == period)
            )
            if version is None:
                return False
            conn.execute(
                insert(_FRESH).from_select(
                    ["client_id", "users", "rows", "amount_ore"], shares_query(conn, bureau_id, month)
                )
            )
            conn.commit()
            conn.execution_options(**_WRITING[conn.dialect.name])
            _take_write_lock(conn)
            total = _lock_total(conn, bureau_id, period)
            if total is None or total.version != version:
                return False
            conn.execute(delete(_SHARES).where(_SHARES.c.bureau_id == bureau_id, _SHARES.c.period == period))
            conn.execute(
                insert(_SHARES).from_select(
                    ["bureau_id", "period", "client_id", "users", "rows", "amount_ore", "version"],
                    select(
                        func.cast(bureau_id, _SHARES.c.bureau_id.type),
                        func.cast(period, _SHARES.c.period.type),
                        _FRESH.c.client_id,
                        _FRESH.c.users,
                        _FRESH.c.rows,
                        _FRESH.c.amount_ore,
                        func.cast(1, _SHARES.c.version.type),
                    ),
                )
            )
            _apply_difference(conn, total.id, total.version, None, _sums(conn, _FRESH))
            _delete_changes(conn, change_ids)
            conn.commit()
            return True
        finally:
            conn.rollback()
            conn.execute(text("DROP TABLE IF EXISTS billing_fresh"))
            conn.commit()


def _delete_changes(conn: Connection, change_ids: Sequence[int]) -> None:
    ids = list(change_ids)
    for start in range(0, len(ids), CLIENT_BATCH):
        conn.execute(delete(_CHANGES).where(_CHANGES.c.id.in_(ids[start : start + CLIENT_BATCH])))


def request_period(conn: Connection, bureau_id: int, period: str) -> None:
    """Ask the worker to compute a month (no-op when it is already kept; two at once insert one row)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        dialect_insert(_TOTALS)
        .values(
            bureau_id=bureau_id,
            period=period,
            clients=0,
            users=0,
            rows=0,
            amount_ore=0,
            requested_at=utcnow(),
            computed_at=None,
            version=1,
        )
        .on_conflict_do_nothing(index_elements=["bureau_id", "period"])
    )


@dataclass(frozen=True)
class BureauRefresh:
    """What one refresh of a bureau did."""

    bureau_id: int
    changes: int = 0
    clients: int = 0
    periods_recomputed: tuple[str, ...] = ()
    retry: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "bureau_id": self.bureau_id,
            "changes": self.changes,
            "clients": self.clients,
            "recomputed": list(self.periods_recomputed),
            "retry": self.retry,
        }


def refresh_bureau(engine, bureau_id: int, *, limit: int = CHANGES_PER_PASS) -> BureauRefresh:
    """Apply a bureau's waiting changes to its kept months, compute the months asked for, drop closed ones."""
    with engine.connect() as conn:
        conn.execution_options(**_READING[conn.dialect.name])
        closed = _closed_periods(conn, bureau_id)
        kept = conn.execute(
            select(_TOTALS.c.period, _TOTALS.c.computed_at).where(_TOTALS.c.bureau_id == bureau_id)
        ).all()
        changes = conn.execute(
            select(_CHANGES.c.id, _CHANGES.c.client_id)
            .where(_CHANGES.c.bureau_id == bureau_id)
            .order_by(_CHANGES.c.id)
            .limit(limit)
        ).all()
        conn.rollback()
        conn.execution_options(**_WRITING[conn.dialect.name])
        gone = [period for period, _at in kept if period in closed]
        if gone:  # a closed month is read from its snapshot from now on
            _take_write_lock(conn)
            for period in gone:
                where = (_SHARES.c.bureau_id == bureau_id, _SHARES.c.period == period)
                conn.execute(delete(_SHARES).where(*where))
                conn.execute(delete(_TOTALS).where(_TOTALS.c.bureau_id == bureau_id, _TOTALS.c.period == period))
            conn.commit()
    change_ids = [row.id for row in changes]
    whole_bureau = any(row.client_id is None for row in changes)
    client_ids = sorted({row.client_id for row in changes if row.client_id is not None})
    open_kept = [(period, at) for period, at in kept if period not in closed]
    recompute = [period for period, at in open_kept if at is None or whole_bureau]
    retry = False
    for period in recompute:
        # The changes go with the last full recompute when every kept month is recomputed.
        ids = change_ids if period == recompute[-1] and len(recompute) == len(open_kept) else ()
        retry |= not recompute_period(engine, bureau_id, period, ids)
    if change_ids and not (recompute and len(recompute) == len(open_kept)) and not retry:
        with engine.connect() as conn:
            for period, _at in open_kept:
                if period not in recompute:
                    refresh_clients(conn, bureau_id, period, client_ids)
            _take_write_lock(conn)
            _delete_changes(conn, change_ids)
            conn.execute(update(_HOLDERS).where(_HOLDERS.c.bureau_id == bureau_id).values(stale=True))
            conn.commit()
    elif change_ids and not retry:
        with engine.begin() as conn:
            conn.execute(update(_HOLDERS).where(_HOLDERS.c.bureau_id == bureau_id).values(stale=True))
    return BureauRefresh(bureau_id, len(change_ids), len(client_ids), tuple(recompute), retry)


def _bureaus_due(conn: Connection) -> list[int]:
    """Bureaus with changes waiting, a month asked for, or kept totals of a month closed since."""
    waiting = select(_CHANGES.c.bureau_id).distinct()
    asked = select(_TOTALS.c.bureau_id).where(_TOTALS.c.computed_at.is_(None)).distinct()
    closed = (
        select(_TOTALS.c.bureau_id)
        .join(
            BillingMonth,
            (BillingMonth.bureau_id == _TOTALS.c.bureau_id) & (BillingMonth.period == _TOTALS.c.period),
        )
        .distinct()
    )
    return sorted(set(conn.scalars(waiting)) | set(conn.scalars(asked)) | set(conn.scalars(closed)))


def refresh_due(engine, *, today: date | None = None) -> list[BureauRefresh]:
    """The worker's step: apply every bureau's waiting changes, compute the months asked for, recount holders."""
    with engine.connect() as conn:
        conn.execution_options(**_READING[conn.dialect.name])
        bureau_ids = _bureaus_due(conn)
    results = []
    for bureau_id in bureau_ids:
        try:
            results.append(refresh_bureau(engine, bureau_id))
        except Exception:  # noqa: BLE001 - one bureau's failure must not stop the others
            log.exception("Refreshing the billing totals of bureau %s failed; trying again next pass", bureau_id)
    refresh_holder_counts(engine, today=today or date.today())
    return results


def request_running_months(engine, today: date) -> None:
    """Daily: keep every bureau's running and previous month computed, so the page has them at once."""
    from models import Bureau

    periods = {str(billing.Period.parse(today.strftime("%Y-%m"))), str(billing.Period.previous_month(today))}
    with engine.begin() as conn:
        for bureau_id in conn.scalars(select(Bureau.id)):
            closed = _closed_periods(conn, bureau_id)
            for period in sorted(periods - closed):
                request_period(conn, bureau_id, period)


# --- package holder counts ---------------------------------------------------------------------


def _holders_due(conn: Connection, today: date, now: datetime) -> list[int]:
    """Bureaus whose counts are missing, from another day, or stale for longer than HOLDER_REFRESH."""
    missing = select(Package.bureau_id).where(
        ~select(_HOLDERS.c.package_id).where(_HOLDERS.c.package_id == Package.id).exists()
    )
    due = set(conn.scalars(missing.distinct()))
    rows = conn.execute(
        select(
            _HOLDERS.c.bureau_id,
            func.min(_HOLDERS.c.counted_on),
            func.min(_HOLDERS.c.computed_at),
            func.max(case((_HOLDERS.c.stale, 1), else_=0)),
        ).group_by(_HOLDERS.c.bureau_id)
    )
    for bureau_id, counted_on, computed_at, stale in rows:
        counted_on = billing._as_date(counted_on)
        computed_at = _aware(computed_at)
        if counted_on < today or (stale and now - computed_at >= HOLDER_REFRESH):
            due.add(bureau_id)
    return sorted(due)


def _aware(value):
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def count_holders(engine, bureau_id: int, today: date) -> None:
    """Recount every package of the bureau (one grouped query, in a read transaction) and store the counts."""
    from services.packages import holders_today_query

    with engine.connect() as conn:
        conn.execution_options(**_READING[conn.dialect.name])
        package_ids = list(conn.scalars(select(Package.id).where(Package.bureau_id == bureau_id)))
        counts = (
            {
                package_id: (clients, users)
                for package_id, clients, users in conn.execute(holders_today_query(package_ids, today))
            }
            if package_ids
            else {}
        )
        conn.rollback()
    with engine.begin() as conn:
        now = utcnow()
        conn.execute(delete(_HOLDERS).where(_HOLDERS.c.bureau_id == bureau_id))
        if package_ids:
            conn.execute(
                insert(_HOLDERS),
                [
                    {
                        "package_id": package_id,
                        "bureau_id": bureau_id,
                        "clients": counts.get(package_id, (0, 0))[0],
                        "users": counts.get(package_id, (0, 0))[1],
                        "counted_on": today,
                        "computed_at": now,
                        "stale": False,
                        "version": 1,
                    }
                    for package_id in package_ids
                ],
            )


def refresh_holder_counts(engine, *, today: date) -> list[int]:
    """Recount the bureaus that need it (see ``_holders_due``); the bureaus recounted."""
    with engine.connect() as conn:
        conn.execution_options(**_READING[conn.dialect.name])
        due = _holders_due(conn, today, utcnow())
    for bureau_id in due:
        try:
            count_holders(engine, bureau_id, today)
        except Exception:  # noqa: BLE001 - one bureau's failure must not stop the others
            log.exception("Counting the package holders of bureau %s failed", bureau_id)
    return due


@dataclass(frozen=True)
class HolderCounts:
    counts: dict[int, tuple[int, int]]
    computed_at: datetime | None  # the oldest count shown; None when some are not counted yet
    stale: bool


def holder_counts(session: Session, bureau_id: int, package_ids: Sequence[int], today: date) -> HolderCounts:
    """The package grid's counts as kept; a small bureau's are brought up to date first (changes applied, recounted)."""
    if not package_ids:
        return HolderCounts({}, None, False)
    kept = _kept_holders(session, bureau_id, package_ids, today)
    if kept.stale and is_small_bureau(session, bureau_id):
        session.commit()
        engine = session.get_bind()
        refresh_bureau(engine, bureau_id)
        count_holders(engine, bureau_id, today)
        kept = _kept_holders(session, bureau_id, package_ids, today)
    return kept


def _kept_holders(session: Session, bureau_id: int, package_ids: Sequence[int], today: date) -> HolderCounts:
    """Stale when a count is missing or from another day, or holdings changed since it was made."""
    rows = session.execute(
        select(
            _HOLDERS.c.package_id,
            _HOLDERS.c.clients,
            _HOLDERS.c.users,
            _HOLDERS.c.counted_on,
            _HOLDERS.c.computed_at,
            _HOLDERS.c.stale,
        ).where(_HOLDERS.c.package_id.in_(list(package_ids)))
    ).all()
    complete = len(rows) == len(set(package_ids)) and all(billing._as_date(r.counted_on) >= today for r in rows)
    waiting = session.scalar(select(_CHANGES.c.id).where(_CHANGES.c.bureau_id == bureau_id).limit(1)) is not None
    return HolderCounts(
        {r.package_id: (r.clients, r.users) for r in rows},
        min(_aware(r.computed_at) for r in rows) if complete else None,
        not complete or waiting or any(r.stale for r in rows),
    )


# --- what the Fakturagrunnlag page reads ---------------------------------------------------------


def is_small_bureau(session_or_conn, bureau_id: int) -> bool:
    """A bounded probe (no client beyond the first INLINE_CLIENTS): the page then refreshes inline."""
    beyond = select(Client.id).where(Client.bureau_id == bureau_id).offset(INLINE_CLIENTS).limit(1)
    return session_or_conn.scalar(beyond) is None


@dataclass(frozen=True)
class MonthTotals:
    """An open month's totals as kept, with when they were last refreshed and how many changes wait."""

    summary: billing.Summary | None  # None: not computed yet
    computed_at: datetime | None
    waiting: int  # changes not applied yet (counted up to WAITING_SHOWN + 1)


def month_totals(session: Session, engine, bureau_id: int, period: billing.Period) -> MonthTotals:
    """The kept totals of an open month; asks the worker for a month never computed (a small bureau: at once)."""
    label = str(period)
    known = session.execute(
        select(_TOTALS.c.clients, _TOTALS.c.computed_at).where(
            _TOTALS.c.bureau_id == bureau_id, _TOTALS.c.period == label
        )
    ).first()
    large = known is not None and known.computed_at is not None and known.clients > INLINE_CLIENTS
    if not large and is_small_bureau(session, bureau_id):
        session.commit()
        with engine.begin() as conn:
            request_period(conn, bureau_id, label)
        refresh_bureau(engine, bureau_id)
    row = session.execute(select(_TOTALS).where(_TOTALS.c.bureau_id == bureau_id, _TOTALS.c.period == label)).first()
    if row is None:
        session.commit()
        with engine.begin() as conn:
            request_period(conn, bureau_id, label)
    waiting = session.scalar(
        select(func.count()).select_from(
            select(_CHANGES.c.id).where(_CHANGES.c.bureau_id == bureau_id).limit(WAITING_SHOWN + 1).subquery()
        )
    )
    if row is None or row.computed_at is None:
        return MonthTotals(None, None, waiting)
    summary = billing.Summary(
        clients=row.clients,
        users=row.users,
        rows=row.rows,
        amount=(Decimal(row.amount_ore) / 100).quantize(Decimal("0.01")),
    )
    return MonthTotals(summary, _aware(row.computed_at), waiting)


def preview_rows(conn: Connection, bureau_id: int, period: billing.Period, client_ids=None) -> list[list[str]]:
    """The first PREVIEW_LINES summary lines of an open month, computed for the first clients by name only.

    Clients are taken in the export's order (name, id) through the (bureau_id, name) index, a batch at a time,
    and the summary runs for just those clients; at most PREVIEW_MAX_CLIENTS clients are looked at.
    """
    lines: list[list[str]] = []
    after: tuple[str, int] | None = None
    seen = 0
    while len(lines) < PREVIEW_LINES and seen < PREVIEW_MAX_CLIENTS:
        query = (
            select(Client.name, Client.id)
            .where(Client.bureau_id == bureau_id, billing.billed_client_clause())
            .order_by(Client.name, Client.id)
            .limit(PREVIEW_CLIENT_BATCH)
        )
        if client_ids is not None:
            query = query.where(Client.id.in_(client_ids))
        if after is not None:
            query = query.where((Client.name > after[0]) | ((Client.name == after[0]) & (Client.id > after[1])))
        batch = conn.execute(query).all()
        if not batch:
            break
        seen += len(batch)
        after = (batch[-1].name, batch[-1].id)
        ids = [row.id for row in batch]
        with closing(billing.summary_rows(conn, bureau_id, period, billing.Dialect.STANDARD, ids)) as rows:
            lines.extend(islice(rows, PREVIEW_LINES - len(lines)))
    return lines
