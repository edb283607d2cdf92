"""Billing-export benchmark: the app's export against the bare driver, on the same query and the same rows.

Usage (from the project root):

    .venv/bin/python bench/export_bench.py --database sqlite --clients 1000000
    .venv/bin/python bench/export_bench.py --database postgresql --clients 1000000 [--keep]

It creates a throwaway database (a SQLite file in a temporary directory, or a PostgreSQL database named
``export_bench_<hex>``), builds the schema, loads ``--clients`` synthetic clients with ``seed_synthetic``, and
exports the previous month's billing basis (summary and detail), each measurement in its own child process so
that its peak memory (the kernel's high-water mark, VmHWM) is its own:

* app: ``services.billing.export`` into a file, as ``flask billing export --output`` does;
* baseline: the same SQL (compiled with literal binds) through the bare driver into a file: ``sqlite3`` with
  ``csv.writer`` on SQLite, ``COPY (...) TO STDOUT WITH (FORMAT csv, HEADER)`` through psycopg on PostgreSQL.

Targets (from the product's issue): the app reaches at least half the baseline's rows per second, and peaks under
150 MB whatever the row count. Wall-clock figures depend on the machine; the ratios are measured in the same run.
The exit status is 0 when both targets are met and the row counts agree, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MIN_RATIO = 0.5
MAX_PEAK_MB = 150.0
KINDS = ("summary", "detail")
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


# --- measured in a child process ---------------------------------------------------------------


def _memory_mb(field: str) -> float:
    """VmHWM (peak resident set) or VmRSS (current) of this process, in MiB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1)) / 1024


def _measure_app(spec: dict[str, Any]) -> dict[str, Any]:
    """The product's export, with the whole application loaded as the CLI and the web page have it."""
    sys.path.insert(0, str(ROOT))
    from app import create_app
    from extensions import db
    from services import billing

    app = create_app({"SQLALCHEMY_DATABASE_URI": spec["url"], "ENV_NAME": "development"})
    with app.app_context():
        engine = db.engine
        period = billing.Period.parse(spec["period"])
        start_mb = _memory_mb("VmRSS")
        started = time.perf_counter()
        with open(spec["out"], "w", encoding="utf-8", newline="") as out:
            rows = billing.export(
                engine,
                out,
                bureau_id=spec["bureau_id"],
                period=period,
                dialect=billing.Dialect.STANDARD,
                detail=spec["kind"] == "detail",
            )
        seconds = time.perf_counter() - started
        engine.dispose()
    return {"rows": rows, "seconds": seconds, "start_mb": start_mb}


def _measure_sqlite(spec: dict[str, Any]) -> dict[str, Any]:
    """The same SQL through the standard library only: sqlite3 rows straight into csv.writer."""
    import csv
    import sqlite3

    start_mb = _memory_mb("VmRSS")
    started = time.perf_counter()
    connection = sqlite3.connect(spec["path"], isolation_level=None)
    try:
        connection.execute("BEGIN")  # one read snapshot, as the app's export
        cursor = connection.execute(spec["sql"])
        rows = 0
        with open(spec["out"], "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow([column[0] for column in cursor.description])
            while batch := cursor.fetchmany(5000):
                writer.writerows(batch)
                rows += len(batch)
        connection.execute("COMMIT")
    finally:
        connection.close()
    return {"rows": rows, "seconds": time.perf_counter() - started, "start_mb": start_mb}


def _measure_copy(spec: dict[str, Any]) -> dict[str, Any]:
    """The same SQL through psycopg's COPY ... TO STDOUT: the server formats the CSV, the client only writes it."""
    import psycopg

    start_mb = _memory_mb("VmRSS")
    started = time.perf_counter()
    with psycopg.connect(spec["url"]) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # as the app's export
        connection.read_only = True
        with connection.cursor() as cursor, open(spec["out"], "wb") as out:
            with cursor.copy(f"COPY ({spec['sql']}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                for chunk in copy:
                    out.write(chunk)
            rows = cursor.rowcount
    return {"rows": rows, "seconds": time.perf_counter() - started, "start_mb": start_mb}


def child_main(spec: dict[str, Any]) -> None:
    measure = {"app": _measure_app, "sqlite": _measure_sqlite, "postgresql": _measure_copy}[spec["measure"]]
    result = measure(spec)
    result["peak_mb"] = _memory_mb("VmHWM")
    result["bytes"] = os.path.getsize(spec["out"])
    print(json.dumps(result), flush=True)


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its stderr passes through, its result is its last stdout line."""
    completed = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    if completed.returncode != 0:
        raise SystemExit(f"measurement {spec['measure']} {spec['kind']} failed (exit {completed.returncode})")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- the database under test -------------------------------------------------------------------


class Database:
    """A fresh, empty database that is removed at the end unless kept."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.path = workdir / "bench.db"
            self.url = f"sqlite:///{self.path}"
            self.name = str(self.path)
        else:
            import psycopg

            self.name = f"export_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{self.name}"')
            self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def describe(self, engine) -> str:
        if self.kind == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        with engine.connect() as connection:
            return "PostgreSQL " + connection.exec_driver_sql("SHOW server_version").scalar_one()


def prepare(database: Database, clients: int) -> tuple[int, str, dict[str, str], str]:
    """Schema, synthetic data and the two queries as SQL text; returns (bureau id, period, SQL by kind, server)."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import select

    from app import create_app
    from extensions import db
    from services import billing
    from services.synthetic import SYNTHETIC_BUREAU_ORG_NUMBER, seed_synthetic

    app = create_app({"SQLALCHEMY_DATABASE_URI": database.url, "ENV_NAME": "development"})
    with app.app_context():
        import models

        db.create_all()
        started = time.perf_counter()
        summary = seed_synthetic(db.engine, clients=clients)
        print(f"seed_synthetic: {json.dumps(summary)} in {time.perf_counter() - started:.1f} s", flush=True)
        with db.engine.connect() as connection:
            bureau_id = connection.scalar(
                select(models.Bureau.id).where(models.Bureau.org_number == SYNTHETIC_BUREAU_ORG_NUMBER)
            )
        # Synthetic assignments start on the first of one of the last 12 months: last month has them all.
        period = billing.Period.previous_month(date.today())
        queries = {
            "summary": billing.summary_query(bureau_id, period),
            "detail": billing.detail_query(bureau_id, period),
        }
        sql = {
            kind: str(query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
            for kind, query in queries.items()
        }
        server = database.describe(db.engine)
        db.engine.dispose()
    return bureau_id, str(period), sql, server


# --- the report --------------------------------------------------------------------------------


def best(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Of repeated runs: the fastest time and the highest peak (the memory target must hold on every run)."""
    fastest = min(results, key=lambda result: result["seconds"])
    return {**fastest, "peak_mb": max(result["peak_mb"] for result in results)}


def report(measured: dict[str, dict[str, dict[str, Any]]]) -> bool:
    print()
    print(
        "| export | rows | app s | app rows/s | baseline s | baseline rows/s | ratio | app peak MB "
        "(at start) | baseline peak MB | ratio ≥ 0.5 | peak < 150 MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    all_met = True
    for kind in KINDS:
        app, base = measured[kind]["app"], measured[kind]["baseline"]
        app_rate, base_rate = app["rows"] / app["seconds"], base["rows"] / base["seconds"]
        ratio = app_rate / base_rate if base_rate else 0.0
        fast_enough, small_enough = ratio >= MIN_RATIO, app["peak_mb"] < MAX_PEAK_MB
        print(
            f"| {kind} | {app['rows']:,} | {app['seconds']:.1f} | {app_rate:,.0f} | {base['seconds']:.1f} "
            f"| {base_rate:,.0f} | {ratio:.2f} | {app['peak_mb']:.0f} ({app['start_mb']:.0f}) "
            f"| {base['peak_mb']:.0f} | {'met' if fast_enough else 'MISSED'} | {'met' if small_enough else 'MISSED'} |"
        )
        all_met = all_met and fast_enough and small_enough
        if app["rows"] != base["rows"]:
            print(f"ERROR: {kind}: the app wrote {app['rows']:,} rows, the baseline {base['rows']:,}", file=sys.stderr)
            all_met = False
        if app["rows"] == 0:
            print(f"ERROR: {kind}: no billable rows in the period, nothing was measured", file=sys.stderr)
            all_met = False
    print()
    print(f"targets: {'all met' if all_met else 'NOT all met'}")
    return all_met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument(
        "--clients", type=int, required=True, help="synthetic clients to load (1000000 for the figures)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the fastest counts")
    parser.add_argument("--keep", action="store_true", help="keep the database and the CSV files")
    args = parser.parse_args()
    if args.clients < 1 or args.repeat < 1:
        parser.error("--clients and --repeat must be positive")

    workdir = Path(tempfile.mkdtemp(prefix="export-bench-"))
    database = Database(args.database, workdir)
    print(
        f"export benchmark: {args.database}, {args.clients:,} clients, {date.today()}, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    try:
        bureau_id, period, sql, server = prepare(database, args.clients)
        print(f"{server}; period {period}; files in {workdir}", flush=True)
        measured: dict[str, dict[str, dict[str, Any]]] = {}
        for kind in KINDS:
            runs: dict[str, list[dict[str, Any]]] = {"app": [], "baseline": []}
            for attempt in range(args.repeat):
                # The app goes first: whatever the first run warms up helps the baseline, not the app.
                for side, measure in (("app", "app"), ("baseline", args.database)):
                    out = workdir / f"{kind}-{side}-{attempt}.csv"
                    spec = {
                        "measure": measure,
                        "kind": kind,
                        "url": database.url,
                        "path": str(getattr(database, "path", "")),
                        "bureau_id": bureau_id,
                        "period": period,
                        "sql": sql[kind],
                        "out": str(out),
                    }
                    result = run_child(spec)
                    print(
                        f"  {kind:7} {side:8} {result['rows']:>11,} rows {result['seconds']:8.1f} s "
                        f"{result['rows'] / result['seconds']:>11,.0f} rows/s  peak {result['peak_mb']:5.0f} MB "
                        f"({result['bytes'] / 2**20:,.0f} MiB written)",
                        flush=True,
                    )
                    runs[side].append(result)
                    if not args.keep:
                        out.unlink()
            measured[kind] = {side: best(results) for side, results in runs.items()}
        ok = report(measured)
    finally:
        if args.keep:
            print(f"kept: {database.url} and {workdir}")
        else:
            database.drop()
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
