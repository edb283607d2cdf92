"""Query plans of every grid page: each page's time, its slowest statement (or the grid's own query) and the database's plan for it.

Usage (from the project root, against a database built by ``bench/grids.py`` or ``seed-synthetic``):

    .venv/bin/python bench/grid_plans.py --url sqlite:////path/grids-1000000.db [--only TEXT]
    .venv/bin/python bench/grid_plans.py --url postgresql://postgres@127.0.0.1:5432/bench_grids_1000000

The pages are the ones ``bench/grids.py`` measures (read from the application's views). Each page is fetched in
process, logged in as the demo administrator, with every SQL statement timed; the slowest one is printed with
``EXPLAIN QUERY PLAN`` (SQLite) or ``EXPLAIN ANALYZE`` (PostgreSQL). A tool for reading plans, not a benchmark:
the page times through gunicorn come from ``bench/grids.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--only", default="", help="only pages whose label contains this text")
    parser.add_argument("--plans", action="store_true", help="print the slowest statement's plan")
    parser.add_argument("--sql-chars", type=int, default=600, help="how much of the statement to print")
    args = parser.parse_args()
    os.environ.setdefault("APP_ENV", "development")

    from grids import DEMO_LOGIN, pages
    from sqlalchemy import event, text

    from app import create_app
    from config import normalise_database_url
    from extensions import db

    url = normalise_database_url(args.url)
    catalogue = [(label, path) for label, path in pages(url) if args.only in label]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    answer = client.post("/login", data={"email": DEMO_LOGIN[0], "password": DEMO_LOGIN[1]})
    if answer.status_code != 302:
        sys.exit(f"login failed: {answer.status_code}")
    timings: list[tuple[float, str, object]] = []

    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _start(conn, cursor, statement, parameters, context, executemany):
            conn.info["started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _stop(conn, cursor, statement, parameters, context, executemany):
            timings.append(((time.perf_counter() - conn.info["started"]) * 1000, statement, parameters))

    for label, path in catalogue:
        client.get(path)  # warm
        timings.clear()
        started = time.perf_counter()
        answer = client.get(path)
        total = (time.perf_counter() - started) * 1000
        slowest = max(timings, default=(0.0, "", None), key=lambda item: item[0])
        # SQLite produces rows while they are fetched, so its statement times are small: show the grid's own query.
        grid = [item for item in timings if " LIMIT " in item[1] and "ORDER BY" in item[1]]
        if grid:
            slowest = grid[0]
        print(f"{total:9.1f} ms  {answer.status_code}  {label}  (slowest statement {slowest[0]:.1f} ms)", flush=True)
        if args.plans and slowest[1]:
            with app.app_context(), db.engine.connect() as conn:
                raw = conn.connection.driver_connection
                prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN ANALYZE "
                cursor = raw.cursor()
                cursor.execute(prefix + slowest[1], slowest[2] or ())
                rows = cursor.fetchall()
                print("    " + " ".join(slowest[1].split())[: args.sql_chars])
                for row in rows:
                    print("      " + " | ".join(str(part) for part in row))
                conn.execute(text("SELECT 1"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
