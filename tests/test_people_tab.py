"""The Personer tab: each kind added from its own "+", access changes and row actions."""

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from extensions import db
from models import PackageAssignment, PackageKind, Person, PersonKind, StaffRole, User, UserStatus
from tests.test_admin import page


@pytest.fixture
def catalogue(make_package, make_permission):
    read, write = make_permission(code="CRM_READ", name="CRM lese"), make_permission(code="PROJ", name="Prosjekt")
    crm = make_package(code="CRM", name="CRM", rank=1, permissions=[read])
    project = make_package(code="PROSJEKT", name="Prosjektstyring", rank=2, permissions=[write])
    invoicing = make_package(code="FAKTURA", name="Fakturering", kind=PackageKind.ADDON)
    payroll = make_package(code="LONN", name="Lønn", kind=PackageKind.ADDON, requires_main=True)
    return {"crm": crm, "project": project, "invoicing": invoicing, "payroll": payroll, "read": read}


def add(client, customer, kind, **data):
    return client.post(f"/admin/clients/people/add/{kind}/?id={customer.id}", data=data)


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_tab_shows_every_kind_with_its_own_plus(login_as, client, make_client, make_person):
    login_as("staff")
    customer = make_client()
    make_person(customer, PersonKind.PERSON, first_name="Regnskaps", last_name="Referanse")
    text = page(client.get(f"/admin/clients/manage/?id={customer.id}&tab=people"))
    for kind in PersonKind:
        assert f"/admin/clients/people/add/{kind.value}/?id={customer.id}" in text
    assert "Regnskaps Referanse" in text
    for label in ("Bruker knyttet til forhandler", "Ekstern bruker med tilgangspakker", "Person uten bruker"):
        assert label in text


def test_add_several_users_with_main_package_and_addon(login_as, client, make_client, catalogue):
    login_as("staff")
    customer = make_client()
    response = add(
        client,
        customer,
        "user",
        first_name=["Kari", "Ola", ""],
        last_name=["Nordmann", "Hansen", ""],
        email=["kari@kunde.example", "ola@kunde.example", ""],
        main_package=str(catalogue["project"].id),
        addon_packages=[str(catalogue["invoicing"].id)],
    )
    assert response.status_code == 302, page(response)
    users = db.session.scalars(select(User).join(User.person).where(Person.client_id == customer.id)).all()
    assert len(users) == 2 and all(u.status is UserStatus.INVITED for u in users)
    for user in users:
        codes = sorted(a.package.code for a in user.assignments)
        assert codes == ["FAKTURA", "PROSJEKT"]


def test_add_page_shows_hierarchy_and_resulting_rights_data(login_as, client, make_client, catalogue):
    login_as("staff")
    text = page(client.get(f"/admin/clients/people/add/user/?id={make_client().id}"))
    assert "inkluderer CRM" in text
    assert "CRM lese" in text  # rights data for "Tilpass tilgang"


@pytest.mark.parametrize(
    "kind, extra, reason",
    [
        ("external_user", {}, "sluttdato"),
        ("external_user", {"end_date": (date.today() - timedelta(days=1)).isoformat()}, "tilbake i tid"),
        ("user", {"addon_packages": ["payroll"]}, "krever en hovedpakke"),
        ("user", {"main_package": "crm", "permissions": ["read"]}, "ikke begge"),
        ("user_without_packages", {"main_package": "crm"}, "kan ikke ha tilgangspakker"),
        ("user", {"email": ["ikke-epost", "ola@kunde.example"]}, "ikke en gyldig e-postadresse"),
        ("user", {"email": ["samme@kunde.example", "SAMME@kunde.example"]}, "har allerede denne e-postadressen"),
    ],
)
def test_bad_input_is_refused_and_nothing_saved(login_as, client, make_client, catalogue, kind, extra, reason):
    login_as("staff")
    customer = make_client()
    data = {
        "first_name": ["Kari", "Ola"],
        "last_name": ["Nordmann", "Hansen"],
        "email": ["kari@kunde.example", "ola@kunde.example"],
    }
    for key, value in extra.items():
        if key in ("main_package",):
            value = str(catalogue[value].id)
        elif key in ("addon_packages", "permissions"):
            value = [str(catalogue[v].id) for v in value]
        data[key] = value
    response = add(client, customer, kind, **data)
    assert response.status_code == 200
    assert reason in page(response)
    assert count(Person, Person.client_id == customer.id) == 0


def test_package_of_another_bureau_is_refused(login_as, client, make_client, make_bureau, make_package):
    login_as("staff")
    foreign = make_package(bureau=make_bureau(), code="FREMMED")
    customer = make_client()
    response = add(
        client, customer, "user", first_name="A", last_name="B", email="a@b.example", main_package=str(foreign.id)
    )
    assert response.status_code == 200
    assert count(Person, Person.client_id == customer.id) == 0


def test_external_user_gets_end_date(login_as, client, make_client, catalogue):
    login_as("staff")
    customer = make_client()
    end = date.today() + timedelta(days=20)
    response = add(
        client,
        customer,
        "external_user",
        first_name="Sommer",
        last_name="Vikar",
        email="vikar@kunde.example",
        end_date=end.isoformat(),
        main_package=str(catalogue["crm"].id),
    )
    assert response.status_code == 302, page(response)
    user = db.session.scalar(select(User).join(User.person).where(Person.email == "vikar@kunde.example"))
    assert user.end_date == end and user.person_kind is PersonKind.EXTERNAL_USER


def test_bureau_user_only_from_employees(login_as, client, bureau, make_client, make_staff, make_user):
    login_as("staff")
    customer = make_client()
    employee = make_staff(bureau, StaffRole.STAFF, first_name="Regn")
    outsider = make_user(make_client())
    text = page(client.get(f"/admin/clients/people/add/reseller_user/?id={customer.id}"))
    assert "Regn" in text
    response = add(client, customer, "reseller_user", employee=str(outsider.id), reseller_role="accountant")
    assert response.status_code == 200 and count(Person, Person.client_id == customer.id) == 0
    response = add(
        client, customer, "reseller_user", employee=str(employee.id), reseller_role="auditor", bank_access="y"
    )
    assert response.status_code == 302, page(response)
    linked = db.session.scalar(select(User).join(User.person).where(Person.client_id == customer.id))
    assert linked.employee_id == employee.id and linked.reseller_role == "auditor" and linked.bank_access
    assert linked.person.email == employee.person.email and linked.status is UserStatus.ACTIVE


def test_person_without_user(login_as, client, make_client):
    login_as("staff")
    customer = make_client()
    response = add(client, customer, "person", first_name="Prosjekt", last_name="Leder", email="")
    assert response.status_code == 302, page(response)
    person = db.session.scalar(select(Person).where(Person.client_id == customer.id))
    assert person.kind is PersonKind.PERSON and person.user is None


def test_change_access_ends_old_package_yesterday(login_as, client, make_client, make_user, catalogue, assign):
    login_as("staff")
    customer = make_client()
    user = make_user(customer)
    start = date.today() - timedelta(days=40)
    assign(user, catalogue["crm"], start)
    url = f"/admin/clients/people/{user.person.id}/access/?id={customer.id}"
    form = page(client.get(url))
    assert (
        f'<option selected value="{catalogue["crm"].id}"' in form or f'value="{catalogue["crm"].id}" selected' in form
    )
    response = client.post(url, data={"main_package": str(catalogue["project"].id)})
    assert response.status_code == 302, page(response)
    rows = db.session.scalars(
        select(PackageAssignment).where(PackageAssignment.user_id == user.id).order_by(PackageAssignment.valid_from)
    ).all()
    assert [(r.package.code, r.valid_from, r.valid_to) for r in rows] == [
        ("CRM", start, date.today() - timedelta(days=1)),
        ("PROSJEKT", date.today(), None),
    ]


def test_row_actions_remove_access_and_archive(login_as, client, make_client, make_user, catalogue, assign):
    login_as("staff")
    customer = make_client()
    user = make_user(customer)
    assign(user, catalogue["crm"], date.today() - timedelta(days=3))
    person_id, user_id = user.person.id, user.id
    base = f"/admin/clients/people/{person_id}"
    client.post(f"{base}/remove_access/?id={customer.id}")
    db.session.expire_all()
    assert all(a.valid_to is not None for a in user.assignments)
    # The row's "delete" is gone: it archives (hard delete only through the persons grid's confirmation page).
    assert client.post(f"{base}/delete/?id={customer.id}").status_code == 404
    archived = client.post(f"{base}/archive/?id={customer.id}", follow_redirects=True)
    assert "arkivert" in page(archived)
    db.session.expire_all()
    person = db.session.get(Person, person_id)
    assert person is not None and person.archived_at is not None
    assert person.user.status == UserStatus.BLOCKED and person.user.archived_at is not None
    assert len(db.session.get(User, user_id).assignments) == 1
    assert f'data-person="{person_id}"' not in page(client.get(f"/admin/clients/manage/?id={customer.id}&tab=people"))


def test_people_of_another_client_answer_404(login_as, client, make_client, make_person):
    login_as("staff")
    mine, other = make_client(), make_client()
    stranger = make_person(other, PersonKind.PERSON)
    assert client.post(f"/admin/clients/people/{stranger.id}/archive/?id={mine.id}").status_code == 404
    assert client.get(f"/admin/clients/people/{stranger.id}/access/?id={mine.id}").status_code == 404
    assert client.get(f"/admin/clients/people/add/nonsense/?id={mine.id}").status_code == 404
