"""EXPLAIN the client grid's first page now that it hides archived clients: still an index walk, no sort of the bureau.

    .venv/bin/python bench/archive_explain.py --database sqlite --clients 1000000
    .venv/bin/python bench/archive_explain.py --database postgresql --clients 1000000

Builds a fresh database, seeds ``--clients`` synthetic clients, archives one in a hundred, and prints the plan (and
the time) of the exact query the Klienter grid runs for its first page (bureau filter, not archived, ORDER BY name
LIMIT page size). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text  # noqa: E402

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def grid_query(app, bureau_id: int) -> str:
    """The SQL of the Klienter grid's first page, with its parameters inlined, as a logged-in staff member sees it."""
    from flask_login import login_user

    from extensions import db
    from models import Client as ClientModel
    from models import Person, PersonKind, StaffRole, User

    internal = db.session.scalar(
        select(ClientModel).where(ClientModel.bureau_id == bureau_id, ClientModel.is_internal.is_(True))
    )
    if internal is None:
        internal = ClientModel(bureau_id=bureau_id, name="Internklient", is_internal=True)
        db.session.add(internal)
    person = Person(
        bureau_id=bureau_id,
        client=internal,
        kind=PersonKind.USER,
        first_name="A",
        last_name="B",
        email="explain@example.com",
    )
    staff = User(bureau_id=bureau_id, person=person, staff_role=StaffRole.STAFF, status="active")
    db.session.add_all([person, staff])
    db.session.commit()
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", None) == "clients")
    with app.test_request_context("/admin/clients/"):
        login_user(staff)
        sort = view._get_column_by_idx(None)
        _count, query = view.get_list(0, sort[0] if sort else None, False, None, [], execute=False)
        return str(query.statement.compile(db.engine, compile_kwargs={"literal_binds": True}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--clients", type=int, default=100_000)
    args = parser.parse_args()

    name = None
    if args.database == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='archive_explain_')}/explain.db"
    else:
        import psycopg

        name = f"archive_explain_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        from app import create_app
        from extensions import db
        from services.synthetic import seed_synthetic

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x" * 40, "TESTING": True})
        with app.app_context():
            db.create_all()
            started = time.perf_counter()
            seed_synthetic(db.engine, clients=args.clients)
            print(f"seeded {args.clients} clients in {time.perf_counter() - started:.0f} s")
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE clients SET archived_at = CURRENT_TIMESTAMP WHERE id % 100 = 0"))
                conn.execute(text("ANALYZE"))
                bureau_id = conn.execute(
                    text("SELECT bureau_id FROM clients GROUP BY bureau_id ORDER BY count(*) DESC LIMIT 1")
                ).scalar()
            sql = grid_query(app, bureau_id)
            print(sql)
            explain = "EXPLAIN QUERY PLAN " if args.database == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
            with db.engine.connect() as conn:
                for row in conn.execute(text(explain + sql)):
                    print("   ", " | ".join(str(v) for v in row))
                started = time.perf_counter()
                rows = conn.execute(text(sql)).all()
                print(f"first page: {len(rows)} rows in {1000 * (time.perf_counter() - started):.1f} ms")
            db.engine.dispose()
    finally:
        if name is not None:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
