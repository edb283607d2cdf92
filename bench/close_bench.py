"""Closing-a-month benchmark: the time to close, and the Fakturagrunnlag page for the closed month against the open one.

Usage (from the project root):

    .venv/bin/python bench/close_bench.py --database sqlite [--clients 100000]
    .venv/bin/python bench/close_bench.py --database postgresql [--clients 100000] [--keep]

It creates a throwaway database (as ``export_bench.py`` does), builds the schema, loads ``--clients`` synthetic
clients with ``seed_synthetic`` and takes the previous month (every synthetic assignment starts in the last 12
months, so that month has them all). Then, with a staff member logged in through the real login page:

* open: ``GET /admin/billing/?period=<month>`` while the month is open (the live summary and preview);
* close: ``close_or_report`` as ``flask billing close`` runs it (computes the month once and stores it);
* closed: the same ``GET`` again, now read from the snapshot (the stored totals and the first 200 lines);
* the summary and detail exports of the closed month against those of the open month (the same bytes).

Each page view is measured ``--repeat`` times (default 3) and the fastest counts. Wall-clock figures depend on
the machine; the ratios are measured in the same run. Exit status 0 when the closed month's files equal the open
month's and its page is faster than the open month's, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.export_bench import Database  # noqa: E402 - after the path that makes it importable

PASSWORD = "benchmark-password-123"


def _export_digest(engine, bureau_id: int, period, *, detail: bool) -> tuple[str, float]:
    from services import billing

    out = io.StringIO(newline="")
    started = time.perf_counter()
    billing.export(engine, out, bureau_id=bureau_id, period=period, dialect=billing.Dialect.STANDARD, detail=detail)
    seconds = time.perf_counter() - started
    return hashlib.sha256(out.getvalue().encode()).hexdigest(), seconds


def _staff(bureau_id: int) -> str:
    """A staff member of the synthetic bureau (with its internal client if it has none); returns the e-mail."""
    from extensions import db
    from models import Client, Person, PersonKind, StaffRole, User, UserStatus

    internal = db.session.query(Client).filter_by(bureau_id=bureau_id, is_internal=True).one_or_none()
    if internal is None:
        internal = Client(bureau_id=bureau_id, name="Syntetisk byrå AS (intern)", is_internal=True)
        db.session.add(internal)
    email = "bench@syntetisk.example"
    person = Person(
        bureau_id=bureau_id, client=internal, kind=PersonKind.USER, first_name="Bench", last_name="Mark", email=email
    )
    user = User(bureau_id=bureau_id, person=person, staff_role=StaffRole.STAFF, status=UserStatus.ACTIVE)
    user.set_password(PASSWORD)
    db.session.add_all([person, user])
    db.session.commit()
    return email


def _page_seconds(browser, url: str, repeat: int) -> tuple[float, str]:
    best, text = float("inf"), ""
    for _attempt in range(repeat):
        started = time.perf_counter()
        response = browser.get(url)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        best, text = min(best, seconds), response.get_data(as_text=True)
    return best, text


def run(database: Database, clients: int, repeat: int) -> bool:
    from sqlalchemy import func, select

    from app import create_app
    from extensions import db
    from models import BillingMonth, BillingSnapshotDetail, BillingSnapshotRow, Bureau
    from services import billing
    from services.billing_close import close_or_report
    from services.synthetic import SYNTHETIC_BUREAU_ORG_NUMBER, seed_synthetic

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database.url,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "close-benchmark-secret-key-0123456789abcdef",
        }
    )
    with app.app_context():
        db.create_all()
        started = time.perf_counter()
        summary = seed_synthetic(db.engine, clients=clients)
        print(f"seed_synthetic: {json.dumps(summary)} in {time.perf_counter() - started:.1f} s", flush=True)
        bureau_id = db.session.scalar(select(Bureau.id).where(Bureau.org_number == SYNTHETIC_BUREAU_ORG_NUMBER))
        period = billing.Period.previous_month(date.today())
        email = _staff(bureau_id)
        print(f"{database.describe(db.engine)}; period {period}", flush=True)

        open_files = {detail: _export_digest(db.engine, bureau_id, period, detail=detail) for detail in (False, True)}
        browser = app.test_client()
        login = browser.post("/login", data={"email": email, "password": PASSWORD})
        if login.status_code != 302:
            raise SystemExit("the benchmark's staff member could not log in")
        url = f"/admin/billing/?period={period}"
        open_page, open_text = _page_seconds(browser, url, repeat)

        db.session.remove()
        started = time.perf_counter()
        result = close_or_report(
            db.session, bureau_id, period, actor=None, actor_label="close bench", today=date.today()
        )
        close_seconds = time.perf_counter() - started
        month_id = db.session.scalar(select(BillingMonth.id).where(BillingMonth.bureau_id == bureau_id))
        stored = {
            "summary": db.session.scalar(select(func.count()).where(BillingSnapshotRow.month_id == month_id)),
            "detail": db.session.scalar(select(func.count()).where(BillingSnapshotDetail.month_id == month_id)),
        }
        db.session.remove()

        closed_page, closed_text = _page_seconds(browser, url, repeat)
        closed_files = {detail: _export_digest(db.engine, bureau_id, period, detail=detail) for detail in (False, True)}
        db.engine.dispose()

    same_files = all(open_files[d][0] == closed_files[d][0] for d in (False, True))
    same_totals = result.amount is not None and f"{result.amount}" in open_text and f"{result.amount}" in closed_text
    print()
    print(
        f"closed {period}: {result.clients:,} clients, {result.users:,} users, {result.rows:,} rows, "
        f"amount {result.amount}; stored {stored['summary']:,} summary + {stored['detail']:,} detail lines"
    )
    print()
    print("| measurement | open month s | closed month s | ratio open/closed |")
    print("|---|---:|---:|---:|")
    print(f"| close the month (`billing close`) | | {close_seconds:.2f} | |")
    print(f"| Fakturagrunnlag page view | {open_page:.3f} | {closed_page:.3f} | {open_page / closed_page:,.0f}× |")
    for detail, name in ((False, "summary export"), (True, "detail export")):
        print(
            f"| {name} | {open_files[detail][1]:.2f} | {closed_files[detail][1]:.2f} "
            f"| {open_files[detail][1] / closed_files[detail][1]:.1f}× |"
        )
    print()
    print(
        f"closed files identical to the open month's: {'yes' if same_files else 'NO'}; "
        f"page totals agree: {'yes' if same_totals else 'NO'}"
    )
    return same_files and same_totals and closed_page < open_page


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--clients", type=int, default=100_000, help="synthetic clients to load (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="page views of each kind; the fastest counts")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    if args.clients < 1 or args.repeat < 1:
        parser.error("--clients and --repeat must be positive")
    workdir = Path(tempfile.mkdtemp(prefix="close-bench-"))
    database = Database(args.database, workdir)
    print(
        f"close benchmark: {args.database}, {args.clients:,} clients, {date.today()}, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    try:
        ok = run(database, args.clients, args.repeat)
    finally:
        if args.keep:
            print(f"kept: {database.name}")
        else:
            database.drop()
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
