"""Admin views through the test client: access, tenancy, CRUD, bad input, history, grids."""

import re

import pytest
from flask import g
from sqlalchemy import func, select

from extensions import db
from models import AuditEntry, Client, PackageKind, PersonKind, StaffRole

GRIDS = ["clients", "persons", "users", "packages", "assignments", "permissions", "templates", "auditlog"]
ADMIN_ONLY = ["assignments", "permissions", "templates"]


def page(response) -> str:
    return response.get_data(as_text=True)


def test_every_admin_url_sends_anonymous_users_to_login(client, make_client):
    record = make_client()
    urls = ["/admin/"] + [f"/admin/{g}/" for g in GRIDS]
    urls += [f"/admin/{g}/new/" for g in GRIDS] + [f"/admin/{g}/edit/?id={record.id}" for g in GRIDS]
    urls += [f"/admin/{g}/details/?id={record.id}" for g in GRIDS]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"], url
    response = client.post("/admin/clients/delete/", data={"id": record.id})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert db.session.get(Client, record.id) is not None


def test_login_page_and_wrong_password(client, bureau, make_staff):
    staff = make_staff(bureau)
    assert "Logg inn" in page(client.get("/login"))
    response = client.post("/login", data={"email": staff.person.email, "password": "wrong"})
    assert response.status_code == 200
    assert "Feil e-post eller passord" in page(response)
    assert client.get("/admin/").status_code == 302


def test_login_redirects_back_but_never_off_site(client, bureau, make_staff):
    staff = make_staff(bureau)
    data = {"email": staff.person.email, "password": "correct-horse-battery"}
    response = client.post("/login?next=/admin/users/", data=data)
    assert response.headers["Location"] == "/admin/users/"
    client.post("/logout")
    response = client.post("/login?next=https://evil.example/", data=data)
    assert response.headers["Location"] == "/admin/"


def test_logout(login_as, client):
    login_as("staff")
    assert client.get("/admin/").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_grids_render_for_roles(login_as, client, role, make_client):
    make_client(name="Synlig Kunde AS")
    login_as(role)
    for grid in GRIDS:
        response = client.get(f"/admin/{grid}/")
        expected = 403 if role == "staff" and grid in ADMIN_ONLY else 200
        assert response.status_code == expected, grid
    assert "Synlig Kunde AS" in page(client.get("/admin/clients/"))


def test_staff_can_read_but_not_change_the_catalogue(login_as, client, make_package):
    package = make_package(code="CRM")
    login_as("staff")
    assert "CRM" in page(client.get("/admin/packages/"))
    client.post(
        f"/admin/packages/edit/?id={package.id}",
        data={"code": "HACK", "name": "x", "kind": "main", "rank": 1, "price": 1},
    )
    db.session.expire_all()
    assert package.code == "CRM"
    assert "/admin/packages/new/" not in page(client.get("/admin/packages/"))


def test_other_bureaus_records_answer_404(login_as, client, make_bureau, make_client, make_person, make_package):
    login_as("admin")
    other = make_bureau()
    foreign_client = make_client(bureau=other, name="Hemmelig AS")
    foreign_person = make_person(foreign_client, PersonKind.PERSON)
    foreign_package = make_package(bureau=other)
    for grid, record in [("clients", foreign_client), ("persons", foreign_person), ("packages", foreign_package)]:
        for view in ("edit", "details"):
            response = client.get(f"/admin/{grid}/{view}/?id={record.id}")
            assert response.status_code == 404, (grid, view)
        response = client.post(f"/admin/{grid}/delete/", data={"id": record.id})
        # Clients and persons have no generic delete any more (archive instead): the URL only redirects.
        assert response.status_code == (404 if grid == "packages" else 302)
        db.session.expire_all()
        assert db.session.get(type(record), record.id) is not None
    assert "Hemmelig AS" not in page(client.get("/admin/clients/"))
    assert "Hemmelig AS" not in page(client.get("/admin/clients/?search=Hemmelig"))
    # an action with a foreign id changes nothing
    client.post("/admin/clients/action/", data={"action": "mark_demo", "rowid": [foreign_client.id]})
    db.session.expire_all()
    assert foreign_client.is_demo is False
    assert client.get("/admin/clients/manage/?id=not-a-number").status_code == 404
    assert client.post("/admin/clients/company/?id=not-a-number", data={"name": "X"}).status_code == 404


def test_ajax_lookups_only_offer_own_bureau(login_as, client, make_bureau, make_client, make_person):
    login_as("admin")
    make_person(make_client(), PersonKind.PERSON, first_name="Egen")
    make_person(make_client(bureau=make_bureau()), PersonKind.PERSON, first_name="Egen")
    response = client.get("/admin/clients/ajax/lookup/?name=contact_person&query=Egen")
    assert len(response.get_json()) == 1


def client_form(**overrides):
    data = {
        "name": "Ny Kunde AS",
        "org_number": "974 760 673",
        "business_country_code": "NO",
        "postal_country_code": "NO",
        "contact_first_name": "Kari",
        "contact_last_name": "Nordmann",
        "contact_email": "kari@nykunde.example",
        "contact_role": "daglig_leder",
    }
    data.update(overrides)
    return data


def test_create_edit_delete_client_with_history(login_as, client):
    staff = login_as("staff")
    response = client.post("/admin/clients/new/", data=client_form())
    assert response.status_code == 302, page(response)
    created = db.session.scalar(select(Client).where(Client.name == "Ny Kunde AS"))
    assert created.org_number == "974760673" and created.bureau_id == staff.bureau_id

    edit = page(client.get(f"/admin/clients/manage/?id={created.id}&edit=company"))
    version = re.search(r'name="version_check"[^>]*value="(\d+)"', edit) or re.search(
        r'value="(\d+)"[^>]*name="version_check"', edit
    )
    assert version, "the edit form carries the version it was opened at"
    response = client.post(
        f"/admin/clients/company/?id={created.id}",
        data=client_form(name="Omdøpt AS", version_check=version.group(1)),
    )
    assert response.status_code == 302, page(response)
    details = page(client.get(f"/admin/clients/details/?id={created.id}"))
    assert "Omdøpt AS" in details and "Historikk" in details and "Ny Kunde AS" in details

    # The generic delete is gone; a client with history is archived and keeps it.
    response = client.post("/admin/clients/delete/", data={"id": created.id, "url": "/admin/clients/"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Client, created.id).archived_at is None
    client.post("/admin/clients/action/", data={"action": "archive", "rowid": [created.id]})
    db.session.expire_all()
    assert db.session.get(Client, created.id).archived_at is not None
    actions = db.session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.entity == "clients", AuditEntry.entity_id == created.id)
        .order_by(AuditEntry.id)
    ).all()
    assert actions[0] == "create" and "delete" not in actions and "update" in actions


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"org_number": "123456789"}, "ikke et gyldig organisasjonsnummer"),
        ({"org_number": "12345"}, "ikke et gyldig organisasjonsnummer"),
        ({"contact_email": "ikke-en-epost"}, "ikke en gyldig e-postadresse"),
        ({"contact_email": ""}, "Dette feltet er påkrevd"),
        ({"name": ""}, "Dette feltet er påkrevd"),
        ({"name": "x" * 201}, "200"),
    ],
)
def test_bad_client_input_is_refused_in_norwegian(login_as, client, overrides, message):
    login_as("staff")
    response = client.post("/admin/clients/new/", data=client_form(**overrides))
    assert response.status_code == 200
    assert message in page(response)
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.is_internal.is_(False))) == 0


def test_duplicate_org_number_refused_with_link(login_as, client, make_client):
    login_as("staff")
    existing = make_client(name="Første AS", org_number="974760673")
    response = client.post("/admin/clients/new/", data=client_form(), follow_redirects=True)
    text = page(response)
    assert "har allerede dette organisasjonsnummeret" in text
    assert f"/admin/clients/manage/?id={existing.id}" in text
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.org_number == "974760673")) == 1


def test_stale_edit_is_refused(login_as, client, make_client):
    login_as("staff")
    record = make_client(name="Original AS")
    record.name = "Noen andre AS"
    db.session.commit()  # version is now 2
    response = client.post(
        f"/admin/clients/company/?id={record.id}", data=client_form(name="Min versjon AS", version_check="1")
    )
    assert response.status_code == 200
    assert "Noen andre lagret" in page(response)
    db.session.expire_all()
    assert record.name == "Noen andre AS"


def test_demo_flag_cannot_be_cleared_in_form(login_as, client, make_client):
    """The company form has no demo flag; one posted anyway is ignored, and the generic edit form is gone."""
    login_as("staff")
    record = make_client(is_demo=True)
    response = client.post(
        f"/admin/clients/company/?id={record.id}",
        data=client_form(name="Demo AS", org_number=record.org_number, is_demo=""),
    )
    assert response.status_code == 302, page(response)
    assert client.get(f"/admin/clients/edit/?id={record.id}").status_code in (302, 403, 404)
    db.session.expire_all()
    assert record.is_demo is True and record.name == "Demo AS"


def test_mark_demo_action(login_as, client, make_client):
    login_as("staff")
    first, second = make_client(), make_client()
    response = client.post("/admin/clients/action/", data={"action": "mark_demo", "rowid": [first.id, second.id]})
    assert response.status_code == 302
    db.session.expire_all()
    assert first.is_demo and second.is_demo


def test_internal_client_cannot_be_deleted_or_archived(login_as, client, bureau):
    login_as("admin")
    internal = db.session.scalar(select(Client).where(Client.bureau_id == bureau.id, Client.is_internal.is_(True)))
    client.post("/admin/clients/delete/", data={"id": internal.id}, follow_redirects=True)
    response = client.post(
        "/admin/clients/action/", data={"action": "archive", "rowid": [internal.id]}, follow_redirects=True
    )
    assert "internklienten har byråets egne ansatte: den kan ikke arkiveres eller slettes" in page(response).lower()
    db.session.expire_all()
    internal = db.session.get(Client, internal.id)
    assert internal is not None and internal.archived_at is None


def test_person_with_duplicate_email_refused(login_as, client, make_client, make_person):
    login_as("staff")
    customer = make_client()
    make_person(customer, PersonKind.USER, email="ola@kunde.example")
    other = make_person(customer, PersonKind.PERSON, first_name="Ola", last_name="N", email=None)
    data = {"first_name": "Ola", "last_name": "N", "email": "OLA@kunde.example", "phone": ""}
    response = client.post(f"/admin/persons/edit/?id={other.id}", data=data)
    assert "har allerede denne e-postadressen" in page(response)
    db.session.expire_all()
    assert other.email is None


def test_user_form_rules(login_as, client, make_client, make_user):
    login_as("admin")
    external = make_user(make_client(), PersonKind.EXTERNAL_USER)
    response = client.post(f"/admin/users/edit/?id={external.id}", data={"end_date": ""})
    assert "sluttdato" in page(response).lower()
    response = client.post(f"/admin/users/edit/?id={external.id}", data={"end_date": "2099-01-31"})
    assert response.status_code == 302, page(response)
    db.session.expire_all()
    assert str(external.end_date) == "2099-01-31"


def test_only_admin_may_make_staff(login_as, client, bureau, make_staff):
    login_as("staff")
    colleague = make_staff(bureau, StaffRole.STAFF)
    client.post(f"/admin/users/edit/?id={colleague.id}", data={"staff_role": "admin"})
    db.session.expire_all()
    assert colleague.staff_role is StaffRole.STAFF


def test_package_rules_in_form(login_as, client):
    login_as("admin")
    response = client.post("/admin/packages/new/", data={"code": "crm", "name": "CRM", "kind": "main", "price": "149"})
    assert "rang" in page(response).lower()
    response = client.post(
        "/admin/packages/new/", data={"code": "crm", "name": "CRM", "kind": "main", "rank": "1", "price": "149"}
    )
    assert response.status_code == 302
    response = client.post("/admin/packages/new/", data={"code": "CRM", "name": "Igjen", "kind": "addon", "price": "1"})
    assert "har allerede denne koden" in page(response)


def test_assignment_overlap_refused(login_as, client, make_client, make_user, make_package, assign):
    from datetime import date

    login_as("admin")
    user = make_user(make_client())
    crm, project = make_package(), make_package(rank=2)
    assign(user, crm, date(2026, 1, 1))
    data = {"user": user.id, "package": project.id, "valid_from": "2026-06-01"}
    response = client.post("/admin/assignments/new/", data=data)
    assert "høyst én hovedpakke" in page(response)
    addon = make_package(kind=PackageKind.ADDON)
    response = client.post("/admin/assignments/new/", data={**data, "package": addon.id})
    assert response.status_code == 302


def test_client_grid_filters_search_and_sort(login_as, client, make_client, make_template):
    login_as("staff")
    swedish = make_template(name="Svensk kundemal")
    make_client(name="Demo Bakeri AS", is_demo=True)
    make_client(name="Ekte Bygg AS", template_id=swedish.id)
    text = page(client.get("/admin/clients/?search=bakeri"))
    assert "Demo Bakeri AS" in text and "Ekte Bygg AS" not in text
    assert "badge-demo" in text
    grid = page(client.get("/admin/clients/"))
    filters = dict(re.findall(r'"(flt\d+_\d+)"|data-index="(\d+)"', grid) or [])
    assert filters is not None
    # Filter by demo flag and by template through Flask-Admin's filter arguments.
    view = client.application.extensions["admin"][0]._views[1]
    arg = {str(f.name): view.get_filter_arg(i, f) for i, f in enumerate(view._filters)}
    demo = page(client.get(f"/admin/clients/?flt0_{arg['Demo']}=1"))
    assert "Demo Bakeri AS" in demo and "Ekte Bygg AS" not in demo
    by_template = page(client.get(f"/admin/clients/?flt0_{arg['Kundemal']}={swedish.id}"))
    assert "Ekte Bygg AS" in by_template and "Demo Bakeri AS" not in by_template
    assert client.get("/admin/clients/?sort=0&desc=1").status_code == 200


def test_list_pages_do_not_count_and_have_no_n_plus_one(
    login_as, client, make_client, make_user, make_package, assign, count_queries
):
    login_as("admin")
    package_id = make_package().id

    def add_rows(n):
        from models import Package

        package = db.session.get(Package, package_id)
        for _ in range(n):
            user = make_user(make_client())
            assign(user, package)

    def queries(url):
        # Start from an empty identity map and no cached login, as a real request does (the test
        # client shares the test's application context).
        db.session.expire_all()
        g.pop("_login_user", None)
        with count_queries() as counter:
            assert client.get(url).status_code == 200
        return counter

    add_rows(2)
    grids = ["clients", "persons", "users", "assignments", "packages", "auditlog"]
    few = {grid: queries(f"/admin/{grid}/").count for grid in grids}
    add_rows(15)
    for grid in grids:
        counter = queries(f"/admin/{grid}/")
        assert counter.count == few[grid], (grid, counter.statements)
        # no COUNT of the whole table for the pager (a grouped count of what the page shows is fine)
        assert not any("count(" in s.lower() and "count(distinct" not in s.lower() for s in counter.statements), grid


def test_language_switch_to_english(login_as, client):
    from flask_babel import refresh

    login_as("staff")
    assert "Klienter" in page(client.get("/admin/clients/"))
    client.get("/language/en")
    refresh()  # the test client shares one application context, where Flask-Babel caches the locale
    assert "Clients" in page(client.get("/admin/clients/"))
    client.get("/language/no")
    refresh()
    assert "Klienter" in page(client.get("/admin/clients/"))


def test_csrf_is_enforced(app, bureau, make_staff):
    app.config["WTF_CSRF_ENABLED"] = True
    staff = make_staff(bureau, StaffRole.ADMIN)
    browser = app.test_client()
    response = browser.post("/login", data={"email": staff.person.email, "password": "correct-horse-battery"})
    assert response.status_code == 400
    login_page = page(browser.get("/login"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    response = browser.post(
        "/login", data={"email": staff.person.email, "password": "correct-horse-battery", "csrf_token": token}
    )
    assert response.status_code == 302
    assert browser.post("/admin/clients/new/", data=client_form()).status_code == 400
    form = page(browser.get("/admin/clients/new/"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    assert browser.post("/admin/clients/new/", data=client_form(csrf_token=token)).status_code == 302
    assert browser.post("/logout").status_code == 400
