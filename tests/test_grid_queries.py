"""Grid queries that stay fast as the data grows (issue 9): plans that read rows in index order, bounded paging, the
"holds package" filter from either side, the outbox's kinds, and the planner's statistics kept fresh.

No wall-clock assertions: the plans are asserted instead (SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN with
sequential scans and sorts discouraged, since a few test rows would make a scan and a sort the cheapest plan: the
assertion is that an index can deliver the order).
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from admin_views.base import MAX_LIST_ROWS
from extensions import db
from models import OutboxMessage, StaffRole, User
from services import packages
from services.outbox import message_kinds, run_worker
from services.statistics import refresh_statistics


def grid_statement(client, path: str) -> tuple[str, Any]:
    """The grid's own SELECT (the one with ORDER BY and LIMIT) that fetching ``path`` ran, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        answer = client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    assert answer.status_code == 200
    # A search's candidate query (ORDER BY id/rowid LIMIT, on its own table) comes first: the grid's reads the row.
    grid = [(sql, params) for sql, params in seen if "ORDER BY" in sql and "LIMIT" in sql and "_search" not in sql]
    assert grid, f"no grid query for {path}"
    return grid[0]


def plan_of(sql: str, parameters: Any) -> str:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, parameters)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):  # a few rows: a scan would be cheaper
            cursor.execute(f"SET {setting} = off")
        cursor.execute("EXPLAIN " + sql, parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        raw.rollback()
        return plan
    finally:
        raw.close()


def forget_sqlite_statistics() -> None:
    if db.engine.dialect.name == "sqlite" and db.session.scalar(
        text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
    ):
        db.session.execute(text("DELETE FROM sqlite_stat1"))
        db.session.execute(text("ANALYZE sqlite_schema"))
        db.session.commit()


@pytest.fixture
def grid_rows(bureau, make_client, make_user, make_package, assign) -> None:
    """A few rows in every grid of the bureau, and no planner statistics of another test's few rows (SQLite): the
    plans asserted are those for tables of unknown size, as after a migration and before data arrives."""
    forget_sqlite_statistics()
    package = make_package()
    for n in range(3):
        client = make_client(name=f"Firma {n} AS")
        user = make_user(client)
        assign(user, package, date.today() - timedelta(days=n))


@pytest.mark.parametrize(
    ("path", "index"),
    [
        ("/admin/clients/", "ix_clients_bureau_name"),
        ("/admin/persons/", "ix_persons_bureau_last_name"),
        # SQLite's index on bureau_id alone ends with the row id, so it serves "newest first" as well; with one
        # bureau in the table PostgreSQL may as well walk the primary key backwards (newest first, no sort).
        ("/admin/users/", ("ix_users_bureau_newest", "ix_users_bureau_id ", "Index Scan Backward using pk_users")),
        ("/admin/assignments/", "ix_package_assignments_bureau_from"),
        ("/admin/auditlog/", "ix_audit_entries_bureau_at"),
        ("/admin/outbox/", "ix_outbox_messages_bureau_created"),
        ("/admin/clients/?sort=6&desc=1", "ix_clients_bureau_created"),  # by created, newest first
        ("/admin/users/?sort=1", "ix_persons_bureau_last_name"),  # users by their person's last name
    ],
)
def test_grid_pages_read_rows_in_index_order(client, login_as, grid_rows, path, index) -> None:
    """Each grid's default sort (and the sorts named here) walks a composite index of the bureau: no sort of all
    of the bureau's rows, however many there are."""
    login_as("admin")
    plan = plan_of(*grid_statement(client, path))
    assert any(name in plan for name in ((index,) if isinstance(index, str) else index)), plan
    if db.engine.dialect.name == "sqlite":
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert "Sort" not in plan, plan


def test_deep_pages_ask_for_a_narrower_search(client, login_as, grid_rows) -> None:
    """Paging stops after ``MAX_LIST_ROWS`` rows with a sentence (200, not a 500 or a slow page); before that it
    pages as usual."""
    login_as("admin")
    last = MAX_LIST_ROWS // 50 - 1
    answer = client.get(f"/admin/clients/?page={last}")
    assert answer.status_code == 200 and "Avgrens søket" not in answer.get_data(as_text=True)
    for path in (f"/admin/clients/?page={last + 1}", "/admin/persons/?page=20000", "/admin/users/?page=999999999"):
        answer = client.get(path)
        page = answer.get_data(as_text=True)
        assert answer.status_code == 200 and "Avgrens søket" in page, path
        assert "Firma 0 AS" not in page


@pytest.mark.parametrize("few_holders", [packages.FEW_HOLDERS, 0], ids=["from the holders", "user by user"])
def test_the_package_filter_finds_exactly_todays_holders(
    client, login_as, make_bureau, make_client, make_user, make_package, assign, monkeypatch, few_holders
) -> None:
    """Whichever side the filter starts from, it lists the users holding the package today, and never another
    bureau's users (even one given the same package id in a crafted assignment is outside the bureau's grid)."""
    monkeypatch.setattr(packages, "FEW_HOLDERS", few_holders)
    login_as("admin")
    today = date.today()
    package, other_package = make_package(), make_package()
    client_row = make_client()
    holder, ended, future, elsewhere, none = (make_user(client_row) for _ in range(5))
    assign(holder, package, today - timedelta(days=40))
    assign(ended, package, today - timedelta(days=40), today - timedelta(days=1))
    assign(future, package, today + timedelta(days=1))
    assign(elsewhere, other_package, today - timedelta(days=1))
    other_bureau = make_bureau()
    stranger = make_user(make_client(bureau=other_bureau))
    assign(stranger, package, today - timedelta(days=3))

    from admin_views.people import UserView

    index = next(i for i, flt in enumerate(UserView.column_filters) if type(flt).__name__ == "HoldsPackageFilter")
    page = client.get(f"/admin/users/?flt0_{index}={package.id}").get_data(as_text=True)
    shown = {
        user.person.email for user in (holder, ended, future, elsewhere, none, stranger) if user.person.email in page
    }
    assert shown == {holder.person.email}


def test_outbox_kinds_are_read_one_index_lookup_at_a_time(bureau, make_bureau) -> None:
    from services.outbox import enqueue_email

    other = make_bureau()
    for owner, kind in ((bureau, "invitation"), (bureau, "consent"), (bureau, "invitation"), (other, "reminder")):
        enqueue_email(db.session, bureau_id=owner.id, to="a@b.example", subject="S", text="T", kind=kind)
    db.session.commit()
    assert message_kinds(db.session, bureau.id) == ["consent", "invitation"]
    assert message_kinds(db.session, other.id) == ["reminder"]
    assert db.session.query(OutboxMessage).count() == 4


def test_statistics_are_refreshed_and_the_worker_does_it_periodically(app, bureau) -> None:
    with db.engine.connect() as connection:
        refresh_statistics(connection)
        connection.commit()
    if db.engine.dialect.name == "sqlite":
        try:
            assert "clients" in set(db.session.scalars(text("SELECT tbl FROM sqlite_stat1")))
        finally:  # the other tests' database keeps no statistics of this test's few rows
            forget_sqlite_statistics()
    else:
        analysed = db.session.scalar(
            text("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'clients'")
        )
        assert analysed

    calls: list[str] = []
    passes = run_worker(
        app, interval=0.1, max_passes=3, stop_event=threading.Event(), periodic=[(lambda: calls.append("x"), 3600)]
    )
    assert passes == 3 and calls == ["x"]  # once at start, then not again within the hour


def test_staff_role_is_not_needed_for_the_plans(client, make_staff, bureau, login) -> None:
    """Ordinary staff see the same bounded grids (no page answers 500 for them either)."""
    login(make_staff(bureau, StaffRole.STAFF))
    assert client.get("/admin/clients/?page=100000").status_code == 200


@pytest.mark.parametrize(
    ("path", "index"),
    [
        ("/admin/persons/?search=kundesen", "ix_persons_bureau_last_name"),
        ("/admin/users/?search=kundesen&sort=1", "ix_persons_bureau_last_name"),
        ("/admin/clients/?search=firma", "ix_clients_bureau_name"),
    ],
)
def test_a_search_sorts_its_candidates_instead_of_walking_the_sort_index(
    client, login_as, grid_rows, many_users, path, index
):
    """A search lists at most its candidates (found by id through the trigram index): the grid sorts those few rows.
    Walking the sort's index through the whole bureau in search of them took 2 s at 1M people on PostgreSQL, so the
    plan must not use that index even where sorting is discouraged."""
    login_as("admin")
    sql, parameters = grid_statement(client, path)
    assert "coalesce" in sql.lower()
    assert index not in plan_of(sql, parameters)


def test_row_links_built_once_per_request_carry_each_rows_own_id(client, login_as, grid_rows) -> None:
    """The row action links are built once per kind and the row's id put in (``SecureModelView.get_url``): each
    row's links name that row, and the marker id never reaches the page."""
    import re

    from admin_views import base as admin_base
    from models import Client

    login_as("admin")
    page = client.get("/admin/clients/?sort=0").get_data(as_text=True)
    ids = {str(id_) for id_ in db.session.scalars(db.select(Client.id))}
    for kind in ("details", "manage"):  # no generic edit: the client page's cards are edited in place
        linked = set(re.findall(rf'href="/admin/clients/{kind}/\?id=(\d+)', page))
        assert linked == ids, (kind, linked, ids)
    assert str(admin_base._URL_MARKER) not in page


@pytest.mark.parametrize("path", ["/admin/clients/?sort=0", "/admin/persons/", "/admin/users/", "/admin/assignments/"])
def test_row_actions_rendered_once_give_the_same_page_as_rendering_each_row(
    client, login_as, grid_rows, monkeypatch, path
) -> None:
    """Row actions whose HTML depends only on the row's id are rendered once per request with a marker and the id
    put in (``RenderedOnce``; issue 9): the page is byte for byte the page rendered row by row (CSRF tokens aside,
    which differ per request), and the row-dependent "mark as demo" is still rendered for each row."""
    import re

    from flask_admin.contrib.sqla import ModelView

    from admin_views import base as admin_base

    def without_tokens(page: str) -> str:
        page = re.sub(r'nonce="[^"]+"', "nonce", page)
        return re.sub(r'(name="csrf_token"[^>]*value=|value=)"[^"]{40,}"', "token", page)

    login_as("admin")
    once = client.get(path).get_data(as_text=True)
    monkeypatch.setattr(admin_base.SecureModelView, "get_list_row_actions", ModelView.get_list_row_actions)
    monkeypatch.setattr(admin_base.SecureModelView, "get_url", ModelView.get_url)
    each = client.get(path).get_data(as_text=True)
    assert without_tokens(once) == without_tokens(each)
    assert str(admin_base._URL_MARKER) not in once
    if path.startswith("/admin/clients/"):
        assert once.count('value="mark_demo"') == 3 and "Firma 2 AS" in once.split('value="mark_demo"', 3)[-1]


@pytest.mark.parametrize(
    ("path", "table"),
    [
        ("/admin/assignments/ajax/lookup/?name=user&query=kundesen", "users"),
        ("/admin/clients/ajax/lookup/?name=contact_person&query=kundesen", "persons"),
    ],
)
def test_a_picker_fetches_its_candidates_by_id(client, login_as, grid_rows, path, table) -> None:
    """A picker's search names its few candidates (``id IN (...)``); the picker then fetches them by id. The bureau
    and the picker's own criteria must not lead an index: with statistics SQLite walked the users' (bureau, kind)
    index through every user of the bureau in search of them (220 ms at a million clients)."""
    login_as("admin")
    sql, parameters = grid_statement(client, path)
    assert f"{table}.bureau_id + " in sql, sql
    if db.engine.dialect.name == "sqlite":
        plan = plan_of(sql, parameters)
        assert f"ix_{table}_bureau" not in plan, plan
        assert f"SEARCH {table} USING INTEGER PRIMARY KEY" in plan, plan
    # PostgreSQL, forced off its scans on a few rows, may read any index; at a million clients it takes the primary
    # key (bench/sweep.py: the users picker 28 ms, nearly all of it the trigram search for the candidates).


@pytest.fixture
def many_users(bureau, make_client):
    """1,500 more active client users (and their people) in one client of the bureau, with the planner's statistics
    of that shape on both engines: on a few rows every index costs the same, so a plan that must not walk a bureau
    is asserted where walking it would cost something. Removed afterwards, statistics included (SQLite) or
    refreshed (PostgreSQL), so the other tests' plans are again for tables of unknown size."""
    from sqlalchemy import delete, insert

    from models import Person, PersonKind, UserStatus

    company = make_client(name="Mange brukere AS")
    rows = [
        {
            "bureau_id": bureau.id,
            "client_id": company.id,
            "kind": PersonKind.USER,
            "first_name": "Ola",
            "last_name": f"Normann {n}",
            "email": f"normann{n}@firma.example",
        }
        for n in range(1500)
    ]
    db.session.execute(insert(Person), rows)
    people = db.session.scalars(select(Person.id).where(Person.client_id == company.id)).all()
    users = [
        {"bureau_id": bureau.id, "person_id": person, "person_kind": PersonKind.USER, "status": UserStatus.ACTIVE}
        for person in people
    ]
    db.session.execute(insert(User), users)
    db.session.commit()
    with db.engine.connect() as connection:
        refresh_statistics(connection)
        connection.commit()
    try:
        yield company
    finally:
        db.session.rollback()
        db.session.execute(delete(User).where(User.person_id.in_(people)))
        db.session.execute(delete(Person).where(Person.id.in_(people)))
        db.session.commit()
        forget_sqlite_statistics()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as connection:
                refresh_statistics(connection)
                connection.commit()


def test_counting_active_administrators_reads_the_staff_index(app, bureau, make_staff, many_users) -> None:
    """Every flush that blocks, reactivates or ends a user counts the bureau's active administrators; that count
    reads the few staff users through their partial index, never every active user of the bureau (issue 9's load
    run: a sequential scan of 600k users on each bulk action)."""
    from services.policy import active_admin_clause

    make_staff(bureau, StaffRole.ADMIN)
    statement = (
        select(User.bureau_id, func.count(User.id))
        .where(User.bureau_id.in_([bureau.id]), active_admin_clause(date.today()))
        .group_by(User.bureau_id)
    )
    sql = str(statement.compile(db.engine, compile_kwargs={"literal_binds": True}))
    plan = plan_of(sql, () if db.engine.dialect.name == "sqlite" else None)
    assert "ix_users_bureau_staff_role" in plan, plan
