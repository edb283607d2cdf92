"""Per-bureau counters kept by the database: live clients, live demo clients, active users.

Hjem shows how many clients and active users a bureau has. Counting them at a million clients reads a whole index
(hundreds of milliseconds), so the database keeps the counts in ``bureau_counters`` with triggers on ``clients``
and ``users``: every path that writes those tables (the ORM, the imports, bulk actions, the CLI, the synthetic
seed's raw inserts, a cascade) is covered, because the database does the counting, not the code that writes.

- A bureau's count is the sum of its rows in ``bureau_counters`` (one per ``slot``). On PostgreSQL each
  transaction adds to the slot of its backend (``mod(pg_backend_pid(), SLOTS)``), so two sessions creating clients in
  the same bureau do not wait for each other's commit on one counter row; SQLite has one writer, so one slot.
- PostgreSQL's triggers are per statement with transition tables: an import's or the seed's multi-row insert adds
  once per statement, not once per row. A statement that changes no count (editing a client's address) writes
  nothing. SQLite's triggers are per row, with ``WHEN`` conditions so that such a change runs nothing.
- A counter row is added only while its bureau exists (deleting a bureau cascades to its clients, whose triggers
  must not re-create the bureau's counters).

What is counted (the grids' own default rows, see services/home.py):
``clients`` — not archived; ``demo_clients`` — not archived and demo; ``active_users`` — status active and not
archived (a user past the end date not yet blocked by the daily job is taken off by Hjem from a partial index).
"""

from __future__ import annotations

from sqlalchemy import DDL, ForeignKey, Integer, event
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db

SLOTS = 8

# table -> (counter -> SQL condition on a row, written with a "{row}." prefix), and the columns that can change it
COUNTED = {
    "clients": (
        {
            "clients": "{row}.archived_at IS NULL",
            "demo_clients": "{row}.archived_at IS NULL AND {row}.is_demo",
        },
        ("bureau_id", "archived_at", "is_demo"),
    ),
    "users": (
        {"active_users": "{row}.archived_at IS NULL AND {row}.status = 'active'"},
        ("bureau_id", "archived_at", "status"),
    ),
}
COUNTERS = ("clients", "demo_clients", "active_users")


class BureauCounter(db.Model):
    """One slot of a bureau's kept counts; the bureau's count is the sum over its slots."""

    __tablename__ = "bureau_counters"

    bureau_id: Mapped[int] = mapped_column(ForeignKey("bureaus.id", ondelete="CASCADE"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    clients: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    demo_clients: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    active_users: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # Like every table's; the ORM never edits these rows (only the triggers add to them), so it stays 1.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")


def _flag(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def _upsert(values: str, slot: str, source: str, where: str) -> str:
    """Add ``values`` (bureau_id, one delta per counter) to the bureau's slot, the row made when missing."""
    columns = ", ".join(COUNTERS)
    sets = ", ".join(f"{name} = bureau_counters.{name} + excluded.{name}" for name in COUNTERS)
    return (
        f"INSERT INTO bureau_counters (bureau_id, slot, {columns}) SELECT {values.replace('$SLOT', slot)}"
        f" {source} WHERE {where}"
        f" ON CONFLICT (bureau_id, slot) DO UPDATE SET {sets}"
    )


def _sqlite(table: str) -> list[str]:
    conditions, watched = COUNTED[table]

    def deltas(row: str, sign: str) -> str:
        return ", ".join(
            f"{sign}{_flag(conditions[name].format(row=row))}" if name in conditions else "0" for name in COUNTERS
        )

    def add(row: str, sign: str) -> str:
        exists = f"EXISTS (SELECT 1 FROM bureaus WHERE bureaus.id = {row}.bureau_id)"
        return _upsert(f"{row}.bureau_id, $SLOT, {deltas(row, sign)}", "0", "", exists)

    counts = lambda row: " OR ".join(f"({c.format(row=row)})" for c in conditions.values())  # noqa: E731
    changed = " OR ".join(f"(({c.format(row='OLD')}) IS NOT ({c.format(row='NEW')}))" for c in conditions.values())
    return [
        f"CREATE TRIGGER {table}_count_insert AFTER INSERT ON {table} WHEN {counts('NEW')} BEGIN {add('NEW', '')}; END",
        f"CREATE TRIGGER {table}_count_delete AFTER DELETE ON {table} WHEN {counts('OLD')}"
        f" BEGIN {add('OLD', '-')}; END",
        f"CREATE TRIGGER {table}_count_update AFTER UPDATE OF {', '.join(watched)} ON {table}"
        f" WHEN OLD.bureau_id IS NOT NEW.bureau_id OR {changed}"
        f" BEGIN {add('OLD', '-')}; {add('NEW', '')}; END",
    ]


def _postgresql(table: str) -> list[str]:
    conditions, _watched = COUNTED[table]

    def deltas(source: str) -> str:
        # The changed rows' contributions, summed per bureau; a bureau whose counts did not move is left out.
        totals = ", ".join(f"sum(d.{name})" for name in COUNTERS)
        nonzero = " OR ".join(f"sum(d.{name}) <> 0" for name in COUNTERS)
        return (
            f"(SELECT d.bureau_id, {totals} FROM ({source}) AS d(bureau_id, {', '.join(COUNTERS)})"
            f" GROUP BY d.bureau_id HAVING {nonzero}) AS t(bureau_id, {', '.join(COUNTERS)})"
        )

    def select_of(transition: str, sign: str) -> str:
        values = ", ".join(
            f"{sign}{_flag(conditions[name].format(row='r'))}" if name in conditions else "0" for name in COUNTERS
        )
        return f"SELECT r.bureau_id, {values} FROM {transition} AS r"

    exists = "EXISTS (SELECT 1 FROM bureaus WHERE bureaus.id = t.bureau_id)"
    values = "t.bureau_id, $SLOT, " + ", ".join(f"t.{name}" for name in COUNTERS)
    slot = f"mod(pg_backend_pid(), {SLOTS})"
    sources = {
        "insert": select_of("new_rows", ""),
        "delete": select_of("old_rows", "-"),
        "update": f"{select_of('new_rows', '')} UNION ALL {select_of('old_rows', '-')}",
    }
    referencing = {
        "insert": "REFERENCING NEW TABLE AS new_rows",
        "delete": "REFERENCING OLD TABLE AS old_rows",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    }
    statements = []
    for operation, source in sources.items():
        function = f"{table}_count_{operation}"
        body = _upsert(values, slot, f"FROM {deltas(source)}", exists)
        statements += [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$ BEGIN {body}; RETURN NULL; END"
            " $$ LANGUAGE plpgsql",
            f"CREATE TRIGGER {function} AFTER {operation.upper()} ON {table} {referencing[operation]}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    return statements


def counter_sql(dialect: str, drop: bool = False) -> list[str]:
    """The triggers that keep ``bureau_counters`` (the same from ``create_all`` and the migration)."""
    statements: list[str] = []
    for table in COUNTED:
        if drop:
            for operation in ("insert", "delete", "update"):
                if dialect == "sqlite":
                    statements.append(f"DROP TRIGGER IF EXISTS {table}_count_{operation}")
                else:
                    statements += [
                        f"DROP TRIGGER IF EXISTS {table}_count_{operation} ON {table}",
                        f"DROP FUNCTION IF EXISTS {table}_count_{operation}()",
                    ]
        else:
            statements += _sqlite(table) if dialect == "sqlite" else _postgresql(table)
    return statements


def recount_sql() -> list[str]:
    """Fill ``bureau_counters`` from the stored rows (the migration, and ``flask`` repair after a bulk load)."""
    live_clients = _flag("c.archived_at IS NULL")
    live_demo = _flag("c.archived_at IS NULL AND c.is_demo")
    active = _flag("u.archived_at IS NULL AND u.status = 'active'")
    return [
        "DELETE FROM bureau_counters",
        "INSERT INTO bureau_counters (bureau_id, slot, clients, demo_clients, active_users)"
        " SELECT b.id, 0,"
        f" (SELECT coalesce(sum({live_clients}), 0) FROM clients c WHERE c.bureau_id = b.id),"
        f" (SELECT coalesce(sum({live_demo}), 0) FROM clients c WHERE c.bureau_id = b.id),"
        f" (SELECT coalesce(sum({active}), 0) FROM users u WHERE u.bureau_id = b.id)"
        " FROM bureaus b",
    ]


def attach_to_metadata(metadata) -> None:
    """Install the triggers after ``metadata.create_all`` has made the tables (as models.rules does)."""
    for dialect in ("sqlite", "postgresql"):
        for statement in counter_sql(dialect):
            event.listen(metadata, "after_create", DDL(statement).execute_if(dialect=dialect))
