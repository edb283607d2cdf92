"""Page benchmark: every grid page, sort, search, filter, ajax lookup, the client page tabs and the billing page,
timed through gunicorn at two data sizes, p50 / p95 per page and the ratio between the sizes, side by side with a
plain Flask-Admin scaffold over the same tables (bench/scaffold.py) measured in the same run; and a load mode
(``--load``): simulated staff working at once for a while, p50 / p95 / p99 and errors.

Usage (from the project root; gunicorn comes with ``pip install -e '.[production]'``):

    .venv/bin/python bench/grids.py --database sqlite --sizes 10000 1000000
    .venv/bin/python bench/grids.py --database postgresql --sizes 10000 1000000 --samples 30
    .venv/bin/python bench/grids.py --database postgresql --load --clients 200000 --staff 50 --duration 60

Each size is a database of its own, kept between runs (SQLite files ``grids-<N>.db`` under ``--data-dir``,
PostgreSQL databases named ``<--pg-prefix>_<N>``, default ``bench_grids_<N>``), built once with the migrations,
``seed-demo`` and ``seed-synthetic --clients N`` into the demo bureau, then analysed. A database that exists is
reused and brought up to date: ``db upgrade`` (new migrations) and ``ANALYZE`` again. ``--fresh`` builds them again.

Pages: the server is gunicorn with two workers, as in production; the pages are fetched logged in as the demo
administrator, one at a time, ``--samples`` times each (after one warm-up fetch). The list of pages is read from the
application itself (every model view's list, each sortable column, its search, each filter with a value it accepts,
its ajax lookups, a deep page), so a new grid or filter is measured without editing this file. Each page that has a
counterpart in the scaffold (``scaffold.counterpart``) is fetched from the scaffold, served by gunicorn the same way
on the next port, right after the product's page, so both see the same machine. The targets (issue 9): p95 <= 60 ms
at the large size on both engines, and p95(large) / p95(small) <= 1.5.

Load (``--load``, bench/load.py): ``--staff`` simulated staff members, each logged in as a staff user of the demo
bureau of its own (created in the bench database when missing), loop for ``--duration`` seconds over a weighted mix
of grids, searches, client pages, saves through the edit forms and bulk actions, pausing ``--think`` seconds on
average between clicks. The target (issue 9): p95 <= 300 ms with 0 errors for 50 staff at 200k clients on PostgreSQL.

Nothing is gated on wall-clock time: the script prints the figures and marks what misses. The servers are stopped
when the script ends, fails or is interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEMO_LOGIN = ("ingrid@nordlys.example", "demo-passord-2026")
DEMO_BUREAU = "923456783"
TARGET_MS = 60.0
TARGET_RATIO = 1.5
BIN = Path(sys.executable).parent
SEARCH_TERM = "an"


def database_url(database: str, size: int, data_dir: Path, pg_prefix: str) -> str:
    if database == "sqlite":
        return f"sqlite:///{data_dir.resolve() / f'grids-{size}.db'}"
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_prefix}_{size}"


def _flask(url: str, *args: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "development"}
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def build(database: str, size: int, data_dir: Path, pg_prefix: str, fresh: bool) -> str:
    """The size's database: built once (migrations, demo data, ``size`` synthetic clients, statistics), and when
    reused, upgraded to the newest migration and analysed again."""
    url = database_url(database, size, data_dir, pg_prefix)
    if database == "sqlite":
        path = data_dir.resolve() / f"grids-{size}.db"
        exists = path.exists()
        if not exists or fresh:
            data_dir.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        import psycopg

        name = f"{pg_prefix}_{size}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
            if not exists or fresh:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{name}"')
    started = time.monotonic()
    _flask(url, "db", "upgrade")
    if exists and not fresh:
        _analyse(url)
        _flask(url, "billing", "refresh-totals")  # computes the kept totals once, then applies waiting changes
        print(f"reused {database} with {size:,} clients (upgraded, analysed) in {_since(started)}", file=sys.stderr)
        return url
    _flask(url, "seed-demo")
    _flask(url, "seed-synthetic", "--clients", str(size), "--bureau", DEMO_BUREAU)
    _analyse(url)
    _flask(url, "billing", "refresh-totals")  # what the worker does after a load: the pages read kept totals
    print(f"built {database} with {size:,} clients in {_since(started)}", file=sys.stderr)
    return url


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.0f} s"


def engine_for(url: str, **options: Any):
    from sqlalchemy import create_engine

    sys.path.insert(0, str(ROOT))
    from config import normalise_database_url

    return create_engine(normalise_database_url(url), **options)


def _analyse(url: str) -> None:
    from sqlalchemy import text

    engine = engine_for(url, isolation_level="AUTOCOMMIT")
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


def pages(url: str) -> list[dict[str, Any]]:
    """Every grid page, sort, search, filter and lookup, read from the app's views, plus the client page's tabs,
    a details page, the billing page and home: ``label`` and ``path``, and what the page does (``view``, ``kind``
    and its arguments) so that the scaffold's counterpart and the load mix can be chosen from it."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("APP_ENV", "development")
    from flask_admin.contrib.sqla import ModelView
    from flask_babel import force_locale

    from app import create_app
    from extensions import db
    from models import Client, Person

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    found: list[dict[str, Any]] = []
    with app.test_request_context():
        admin = app.extensions["admin"][0]
        client_id = db.session.query(Client.id).filter(Client.is_internal.is_(False)).order_by(Client.id).first()[0]
        for view in admin._views:
            if not isinstance(view, ModelView):
                continue
            base = f"{view.url}/"
            grid = {"view": view.endpoint, "admin_only": bool(getattr(view, "admin_only", False))}

            def add(label: str, path: str, kind: str, grid=grid, view=view, **what: Any) -> None:
                found.append({"label": f"{view.endpoint}: {label}", "path": path, "kind": kind, **grid, **what})

            add("list", base, "list")
            # ?sort=N names the N-th column of the list (Flask-Admin), sorted when that column is sortable.
            sortable = [(index, name) for index, (name, _label) in enumerate(view._list_columns)]
            for index, name in (pair for pair in sortable if pair[1] in view._sortable_columns):
                add(f"sort {name}", f"{base}?sort={index}", "sort", column=name, desc=False)
                add(f"sort {name} desc", f"{base}?sort={index}&desc=1", "sort", column=name, desc=True)
            if view._search_supported:
                add("search fragment", f"{base}?search={SEARCH_TERM}", "search", term=SEARCH_TERM)
            for index, flt in enumerate(view._filters or []):
                sample = _filter_sample(flt)
                if sample is None:
                    continue
                with force_locale("en"):
                    operation = str(flt.operation())
                column = getattr(getattr(flt, "column", None), "key", None)
                add(
                    f"filter {flt.name} {flt.operation()}",
                    f"{base}?flt0_{index}={sample}",
                    "filter",
                    column=column,
                    operation=operation,
                    value=sample,
                )
            for name in view._form_ajax_refs or {}:
                path = f"{base}ajax/lookup/?name={name}&query={SEARCH_TERM}"
                add(f"lookup {name}", path, "lookup", name=name, term=SEARCH_TERM)
            add("page 2000", f"{base}?page=2000", "page", page=2000)
        person = db.session.query(Person.id).filter(Person.client_id == client_id).first()
        for tab in ("overview", "people", "packages"):
            path = f"/admin/clients/manage/?id={client_id}&tab={tab}"
            found.append({"label": f"client page: {tab}", "path": path, "kind": "client page", "tab": tab})
        if person is not None:
            found.append(
                {"label": "person details", "path": f"/admin/persons/details/?id={person[0]}", "kind": "details"}
            )
        found.append({"label": "billing page (previous month)", "path": "/admin/billing/", "kind": "billing"})
        found.append({"label": "home", "path": "/admin/", "kind": "home"})
        # Hjem's links that no grid filter above covers: the jobs list by status.
        found.append({"label": "jobs: running (from home)", "path": "/admin/jobs/?status=running", "kind": "jobs"})
        found.append({"label": "jobs: failed (from home)", "path": "/admin/jobs/?status=failed&days=7", "kind": "jobs"})
        # Every grid page above also reads its saved-views menu (one indexed query); this is their own page.
        found.append(
            {"label": "saved views: manage (clients)", "path": "/admin/clients/views/manage/", "kind": "views"}
        )
        db.engine.dispose()
    return found


def scaffold_catalogue(url: str) -> dict[str, dict[str, Any]]:
    import scaffold

    app = scaffold.create_app(url)
    return scaffold.catalogue(app)


@contextmanager
def served(spec: str, url: str, port: int, args: argparse.Namespace, name: str) -> Iterator[str]:
    """gunicorn serving ``spec`` over ``url`` on ``port`` while the block runs; yields the base URL. The server's
    log goes to a file in the temporary directory (its path is printed when the block fails)."""
    gunicorn = BIN / "gunicorn"
    if not gunicorn.exists():
        sys.exit("gunicorn is missing: .venv/bin/pip install -e '.[production]'")
    log_path = Path(tempfile.gettempdir()) / f"bench-{name}-{port}.log"
    command = [
        str(gunicorn),
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "600",
        "--pythonpath",
        str(ROOT / "bench"),
        spec,
    ]
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "development"}
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    SERVERS[base] = server.pid
    try:
        _wait_until_up(server, base, log_path)
        yield base
    except BaseException:
        print(f"{name} server log: {log_path}", file=sys.stderr)
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


SERVERS: dict[str, int] = {}  # base URL -> the gunicorn master's pid, while it serves


def workers_peak_rss_mb(base: str) -> float | None:
    """The largest peak resident memory (VmHWM) among the gunicorn workers serving ``base``, in MB (Linux)."""
    master = SERVERS.get(base)
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:  # the process ended meanwhile
            continue
        if fields.get("PPid", "").strip() == str(master) and "VmHWM" in fields:
            peaks.append(int(fields["VmHWM"].split()[0]) / 1024)
    return max(peaks) if peaks else None


def _wait_until_up(server: subprocess.Popen, base: str, log_path: Path) -> None:
    import requests

    for _attempt in range(300):
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn stopped (exit {server.returncode}); see {log_path}")
        try:
            requests.get(f"{base}/login", timeout=10)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer; see {log_path}")


def csrf_token(html: str) -> str:
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    return token.group(1) if token else ""


def login(base: str, email: str = DEMO_LOGIN[0], password: str = DEMO_LOGIN[1]):
    import requests

    session = requests.Session()
    form = session.get(f"{base}/login", timeout=60).text
    data = {"email": email, "password": password, "csrf_token": csrf_token(form)}
    answer = session.post(f"{base}/login", data=data, timeout=60, allow_redirects=False)
    if answer.status_code != 302:
        raise RuntimeError(f"login as {email} failed: {answer.status_code}")
    return session


def measure(session, base: str, path: str, samples: int) -> dict[str, Any]:
    times, statuses = [], set()
    for attempt in range(samples + 1):
        started = time.perf_counter()
        answer = session.get(f"{base}{path}", timeout=600, allow_redirects=False)
        elapsed = (time.perf_counter() - started) * 1000
        statuses.add(answer.status_code)
        if attempt:  # the first fetch warms caches
            times.append(elapsed)
    return {"p50": statistics.median(times), "p95": percentile(times, 95), "status": sorted(statuses)}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``values`` need not be sorted); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def run_pages(args: argparse.Namespace) -> dict[int, dict[str, dict[str, Any]]]:
    import requests

    results: dict[int, dict[str, dict[str, Any]]] = {}
    for size in args.sizes:
        url = build(args.database, size, args.data_dir, args.pg_prefix, args.fresh)
        catalogue = [entry for entry in pages(url) if args.only in entry["label"]]
        import scaffold

        views = {} if args.no_scaffold else scaffold_catalogue(url)
        with (
            served("app:create_app()", url, args.port, args, "product") as product,
            served("scaffold:create_app()", url, args.port + 1, args, "scaffold") as anchor,
        ):
            session, plain = login(product), requests.Session()
            results[size] = {}
            for entry in catalogue:
                figures = {"path": entry["path"], **measure(session, product, entry["path"], args.samples)}
                twin = scaffold.counterpart(entry, views)
                figures["scaffold"] = (
                    None if twin is None else {"path": twin, **measure(plain, anchor, twin, args.samples)}
                )
                results[size][entry["label"]] = figures
                versus = "" if twin is None else f"  (scaffold {figures['scaffold']['p95']:.1f} ms)"
                print(f"{size:>9,} {figures['p95']:9.1f} ms  {entry['label']}{versus}", file=sys.stderr, flush=True)
            MEMORY[size] = workers_peak_rss_mb(product)
    return results


MEMORY: dict[int, float | None] = {}  # size -> the product's largest worker peak RSS in MB, after every page


def print_pages(database: str, sizes: list[int], results: dict[int, dict[str, dict[str, Any]]]) -> None:
    small, large = min(sizes), max(sizes)
    print(f"\n{database}: p50 / p95 in ms at {small:,} and {large:,} clients; ratio = p95 large / p95 small;")
    print(f"scaffold = plain Flask-Admin over the same tables at {large:,}, vs scaffold = p95 product / p95 scaffold\n")
    print(
        f"| page | p50 {small:,} | p95 {small:,} | p50 {large:,} | p95 {large:,} | ratio | status | target "
        "| scaffold p50 | scaffold p95 | vs scaffold |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
    missed = 0
    for label, big in results[large].items():
        little = results[small].get(label, big)
        ratio = big["p95"] / little["p95"] if little["p95"] else float("inf")
        ok = big["p95"] <= TARGET_MS and (small == large or ratio <= TARGET_RATIO) and big["status"] == [200]
        missed += not ok
        twin = big.get("scaffold")
        if twin is None:
            anchor = "– | – | –"
        else:
            flag = "" if twin["status"] == [200] else f" ({','.join(map(str, twin['status']))})"
            versus = big["p95"] / twin["p95"] if twin["p95"] else float("inf")
            anchor = f"{twin['p50']:.1f} | {twin['p95']:.1f}{flag} | {versus:.2f}×"
        print(
            f"| {label} | {little['p50']:.1f} | {little['p95']:.1f} | {big['p50']:.1f} | {big['p95']:.1f} "
            f"| {ratio:.2f} | {','.join(map(str, big['status']))} | {'met' if ok else 'MISSED'} | {anchor} |"
        )
    print(f"\n{len(results[large]) - missed} of {len(results[large])} pages meet the target.")
    memory = "; ".join(
        f"{size:,} clients: {'?' if MEMORY.get(size) is None else f'{MEMORY[size]:.0f} MB'}" for size in sizes
    )
    print(f"Server memory (peak resident size of the largest gunicorn worker after every page): {memory}.")


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `served` blocks, which stop the servers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--pg-prefix", default="bench_grids", help="PostgreSQL databases are named PREFIX_<size>")
    parser.add_argument("--port", type=int, default=5097, help="the product's port; the scaffold uses the next one")
    parser.add_argument("--fresh", action="store_true", help="build the databases again")
    parser.add_argument("--only", default="", help="measure only pages whose label contains this text")
    parser.add_argument("--no-scaffold", action="store_true", help="do not measure the scaffold")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    server = parser.add_argument_group("server (gunicorn)")
    server.add_argument("--workers", type=int, default=2)
    server.add_argument("--worker-class", default=None, help="default: sync for pages, gthread for --load")
    server.add_argument("--threads", type=int, default=None, help="default: 1 for pages, 4 for --load")
    load = parser.add_argument_group("load mode")
    load.add_argument("--load", action="store_true", help="simulate staff working at once instead of timing pages")
    load.add_argument("--clients", type=int, default=200_000, help="the database size for --load")
    load.add_argument("--staff", type=int, default=50)
    load.add_argument("--duration", type=float, default=60.0, help="seconds")
    load.add_argument("--think", type=float, default=1.0, help="mean seconds between one staff member's clicks")
    load.add_argument("--seed", type=int, default=9, help="random seed of the mix")
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    if args.worker_class is None:
        args.worker_class = "gthread" if args.load else "sync"
    if args.threads is None:
        args.threads = 4 if args.load else 1
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    settings = {
        key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items() if key != "json"
    }

    if args.load:
        import load as load_mode

        report = load_mode.run(args)
        load_mode.print_report(args, report)
        if args.json:
            args.json.write_text(json.dumps({"settings": settings, "load": report}, indent=2))
        return 0

    results = run_pages(args)
    print_pages(args.database, args.sizes, results)
    if args.json:
        memory = {str(size): MEMORY.get(size) for size in args.sizes}
        args.json.write_text(
            json.dumps({"settings": settings, "results": results, "worker_peak_rss_mb": memory}, indent=2)
        )
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        raise SystemExit(130) from None
