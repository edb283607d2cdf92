"""The query plan of every statement Hjem sends, on a seeded database (``flask seed-synthetic``), on either engine.

    .venv/bin/python bench/home_explain.py sqlite:////tmp/seed.db [BUREAU_ORG_NUMBER]
    .venv/bin/python bench/home_explain.py postgresql://postgres@127.0.0.1/seed

Hjem's view-model (services/home.py) is built once for the bureau with the most clients (or the one named) while
every statement is recorded with its parameters; each is then explained with the same parameters and timed. A plan
line that scans a table rather than searching an index is marked ``<-- SCAN``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    url = sys.argv[1]
    wanted = sys.argv[2] if len(sys.argv) > 2 else None
    os.environ.setdefault("APP_ENV", "development")
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import event, func, select

    from app import create_app
    from extensions import db
    from models import Bureau, BureauCounter
    from services import home

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.test_request_context():
        if wanted:
            bureau_id = db.session.scalar(select(Bureau.id).where(Bureau.org_number == wanted))
        else:
            bureau_id = db.session.scalar(
                select(BureauCounter.bureau_id)
                .group_by(BureauCounter.bureau_id)
                .order_by(func.sum(BureauCounter.clients).desc())
                .limit(1)
            )
        db.session.commit()
        home.build_home(db.session, db.engine, bureau_id)  # warm-up: the month's totals are asked for once
        db.session.commit()
        recorded: list[tuple[str, object]] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("SELECT"):
                recorded.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", record)
        started = time.perf_counter()
        page = home.build_home(db.session, db.engine, bureau_id)
        total = (time.perf_counter() - started) * 1000
        event.remove(db.engine, "before_cursor_execute", record)
        db.session.commit()
        dialect = db.engine.dialect.name
        print(f"{dialect}: bureau {bureau_id}, {page.counters}, build_home {total:.1f} ms, {len(recorded)} SELECTs")
        with db.engine.connect() as conn:
            raw = conn.connection.driver_connection
            for number, (statement, parameters) in enumerate(recorded, 1):
                cursor = raw.cursor()
                took = []
                for _ in range(3):
                    began = time.perf_counter()
                    cursor.execute(statement, parameters)
                    cursor.fetchall()
                    took.append((time.perf_counter() - began) * 1000)
                print(f"\n-- {number} ({sorted(took)[1]:.2f} ms): {' '.join(statement.split())[:300]}")
                if dialect == "sqlite":
                    cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                    lines = [row[3] for row in cursor.fetchall()]
                else:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF, SUMMARY ON) " + statement, parameters)
                    lines = [row[0] for row in cursor.fetchall()]
                for line in lines:
                    scan = (
                        dialect == "sqlite" and line.startswith("SCAN") and "USING" not in line and " anon_" not in line
                    ) or (dialect == "postgresql" and "Seq Scan" in line)
                    print(f"   {line}{'   <-- SCAN' if scan else ''}")
                cursor.close()


if __name__ == "__main__":
    main()
