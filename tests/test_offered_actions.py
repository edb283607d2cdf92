"""Actions are offered only when the policy allows them, and the forms offering them read as a person expects."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from extensions import db
from models import OutboxMessage, PackageKind, Person, PersonKind, ResellerRole, StaffRole, User, UserStatus, utcnow
from services.invitations import invite_user, login_url
from tests.conftest import internal_client
from tests.test_admin import page
from tests.test_invitations import accept_data, latest_link


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def row_of(html: str, person: Person) -> str:
    start = html.index(f'data-person="{person.id}"')
    return html[start : html.index("</tr>", start)]


# --- "Send invitasjon på nytt" -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_blocked_user_is_not_offered_an_invitation_and_a_post_is_refused(
    role, login_as, client, make_client, make_user
):
    login_as(role)
    customer = make_client()
    blocked = make_user(customer, status=UserStatus.BLOCKED, invitation_sent_at=utcnow())
    invited = make_user(customer, status=UserStatus.INVITED, invitation_sent_at=utcnow())
    html = page(client.get(f"/admin/clients/manage/?id={customer.id}&tab=people"))
    assert 'data-op="invite"' not in row_of(html, blocked.person)
    assert 'data-op="reactivate"' in row_of(html, blocked.person)
    assert "Send invitasjon på nytt" in row_of(html, invited.person)

    before = count(OutboxMessage)
    response = client.post(f"/admin/clients/people/{blocked.person.id}/invite/?id={customer.id}", follow_redirects=True)
    assert response.status_code == 200
    assert "reaktiver" in page(response).lower() or "aktiver" in page(response).lower()
    db.session.expire_all()
    assert count(OutboxMessage) == before
    assert blocked.status is UserStatus.BLOCKED and blocked.invitation_nonce is None


def test_person_without_user_and_active_user_are_not_offered_an_invitation(
    login_as, client, make_client, make_user, make_person
):
    login_as("staff")
    customer = make_client()
    active = make_user(customer, status=UserStatus.ACTIVE)
    nobody = make_person(customer, PersonKind.PERSON)
    html = page(client.get(f"/admin/clients/manage/?id={customer.id}&tab=people"))
    assert 'data-op="invite"' not in row_of(html, active.person)
    assert 'data-op="invite"' not in row_of(html, nobody)


# --- giving an employee access: integration user too ----------------------------------------------


def test_grant_access_offers_and_grants_integration_user(login_as, client, bureau, make_client, make_staff):
    login_as("staff")
    employee = make_staff(bureau, first_name="Integra", email="integra@byra.example")
    first, second = make_client(), make_client()
    rowids = [first.id, second.id]
    form = page(client.post("/admin/clients/action/", data={"action": "grant_access", "rowid": rowids}))
    assert re.search(r'<option[^>]*value="integration"[^>]*>Integrasjonsbruker</option>', form)
    for value in ("accountant", "auditor"):
        assert f'value="{value}"' in form
    response = client.post(
        "/admin/clients/action/",
        data={
            "action": "grant_access",
            "rowid": rowids,
            "employee": str(employee.id),
            "role": "integration",
            "grant": "1",
        },
    )
    assert response.status_code == 302
    users = db.session.scalars(select(User).where(User.employee_id == employee.id)).all()
    assert sorted(u.person.client_id for u in users) == sorted(rowids)
    assert all(u.reseller_role is ResellerRole.INTEGRATION for u in users)


def test_grant_access_refuses_a_role_that_is_not_offered(login_as, client, bureau, make_client, make_staff):
    login_as("staff")
    employee = make_staff(bureau)
    customer = make_client()
    for role in ("owner", "", "<b>admin</b>"):
        response = client.post(
            "/admin/clients/action/",
            data={
                "action": "grant_access",
                "rowid": [customer.id],
                "employee": str(employee.id),
                "role": role,
                "grant": "1",
            },
        )
        assert response.status_code == 200
        assert "<b>admin</b>" not in page(response)
    assert count(User, User.employee_id == employee.id) == 0


# --- single-row forms say the reason without "1: " -------------------------------------------------


def test_single_person_refusal_has_no_row_number(login_as, client, make_client, make_person):
    login_as("staff")
    customer = make_client()
    make_person(customer, email="kari@kunde.example")
    response = client.post(
        f"/admin/clients/people/add/user/?id={customer.id}",
        data={"first_name": "Kari", "last_name": "Nordmann", "email": "kari@kunde.example"},
    )
    text = page(response)
    assert response.status_code == 200
    assert "En annen person hos denne klienten har allerede denne e-postadressen." in text
    assert "1: En annen person" not in text and "Nordmann: En annen person" not in text
    assert count(Person, Person.client_id == customer.id) == 1


def test_bureau_user_refusal_has_no_row_number(login_as, client, bureau, make_client, make_staff, make_person):
    login_as("staff")
    customer = make_client()
    employee = make_staff(bureau, email="dobbel@byra.example")
    make_person(customer, email="dobbel@byra.example")
    response = client.post(
        f"/admin/clients/people/add/reseller_user/?id={customer.id}",
        data={"employee": str(employee.id), "reseller_role": "accountant"},
    )
    text = page(response)
    assert response.status_code == 200 and "En annen person hos denne klienten" in text
    assert "1: " not in re.sub(r"<[^>]+>", "", text).replace("\n", " ")
    assert count(Person, Person.client_id == customer.id, Person.kind == PersonKind.RESELLER_USER) == 0


def test_several_rows_still_name_the_refused_row(login_as, client, make_client, make_person):
    login_as("staff")
    customer = make_client()
    make_person(customer, email="kari@kunde.example")
    response = client.post(
        f"/admin/clients/people/add/user/?id={customer.id}",
        data={
            "first_name": ["Ola", "Kari"],
            "last_name": ["Hansen", "Nordmann"],
            "email": ["ola@kunde.example", "kari@kunde.example"],
        },
    )
    assert "Kari Nordmann: En annen person" in page(response)
    assert count(Person, Person.client_id == customer.id) == 1  # all or nothing


# --- add-ons and single permissions as checkbox lists ----------------------------------------------


@pytest.fixture
def addons(make_package, make_permission):
    main = make_package(code="CRM", name="CRM", rank=1)
    first = make_package(code="FAKT", name="Fakturering", kind=PackageKind.ADDON)
    second = make_package(code="BANK", name="Bank", kind=PackageKind.ADDON)
    read = make_permission(code="LES", name="Lese")
    write = make_permission(code="SKRIV", name="Skrive")
    return {"main": main, "first": first, "second": second, "read": read, "write": write}


def test_addons_and_permissions_are_checkbox_lists(login_as, client, make_client, addons):
    login_as("staff")
    customer = make_client()
    html = page(client.get(f"/admin/clients/people/add/user/?id={customer.id}"))
    assert "multiple" not in html
    for field, key in (("addon_packages", "first"), ("addon_packages", "second"), ("permissions", "read")):
        assert re.search(rf'<input[^>]*type="checkbox"[^>]*name="{field}"[^>]*value="{addons[key].id}"', html) or (
            re.search(rf'<input[^>]*name="{field}"[^>]*type="checkbox"[^>]*value="{addons[key].id}"', html)
        ), field
    response = client.post(
        f"/admin/clients/people/add/user/?id={customer.id}",
        data={
            "first_name": "Kari",
            "last_name": "Nordmann",
            "email": "kari@kunde.example",
            "main_package": str(addons["main"].id),
            "addon_packages": [str(addons["first"].id), str(addons["second"].id)],
        },
    )
    assert response.status_code == 302, page(response)
    user = db.session.scalar(select(User).join(User.person).where(Person.client_id == customer.id))
    assert sorted(a.package.code for a in user.assignments) == ["BANK", "CRM", "FAKT"]

    access = page(client.get(f"/admin/clients/people/{user.person.id}/access/?id={customer.id}"))
    assert "multiple" not in access
    checked = re.findall(r"<input[^>]*checked[^>]*>", access)
    assert any(f'value="{addons["first"].id}"' in c and "addon_packages" in c for c in checked)


def test_checkbox_list_refuses_a_package_that_is_not_offered(
    login_as, client, make_client, make_bureau, make_package, addons
):
    login_as("staff")
    customer = make_client()
    foreign = make_package(bureau=make_bureau(), code="FREMMED", kind=PackageKind.ADDON)
    response = client.post(
        f"/admin/clients/people/add/user/?id={customer.id}",
        data={"first_name": "Kari", "last_name": "N", "email": "k@kunde.example", "addon_packages": [str(foreign.id)]},
    )
    assert response.status_code == 200
    assert count(Person, Person.client_id == customer.id) == 0
    response = client.post(
        f"/admin/clients/people/add/user/?id={customer.id}",
        data={"first_name": "Kari", "last_name": "N", "email": "k@kunde.example", "permissions": ["abc"]},
    )
    assert response.status_code == 200 and count(Person, Person.client_id == customer.id) == 0


# --- the invitation-accepted page links to the login -----------------------------------------------


def test_accepted_page_links_a_staff_member_to_this_login(app, client, bureau, make_user):
    employee = make_user(internal_client(bureau), status=UserStatus.INVITED, staff_role=StaffRole.STAFF)
    invite_user(db.session, employee)
    db.session.commit()
    response = client.post(latest_link(employee), data=accept_data())
    html = page(response)
    assert response.status_code == 200 and 'data-state="accepted"' in html
    assert re.search(r'<a[^>]*id="log-in"[^>]*href="http://testserver/login"', html), html
    assert login_url(employee) == "http://testserver/login"


def test_accepted_page_links_a_clients_user_to_the_suite(app, client, make_client, make_user):
    app.config["SUITE_LOGIN_URL"] = "https://suite.example/logg-inn"
    user = make_user(make_client(), status=UserStatus.INVITED)
    invite_user(db.session, user)
    db.session.commit()
    html = page(client.post(latest_link(user), data=accept_data()))
    assert 'href="https://suite.example/logg-inn"' in html and ">Logg inn<" in html


def test_accepted_page_without_a_suite_address_has_no_dead_link(app, client, make_client, make_user):
    app.config["SUITE_LOGIN_URL"] = None
    user = make_user(make_client(), status=UserStatus.INVITED)
    invite_user(db.session, user)
    db.session.commit()
    html = page(client.post(latest_link(user), data=accept_data()))
    assert 'data-state="accepted"' in html and 'id="log-in"' not in html
    assert "Logg inn i regnskapsprogrammet" in html
