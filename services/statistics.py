"""Planner statistics: what lets either database choose the grids' indexes instead of sorting a bureau's rows.

SQLite keeps no statistics until ANALYZE runs, and without them it guesses (for example, it walks the name index for
every filter); PostgreSQL's autovacuum analyses tables by itself, but only after enough rows changed, so a bulk load
or a migration that adds indexes leaves it guessing for a while. Hence one function, run after every migration
(``migrations/env.py``), after a bulk load (``services.synthetic``) and periodically by the outbox worker.
"""

from __future__ import annotations

from sqlalchemy import Connection

# Rows SQLite examines per index: enough for the planner's averages, and ANALYZE of a database with a million clients
# takes about a second instead of about a minute.
SQLITE_ANALYSIS_LIMIT = 2000

# How often the outbox worker refreshes them (seconds).
REFRESH_EVERY = 4 * 3600


def refresh_statistics(connection: Connection) -> None:
    """Refresh the planner's statistics of every table, within the connection's transaction (the caller commits)."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.exec_driver_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
        connection.exec_driver_sql("ANALYZE")
    elif dialect == "postgresql":
        connection.exec_driver_sql("ANALYZE")
