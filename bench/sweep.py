"""In-process sweep: every page ``bench/grids.py`` measures, fetched through Flask's test client against a built
benchmark database, with the time spent in the database driver, the process's CPU time and the wall time of each
(median of three after one warm-up). No HTTP server and no load client share the machine, so the figures move less
with other work than the served benchmark's do; the served figures (``grids.py``) stay the ones the targets are read
from.

    .venv/bin/python bench/sweep.py sqlite:////abs/path/bench/.data/grids-1000000.db [LABEL-PART]
    .venv/bin/python bench/sweep.py postgresql://postgres@127.0.0.1/bench_grids_1000000

Prints one line per page, slowest wall time first. The database must have been built by ``grids.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    url = sys.argv[1]
    only = sys.argv[2] if len(sys.argv) > 2 else ""
    os.environ.setdefault("APP_ENV", "development")
    os.environ["DATABASE_URL"] = url
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import grids
    from sqlalchemy import event

    from app import create_app
    from extensions import db

    pages = [page for page in grids.pages(url) if only in page["label"]]
    app = create_app({"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    client = app.test_client()
    email, password = grids.DEMO_LOGIN
    client.post("/login", data={"email": email, "password": password})
    spent = {"db": 0.0}
    rows = []
    with app.app_context():
        engine = db.engine

        def before(conn, *_args):
            conn.info["started"] = time.perf_counter()

        def after(conn, *_args):
            spent["db"] += time.perf_counter() - conn.info["started"]

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        for page in pages:
            client.get(page["path"])
            dbs, cpus, walls, status = [], [], [], None
            for _ in range(3):
                spent["db"], wall, cpu = 0.0, time.perf_counter(), time.process_time()
                status = client.get(page["path"]).status_code
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
                dbs.append(spent["db"])
            rows.append(
                (statistics.median(walls), statistics.median(cpus), statistics.median(dbs), status, page["label"])
            )
    print("wall ms | cpu ms | driver ms | status | page")
    for wall, cpu, driver, status, label in sorted(rows, reverse=True):
        print(f"{wall * 1000:7.1f} | {cpu * 1000:6.1f} | {driver * 1000:9.1f} | {status} | {label}")


if __name__ == "__main__":
    main()
