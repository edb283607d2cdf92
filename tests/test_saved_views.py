"""Saved views on the grids: save, apply, default, rename and delete rights, tenancy, hostile names and arguments,
double submits, views whose filters the grid no longer has, and the menu's cost. Every test asserts what is stored."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import current_app
from sqlalchemy import event, func, select

from extensions import db
from models import SavedView, SavedViewDefault, StaffRole, UserStatus
from services import saved_views

HUGE = str(2**63)
# The clients grid: filter 0 is "Demo" (yes/no), sort 0 is the name; the filters' stored names are their kind,
# column and label (admin_views/saved_views.py ``filter_name``).
DEMO = "booleanequalfilter-is-demo-demo"
GRID_QUERY = "flt0_0=1&search=alfa&sort=0&desc=1&page_size=20"
STORED = f"flt0_{DEMO}=1&search=alfa&sort=name&desc=1&page_size=20"


def flashes(response) -> str:
    return " ".join(re.findall(r'<div class="alert alert-[^"]*">(.*?)</div>', response.get_data(as_text=True), re.S))


def views() -> list[SavedView]:
    db.session.expire_all()
    return list(db.session.scalars(select(SavedView).order_by(SavedView.id)))


def defaults() -> list[tuple[int, str, int]]:
    db.session.expire_all()
    return [(d.user_id, d.grid, d.view_id) for d in db.session.scalars(select(SavedViewDefault))]


def save(client, name, back=GRID_QUERY, grid="clients", follow_redirects=False, **extra):
    data = {"name": name, "back": back, **extra}
    return client.post(f"/admin/{grid}/views/", data=data, follow_redirects=follow_redirects)


def location_args(response) -> dict[str, str]:
    assert response.status_code == 302, response.status_code
    parts = urlsplit(response.headers["Location"])
    assert parts.scheme == "" and parts.netloc == "", response.headers["Location"]
    return dict(parse_qsl(parts.query)) | {"_path": parts.path}


def make_view(owner, *, name="Demo", shared=False, grid="clients", query=STORED) -> SavedView:
    view = SavedView(
        bureau_id=owner.bureau_id,
        owner_id=owner.id,
        grid=grid,
        name=name,
        name_key=name.casefold(),
        shared=shared,
        query=query,
    )
    db.session.add(view)
    db.session.commit()
    return view


# --- save and apply ---------------------------------------------------------------------------------


def test_save_stores_the_grids_arguments_by_name_and_apply_restores_them(client, login_as):
    user = login_as("staff")
    response = save(client, "  Demo-kunder   med   alfa ")
    assert response.status_code == 302
    assert location_args(response) == {
        "_path": "/admin/clients/",
        "flt0_0": "1",
        "search": "alfa",
        "sort": "0",
        "desc": "1",
        "page_size": "20",
    }
    [view] = views()
    assert (view.name, view.name_key, view.grid, view.shared) == (
        "Demo-kunder med alfa",
        "demo-kunder med alfa",
        "clients",
        False,
    )
    assert (view.owner_id, view.bureau_id, view.query) == (user.id, user.bureau_id, STORED)
    assert defaults() == []

    opened = client.get(f"/admin/clients/views/{view.id}/")
    assert location_args(opened) == location_args(response)
    page = client.get(opened.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'aria-current="true"' in html and "Demo-kunder med alfa" in html


def test_save_as_shared_and_default_in_one_go(client, login_as):
    user = login_as("staff")
    save(client, "Felles", shared="y", make_default="y")
    [view] = views()
    assert view.shared is True
    assert defaults() == [(user.id, "clients", view.id)]


def test_a_view_is_kept_per_grid(client, login_as):
    login_as("staff")
    save(client, "Samme navn")
    save(client, "Samme navn", grid="users", back="sort=0&page_size=50")
    assert sorted((v.grid, v.query) for v in views()) == [
        ("clients", STORED),
        ("users", "sort=person.first_name&page_size=50"),
    ]


# --- the default view ---------------------------------------------------------------------------------


def test_the_default_view_opens_the_bare_grid_and_the_plain_list_is_always_reachable(client, login_as):
    user = login_as("staff")
    save(client, "Standard")
    [view] = views()
    assert client.get("/admin/clients/").status_code == 200  # no default yet

    answer = client.post(f"/admin/clients/views/{view.id}/default/", data={"back": "sort=1&flt0_0=0"})
    manage = location_args(answer)
    assert manage == {"_path": "/admin/clients/views/manage/", "back": "flt0_0=0&sort=1&page_size=50"}
    assert defaults() == [(user.id, "clients", view.id)]
    bare = client.get("/admin/clients/")
    assert location_args(bare)["flt0_0"] == "1" and location_args(bare)["sort"] == "0"
    # The menu's "no view" link is the plain list, with arguments, so the default does not apply to it.
    plain = client.get("/admin/clients/?page_size=50")
    assert plain.status_code == 200
    assert 'href="/admin/clients/?page_size=50"' in plain.get_data(as_text=True)
    # Another grid is not affected.
    assert client.get("/admin/users/").status_code == 200

    client.post("/admin/clients/views/no-default/", data={"back": ""})
    assert defaults() == []
    assert client.get("/admin/clients/").status_code == 200
    assert len(views()) == 1  # the view itself stays


def test_a_new_default_replaces_the_old_one_and_deleting_the_view_clears_it(client, login_as):
    user = login_as("staff")
    save(client, "En")
    save(client, "To", back="sort=1&page_size=50")
    first, second = views()
    client.post(f"/admin/clients/views/{first.id}/default/")
    client.post(f"/admin/clients/views/{second.id}/default/")
    assert defaults() == [(user.id, "clients", second.id)]
    client.post(f"/admin/clients/views/{second.id}/delete/")
    assert [v.id for v in views()] == [first.id]
    assert defaults() == []
    assert client.get("/admin/clients/").status_code == 200


# --- rights: owner, other staff, administrator, other bureau --------------------------------------------


@pytest.fixture
def owner_and_others(bureau, make_staff, make_bureau):
    owner = make_staff(bureau, StaffRole.STAFF)
    colleague = make_staff(bureau, StaffRole.STAFF)
    admin = make_staff(bureau, StaffRole.ADMIN)
    outsider = make_staff(make_bureau(), StaffRole.ADMIN)
    return owner, colleague, admin, outsider


def _try_everything(client, view_id) -> list[int]:
    codes = [
        client.get(f"/admin/clients/views/{view_id}/").status_code,
        client.post(f"/admin/clients/views/{view_id}/rename/", data={"name": "Kapret"}).status_code,
        client.post(f"/admin/clients/views/{view_id}/default/").status_code,
        client.post(f"/admin/clients/views/{view_id}/delete/").status_code,
    ]
    assert all(code < 500 for code in codes)
    return codes


def test_a_private_view_is_its_owners_alone(client, login, owner_and_others):
    owner, colleague, admin, outsider = owner_and_others
    view = make_view(owner, name="Privat")
    for other in (colleague, admin, outsider):
        login(other)
        menu = client.get("/admin/clients/?page_size=50").get_data(as_text=True)
        assert "Privat" not in menu
        assert "Privat" not in client.get("/admin/clients/views/manage/").get_data(as_text=True)
        _try_everything(client, view.id)
        [kept] = views()
        assert (kept.name, kept.query) == ("Privat", STORED)
        assert defaults() == []
        client.post("/logout")
    login(owner)
    client.post(f"/admin/clients/views/{view.id}/rename/", data={"name": "Mitt"})
    assert views()[0].name == "Mitt"
    client.post(f"/admin/clients/views/{view.id}/delete/")
    assert views() == []


def test_a_shared_view_is_the_bureaus_and_only_its_owner_or_an_administrator_changes_it(
    client, login, owner_and_others
):
    owner, colleague, admin, outsider = owner_and_others
    view = make_view(owner, name="Delt", shared=True)

    login(outsider)  # another bureau: not seen, not usable, not changeable
    assert "Delt" not in client.get("/admin/clients/?page_size=50").get_data(as_text=True)
    _try_everything(client, view.id)
    assert [(v.name, v.shared) for v in views()] == [("Delt", True)] and defaults() == []
    client.post("/logout")

    login(colleague)  # the bureau's staff: sees, opens and may make it their default, but not rename or delete
    assert "Delt" in client.get("/admin/clients/?page_size=50").get_data(as_text=True)
    manage = client.get("/admin/clients/views/manage/").get_data(as_text=True)
    assert f"/views/{view.id}/default/" in manage
    assert f"/views/{view.id}/rename/" not in manage and f"/views/{view.id}/delete/" not in manage
    assert location_args(client.get(f"/admin/clients/views/{view.id}/"))["flt0_0"] == "1"
    refused = client.post(f"/admin/clients/views/{view.id}/rename/", data={"name": "Kapret"}, follow_redirects=True)
    assert "administrator" in flashes(refused)
    client.post(f"/admin/clients/views/{view.id}/delete/")
    client.post(f"/admin/clients/views/{view.id}/default/")
    assert [v.name for v in views()] == ["Delt"]
    assert defaults() == [(colleague.id, "clients", view.id)]
    client.post("/logout")

    login(admin)
    manage = client.get("/admin/clients/views/manage/").get_data(as_text=True)
    assert f"/views/{view.id}/rename/" in manage and f"/views/{view.id}/delete/" in manage
    client.post(f"/admin/clients/views/{view.id}/rename/", data={"name": "Omdøpt av admin"})
    assert [v.name for v in views()] == ["Omdøpt av admin"]
    client.post(f"/admin/clients/views/{view.id}/delete/")
    assert views() == [] and defaults() == []


def test_a_deactivated_or_archived_owners_views_stay(client, login, owner_and_others):
    owner, colleague, admin, _outsider = owner_and_others
    shared = make_view(owner, name="Felles", shared=True)
    make_view(owner, name="Eget")
    owner.status = UserStatus.BLOCKED
    db.session.commit()
    login(colleague)
    html = client.get("/admin/clients/?page_size=50").get_data(as_text=True)
    assert "Felles" in html and "Eget" not in html
    client.post("/logout")
    login(admin)
    client.post(f"/admin/clients/views/{shared.id}/delete/")
    assert [v.name for v in views()] == ["Eget"]


# --- names -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", "Navn\x00med NUL", "x" * 81, "y" * 10_000, "tab\x07bell"])
def test_hostile_names_are_refused_and_nothing_is_stored(client, login_as, name):
    login_as("staff")
    response = save(client, name)
    assert response.status_code == 302
    assert views() == []
    follow = client.get(response.headers["Location"])
    assert follow.status_code == 200 and flashes(follow)


def test_markup_in_a_name_is_stored_as_text_and_shown_escaped(client, login_as):
    login_as("staff")
    name = '<script>alert("x")</script><img src=x onerror=1>'
    save(client, name)
    assert [v.name for v in views()] == [name]
    html = client.get("/admin/clients/?page_size=50").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_names_are_unique_without_case_per_owner_or_bureau_and_a_rename_cannot_take_one(
    client, login, owner_and_others
):
    owner, colleague, _admin, _outsider = owner_and_others
    login(owner)
    save(client, "Mine kunder")
    response = save(client, "MINE KUNDER", follow_redirects=True)
    assert "already exists" in flashes(response) or "finnes" in flashes(response)
    save(client, "mine kunder", shared="y")  # a shared view may have a private view's name
    save(client, "Andre")
    client.post("/logout")
    login(colleague)
    save(client, "Mine kunder")  # another user's private names are theirs
    save(client, "Mine Kunder", shared="y")  # but the bureau's shared names are shared
    client.post("/logout")
    login(owner)
    other = next(v for v in views() if v.name == "Andre")
    client.post(f"/admin/clients/views/{other.id}/rename/", data={"name": "mine KUNDER"})
    assert sorted((v.owner_id, v.shared, v.name) for v in views()) == sorted(
        [
            (owner.id, False, "Mine kunder"),
            (owner.id, True, "mine kunder"),
            (owner.id, False, "Andre"),
            (colleague.id, False, "Mine kunder"),
        ]
    )


def test_double_submit_stores_one_view(client, login_as):
    login_as("staff")
    first = save(client, "To ganger")
    second = save(client, "To ganger", follow_redirects=True)
    assert first.status_code == 302 and second.status_code == 200
    assert [v.name for v in views()] == ["To ganger"]
    assert flashes(second)


def test_the_number_of_views_per_grid_is_bounded(client, login_as, monkeypatch):
    login_as("staff")
    monkeypatch.setattr(saved_views, "MAX_VIEWS", 2)
    for name in ("A", "B", "C"):
        save(client, name)
    assert [v.name for v in views()] == ["A", "B"]


# --- hostile arguments ----------------------------------------------------------------------------------


def test_hostile_saved_arguments_are_dropped_before_they_are_stored(client, login_as):
    login_as("staff")
    hostile = (
        "flt0_999=x&flt1_0=maybe&flt2_abc=1&fltx_0=1&next=https://evil.example/&url=//evil.example"
        "&sort=99&desc=7&page_size=100000&search=al%00fa&flt3_0=" + "z" * 2000 + "&flt4_0=0"
    )
    response = save(client, "Fiendtlig", back=hostile, follow_redirects=True)
    assert response.status_code == 200
    [view] = views()
    assert view.query == f"flt0_{DEMO}=0&page_size=50"
    assert "evil" not in view.query and "\x00" not in view.query
    opened = location_args(client.get(f"/admin/clients/views/{view.id}/"))
    assert opened == {"_path": "/admin/clients/", "flt0_0": "0", "page_size": "50"}


@pytest.mark.parametrize(
    "back", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "\x00", "a" * 30000]
)
def test_a_forms_way_back_is_always_the_grid(client, login_as, back):
    login_as("staff")
    response = client.post("/admin/clients/views/", data={"name": "Tilbake", "back": back})
    assert location_args(response)["_path"] == "/admin/clients/"
    assert "evil" not in response.headers["Location"]
    response = client.post("/admin/clients/views/no-default/", data={"back": back})
    target = location_args(response)
    assert target["_path"] == "/admin/clients/views/manage/"
    assert "evil" not in response.headers["Location"]
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert 'href="/admin/clients/?page_size=50" id="saved-views-back"' in page.get_data(as_text=True)


def test_a_stored_view_whose_filter_or_column_is_gone_opens_without_it_and_says_so(client, login_as):
    user = login_as("staff")
    view = make_view(user, query=f"flt0_no-such-filter=1&flt1_{DEMO}=1&sort=gone_column&desc=1&page_size=20&evil=1")
    opened = client.get(f"/admin/clients/views/{view.id}/")
    assert location_args(opened) == {"_path": "/admin/clients/", "flt0_0": "1", "page_size": "20"}
    page = client.get(opened.headers["Location"])
    assert page.status_code == 200 and flashes(page)
    # As a default it does the same, and the stored view is left as it was.
    client.post(f"/admin/clients/views/{view.id}/default/")
    assert location_args(client.get("/admin/clients/"))["flt0_0"] == "1"
    assert views()[0].query.startswith("flt0_no-such-filter=1")


@pytest.mark.parametrize("view_id", [HUGE, str(2**63 - 1), str(2**31), "0", "-1", "abc", "1\x00", "٣", str(2**70)])
def test_hostile_view_ids_are_not_found(client, login_as, view_id):
    user = login_as("staff")
    kept = make_view(user, name="Urørt", shared=True)
    for path in ("", "rename/", "default/", "delete/"):
        url = f"/admin/clients/views/{view_id}/{path}"
        response = client.get(url) if not path else client.post(url, data={"name": "X"})
        assert response.status_code < 500
    assert [(v.id, v.name) for v in views()] == [(kept.id, "Urørt")]
    assert defaults() == []


def test_a_view_of_one_grid_cannot_be_used_on_another(client, login_as):
    user = login_as("staff")
    view = make_view(user, name="Kunder")
    for path in ("default/", "delete/", "rename/"):
        client.post(f"/admin/users/views/{view.id}/{path}", data={"name": "Brukere"})
    assert [(v.grid, v.name) for v in views()] == [("clients", "Kunder")] and defaults() == []


def test_without_the_csrf_token_nothing_is_saved(client, login_as):
    login_as("staff")
    current_app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = save(client, "Uten token")
    finally:
        current_app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code < 500
    assert views() == []


# --- cost ------------------------------------------------------------------------------------------------


def _statements(client, path: str) -> list[str]:
    seen: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    return seen


def test_the_menu_is_one_query_whether_or_not_there_are_views(client, login_as, make_bureau, make_staff):
    user = login_as("staff")
    db.session.commit()
    client.get("/admin/clients/?page_size=50")  # the same state for both: after a commit, one page already seen
    without = _statements(client, "/admin/clients/?page_size=50")
    for n in range(5):
        make_view(user, name=f"Egen {n}")
        make_view(user, name=f"Delt {n}", shared=True)
    other = make_staff(make_bureau(), StaffRole.ADMIN)
    make_view(other, name="Fremmed", shared=True)
    client.post(f"/admin/clients/views/{views()[0].id}/default/")
    db.session.commit()
    client.get("/admin/clients/?page_size=50")
    with_views = _statements(client, "/admin/clients/?page_size=50")
    assert len(with_views) == len(without)
    assert sum("saved_views" in sql for sql in with_views) == 1


def test_the_menu_query_reads_the_saved_view_indexes(app, bureau, make_staff, dialect):
    user = make_staff(bureau)
    seen: list[tuple[str, object]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        saved_views.menu(db.session, user, "clients")
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    [(sql, parameters)] = [(sql, parameters) for sql, parameters in seen if "saved_views" in sql]
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if dialect == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, parameters)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            assert "ix_saved_views_owner" in plan or "uq_saved_views_private_name" in plan, plan
            assert "ix_saved_views_bureau (bureau_id=? AND grid=? AND shared=?)" in plan, plan
            assert "SCAN saved_views" not in plan.replace("USING", "\nUSING"), plan
        else:
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            raw.rollback()
            assert "Seq Scan on saved_views" not in plan, plan
            assert "saved_views" in plan and "Index" in plan, plan
    finally:
        raw.close()
    assert db.session.scalar(select(func.count()).select_from(SavedView)) == 0


def test_two_saves_of_one_name_at_once_meet_the_unique_index_and_the_second_gets_the_message(
    client, login_as, monkeypatch
):
    """The check before the insert can pass for both of two simultaneous saves; the database's index decides."""
    login_as("staff")
    monkeypatch.setattr(saved_views, "_name_taken", lambda *args, **kwargs: False)
    save(client, "Samtidig", shared="y")
    second = save(client, "SAMTIDIG", shared="y", follow_redirects=True)
    assert second.status_code == 200 and flashes(second)
    assert [(v.name, v.shared) for v in views()] == [("Samtidig", True)]
