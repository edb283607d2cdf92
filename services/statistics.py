"""Planner statistics: what lets either database choose the grids' indexes instead of sorting a bureau's rows.

SQLite keeps no statistics until ANALYZE runs, and without them it guesses (for example, it walks the name index for
every filter); PostgreSQL's autovacuum analyses tables by itself, but only after enough rows changed, so a bulk load
or a migration that adds indexes leaves it guessing for a while. Hence one function, run after every migration
(``migrations/env.py``), after a bulk load (``services.synthetic``) and periodically by the outbox worker.
"""

from __future__ import annotations

from sqlalchemy import Connection

# How often the outbox worker refreshes them (seconds).
REFRESH_EVERY = 4 * 3600


def refresh_statistics(connection: Connection, *, periodic: bool = False) -> None:
    """Refresh the planner's statistics of every table, within the connection's transaction (the caller commits).

    SQLite's ANALYZE reads every index in full: a bounded one (``PRAGMA analysis_limit``) reads each index's first
    entries only, and with one big bureau among small ones it concluded that a bureau holds about a thousand users
    instead of three million, so the users picker walked the bureau's kind index instead of its hundred candidates
    (285 ms instead of 8 ms at 1M clients). A full ANALYZE of a million clients takes about half a minute, so the
    worker's periodic pass asks ``PRAGMA optimize``, which analyses again only the tables that have grown or
    shrunk a lot since. PostgreSQL samples its tables whatever their size (about a second at 1M clients)."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.exec_driver_sql("PRAGMA analysis_limit = 0")
        connection.exec_driver_sql("PRAGMA optimize" if periodic else "ANALYZE")
    elif dialect == "postgresql":
        connection.exec_driver_sql("ANALYZE")
