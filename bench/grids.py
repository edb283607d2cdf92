"""Page benchmark: every grid page, sort, search, filter, ajax lookup, the client page tabs and the billing page,
timed through gunicorn at two data sizes, p50 / p95 per page and the ratio between the sizes.

Usage (from the project root; gunicorn comes with ``pip install -e '.[production]'``):

    .venv/bin/python bench/grids.py --database sqlite --sizes 10000 1000000
    .venv/bin/python bench/grids.py --database postgresql --sizes 10000 1000000 --samples 30

Each size is a database of its own, kept between runs (SQLite files under ``--data-dir``, PostgreSQL databases
named ``bench_grids_<N>``), built once with the migrations, ``seed-demo`` and ``seed-synthetic --clients N`` into the
demo bureau, then analysed. ``--fresh`` builds them again. The server is gunicorn with two workers, as in
production; the pages are fetched logged in as the demo administrator, one at a time, ``--samples`` times each
(after one warm-up fetch). The list of pages is read from the application itself (every model view's list, each
sortable column, its search, each filter with a value it accepts), so a new grid or filter is measured without
editing this file.

The targets (issue 9): p95 <= 60 ms at the large size on both engines, and p95(large) / p95(small) <= 1.5. Nothing
is gated on wall-clock time: the script prints the figures and marks the pages that miss.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEMO_LOGIN = ("ingrid@nordlys.example", "demo-passord-2026")
DEMO_BUREAU = "923456783"
TARGET_MS = 60.0
TARGET_RATIO = 1.5
BIN = Path(sys.executable).parent


def database_url(database: str, size: int, data_dir: Path) -> str:
    if database == "sqlite":
        return f"sqlite:///{data_dir / f'grids-{size}.db'}"
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/bench_grids_{size}"


def _flask(url: str, *args: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "development"}
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def build(database: str, size: int, data_dir: Path, fresh: bool) -> str:
    """The size's database, built once: migrations, demo data, ``size`` synthetic clients, statistics."""
    url = database_url(database, size, data_dir)
    if database == "sqlite":
        path = data_dir / f"grids-{size}.db"
        if path.exists() and not fresh:
            return url
        data_dir.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        import psycopg

        name = f"bench_grids_{size}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists and not fresh:
                return url
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    started = time.monotonic()
    _flask(url, "db", "upgrade")
    _flask(url, "seed-demo")
    _flask(url, "seed-synthetic", "--clients", str(size), "--bureau", DEMO_BUREAU)
    _analyse(url)
    print(f"built {database} with {size:,} clients in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return url


def _analyse(url: str) -> None:
    from sqlalchemy import create_engine, text

    sys.path.insert(0, str(ROOT))
    from config import normalise_database_url

    engine = create_engine(normalise_database_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def _filter_sample(flt: Any) -> str | None:
    """A value the filter accepts: its first fixed option, or one that fits its kind."""
    options = flt.options
    if options is not None and not callable(options):
        return str(options[0][0]) if options else None
    kind = type(flt).__name__
    if "Between" in kind:
        return "2026-01-01 to 2026-12-31" if "Date" in kind else "1 to 100"
    if "Date" in kind:
        return "2026-11-01"
    if "Bool" in kind:
        return "1"
    if "Int" in kind or "Float" in kind:
        return "1"
    return "an"


def pages(url: str) -> list[tuple[str, str]]:
    """(label, path) of every grid page, sort, search and filter, read from the app's views."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("APP_ENV", "development")
    from flask_admin.contrib.sqla import ModelView

    from app import create_app
    from extensions import db
    from models import Client, Person

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    found: list[tuple[str, str]] = []
    with app.test_request_context():
        admin = app.extensions["admin"][0]
        client_id = db.session.query(Client.id).filter(Client.is_internal.is_(False)).order_by(Client.id).first()[0]
        for view in admin._views:
            if not isinstance(view, ModelView):
                continue
            base = f"{view.url}/"
            found.append((f"{view.endpoint}: list", base))
            for index, (name, _column) in enumerate(view._sortable_columns.items()):
                found.append((f"{view.endpoint}: sort {name}", f"{base}?sort={index}"))
                found.append((f"{view.endpoint}: sort {name} desc", f"{base}?sort={index}&desc=1"))
            if view._search_supported:
                found.append((f"{view.endpoint}: search fragment", f"{base}?search=an"))
            for index, flt in enumerate(view._filters or []):
                sample = _filter_sample(flt)
                if sample is not None:
                    label = f"{view.endpoint}: filter {flt.name} {flt.operation()}"
                    found.append((label, f"{base}?flt0_{index}={sample}"))
            for name in view._form_ajax_refs or {}:
                found.append((f"{view.endpoint}: lookup {name}", f"{base}ajax/lookup/?name={name}&query=an"))
            found.append((f"{view.endpoint}: page 2000", f"{base}?page=2000"))
        person = db.session.query(Person.id).filter(Person.client_id == client_id).first()
        for tab in ("overview", "people", "packages"):
            found.append((f"client page: {tab}", f"/admin/clients/manage/?id={client_id}&tab={tab}"))
        if person is not None:
            found.append(("person details", f"/admin/persons/details/?id={person[0]}"))
        found.append(("billing page (previous month)", "/admin/billing/"))
        found.append(("home", "/admin/"))
    return found


def serve(url: str, port: int) -> subprocess.Popen:
    gunicorn = BIN / "gunicorn"
    if not gunicorn.exists():
        sys.exit("gunicorn is missing: .venv/bin/pip install -e '.[production]'")
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "development"}
    server = subprocess.Popen(
        [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}", "--timeout", "600", "app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import requests

    for _attempt in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/login", timeout=2)
            return server
        except requests.ConnectionError:
            time.sleep(0.2)
    server.kill()
    sys.exit("gunicorn did not answer")


def login(port: int):
    import requests

    session = requests.Session()
    form = session.get(f"http://127.0.0.1:{port}/login", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    data = {"email": DEMO_LOGIN[0], "password": DEMO_LOGIN[1], "csrf_token": token.group(1) if token else ""}
    answer = session.post(f"http://127.0.0.1:{port}/login", data=data, timeout=30, allow_redirects=False)
    if answer.status_code != 302:
        sys.exit(f"login failed: {answer.status_code}")
    return session


def measure(session, port: int, path: str, samples: int) -> dict[str, Any]:
    times, statuses = [], set()
    for attempt in range(samples + 1):
        started = time.perf_counter()
        answer = session.get(f"http://127.0.0.1:{port}{path}", timeout=600)
        elapsed = (time.perf_counter() - started) * 1000
        statuses.add(answer.status_code)
        if attempt:  # the first fetch warms caches
            times.append(elapsed)
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return {"p50": statistics.median(times), "p95": p95, "status": sorted(statuses)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--port", type=int, default=5097)
    parser.add_argument("--fresh", action="store_true", help="build the databases again")
    parser.add_argument("--only", default="", help="measure only pages whose label contains this text")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    results: dict[int, dict[str, dict[str, Any]]] = {}
    for size in args.sizes:
        url = build(args.database, size, args.data_dir, args.fresh)
        catalogue = [(label, path) for label, path in pages(url) if args.only in label]
        server = serve(url, args.port)
        try:
            session = login(args.port)
            results[size] = {}
            for label, path in catalogue:
                results[size][label] = {"path": path, **measure(session, args.port, path, args.samples)}
                print(f"{size:>9,} {results[size][label]['p95']:9.1f} ms  {label}", file=sys.stderr, flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)

    small, large = min(args.sizes), max(args.sizes)
    print(f"\n{args.database}: p50 / p95 in ms at {small:,} and {large:,} clients; ratio = p95 large / p95 small\n")
    print(f"| page | p50 {small:,} | p95 {small:,} | p50 {large:,} | p95 {large:,} | ratio | status | target |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    missed = 0
    for label, big in results[large].items():
        little = results[small].get(label, big)
        ratio = big["p95"] / little["p95"] if little["p95"] else float("inf")
        ok = big["p95"] <= TARGET_MS and (small == large or ratio <= TARGET_RATIO) and big["status"] == [200]
        missed += not ok
        print(
            f"| {label} | {little['p50']:.1f} | {little['p95']:.1f} | {big['p50']:.1f} | {big['p95']:.1f} "
            f"| {ratio:.2f} | {','.join(map(str, big['status']))} | {'met' if ok else 'MISSED'} |"
        )
    print(f"\n{len(results[large]) - missed} of {len(results[large])} pages meet the target.")
    if args.json:
        args.json.write_text(json.dumps({"database": args.database, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
