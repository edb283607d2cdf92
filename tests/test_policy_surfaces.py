"""Every surface that changes a user asks the policy: driven over HTTP as staff and as administrator against an
administrator, a staff colleague and oneself, asserting the stored state afterwards (not only the status code)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from extensions import db
from models import (
    OutboxMessage,
    Package,
    PackageAssignment,
    PackageKind,
    Person,
    PersonKind,
    StaffRole,
    User,
    UserStatus,
    utcnow,
)
from tests.conftest import internal_client
from tests.fixtures.imports import upload_and_import

TODAY = date.today()


def page(response) -> str:
    return response.get_data(as_text=True)


@dataclass
class World:
    actor: User
    target: User
    package_id: int
    internal_id: int
    customer_id: int


def _user(world: World) -> User:
    db.session.expire_all()
    return db.session.get(User, world.target.id)


def _assignments(world: World) -> int:
    return db.session.scalar(
        select(func.count(PackageAssignment.id)).where(
            PackageAssignment.user_id == world.target.id,
            PackageAssignment.valid_from <= TODAY,
            (PackageAssignment.valid_to.is_(None)) | (PackageAssignment.valid_to >= TODAY),
        )
    )


def _invitations(world: World) -> int:
    return db.session.scalar(
        select(func.count(OutboxMessage.id)).where(OutboxMessage.related == f"user:{world.target.id}")
    )


def _block(world: World) -> None:
    world.target.status = UserStatus.BLOCKED
    world.target.blocked_at = utcnow()
    db.session.commit()


def _make_invited(world: World) -> None:
    world.target.status = UserStatus.INVITED
    world.target.password_hash = None
    db.session.commit()


def _with_package(world: World) -> None:
    db.session.add(
        PackageAssignment(
            bureau_id=world.target.bureau_id,
            user=world.target,
            package=db.session.get(Package, world.package_id),
            valid_from=TODAY - timedelta(days=3),
        )
    )
    db.session.commit()


def _archived(world: World) -> bool:
    db.session.expire_all()
    return db.session.get(Person, world.target.person_id).archived_at is not None


def _archive(world: World) -> None:
    """The target archived by the system (blocked, as archiving does), for the restore surface."""
    person = db.session.get(Person, world.target.person_id)
    person.archived_at = person.user.archived_at = utcnow()
    person.user.status, person.user.blocked_at = UserStatus.BLOCKED, utcnow()
    db.session.commit()


def _tab(world: World, operation: str) -> str:
    return f"/admin/clients/people/{world.target.person_id}/{operation}/?id={world.internal_id}"


@dataclass
class Surface:
    name: str
    post: Callable  # (client, world) -> response
    snapshot: Callable  # (world) -> anything comparable
    allowed: Callable  # (actor role, target kind) -> whether the change may happen
    setup: Callable | None = None
    targets: tuple[str, ...] = ("admin", "staff", "self")


def only_admin_on_others(role: str, target: str) -> bool:
    return role == "admin" and target != "self"


def only_admin(role: str, target: str) -> bool:
    return role == "admin"


def never(role: str, target: str) -> bool:
    return False


def always(role: str, target: str) -> bool:
    return True


def identity(role: str, target: str) -> bool:
    return role == "admin" or target == "self"


SURFACES = [
    Surface(
        "Brukere edit: staff role",
        lambda c, w: c.post(
            f"/admin/users/edit/?id={w.target.id}",
            data={"staff_role": "staff" if w.target.staff_role is StaffRole.ADMIN else "admin"},
        ),
        lambda w: _user(w).staff_role,
        only_admin_on_others,
    ),
    Surface(
        "Brukere edit: end date",
        lambda c, w: c.post(
            f"/admin/users/edit/?id={w.target.id}", data={"end_date": (TODAY + timedelta(days=30)).isoformat()}
        ),
        lambda w: _user(w).end_date,
        only_admin_on_others,
    ),
    Surface(
        "Brukere edit: status and password fields that are no longer in the form",
        lambda c, w: c.post(
            f"/admin/users/edit/?id={w.target.id}",
            data={"status": "blocked", "new_password": "a-brand-new-password", "person": "1", "employee": "1"},
        ),
        lambda w: (_user(w).status, _user(w).password_hash, _user(w).person_id, _user(w).employee_id),
        never,
    ),
    Surface(
        "Personer edit: e-mail",
        lambda c, w: c.post(
            f"/admin/persons/edit/?id={w.target.person_id}",
            data={
                "first_name": w.target.person.first_name,
                "last_name": w.target.person.last_name,
                "email": f"overtatt{w.target.id}@example.no",
                "phone": "",
            },
        ),
        lambda w: _user(w).person.email,
        identity,
    ),
    Surface(
        "Personer edit: name",
        lambda c, w: c.post(
            f"/admin/persons/edit/?id={w.target.person_id}",
            data={"first_name": "Omdøpt", "last_name": "Navn", "email": w.target.person.email, "phone": ""},
        ),
        lambda w: (_user(w).person.first_name, _user(w).person.last_name),
        identity,
    ),
    Surface(
        "Brukere bulk: deactivate",
        lambda c, w: c.post("/admin/users/action/", data={"action": "deactivate", "rowid": [w.target.id]}),
        lambda w: _user(w).status,
        only_admin_on_others,
    ),
    Surface(
        "Brukere bulk: reactivate",
        lambda c, w: c.post("/admin/users/action/", data={"action": "reactivate", "rowid": [w.target.id]}),
        lambda w: _user(w).status,
        only_admin_on_others,
        setup=_block,
        targets=("admin", "staff"),
    ),
    Surface(
        "Brukere bulk: send invitation",
        lambda c, w: c.post("/admin/users/action/", data={"action": "invite", "rowid": [w.target.id]}),
        _invitations,
        only_admin_on_others,
        setup=_make_invited,
        targets=("admin", "staff"),
    ),
    Surface(
        "Personer bulk: send invitation",
        lambda c, w: c.post("/admin/persons/action/", data={"action": "invite", "rowid": [w.target.person_id]}),
        _invitations,
        only_admin_on_others,
        setup=_make_invited,
        targets=("admin", "staff"),
    ),
    Surface(
        "Brukere bulk: grant a package",
        lambda c, w: c.post(
            f"/admin/users/grant-package/?id={w.target.id}",
            data={"package": str(w.package_id), "valid_from": TODAY.isoformat()},
        ),
        _assignments,
        only_admin,
    ),
    Surface(
        "Personer tab: deactivate",
        lambda c, w: c.post(_tab(w, "deactivate")),
        lambda w: _user(w).status,
        only_admin_on_others,
    ),
    Surface(
        "Personer tab: reactivate",
        lambda c, w: c.post(_tab(w, "reactivate")),
        lambda w: _user(w).status,
        only_admin_on_others,
        setup=_block,
        targets=("admin", "staff"),
    ),
    Surface(
        "Personer tab: send invitation",
        lambda c, w: c.post(_tab(w, "invite")),
        _invitations,
        only_admin_on_others,
        setup=_make_invited,
        targets=("admin", "staff"),
    ),
    Surface(
        "Personer tab: remove access",
        lambda c, w: c.post(_tab(w, "remove_access")),
        _assignments,
        only_admin,
        setup=_with_package,
    ),
    Surface(
        "Personer tab: archive",
        lambda c, w: c.post(_tab(w, "archive")),
        _archived,
        only_admin_on_others,
    ),
    Surface(
        "Personer grid bulk: archive",
        lambda c, w: c.post("/admin/persons/action/", data={"action": "archive", "rowid": [w.target.person_id]}),
        _archived,
        only_admin_on_others,
    ),
    Surface(
        "Brukere bulk: archive",
        lambda c, w: c.post("/admin/users/action/", data={"action": "archive", "rowid": [w.target.id]}),
        _archived,
        only_admin_on_others,
    ),
    Surface(
        "Brukere bulk: restore",
        lambda c, w: c.post("/admin/users/action/", data={"action": "restore", "rowid": [w.target.id]}),
        _archived,
        only_admin_on_others,
        setup=_archive,
        targets=("admin", "staff"),
    ),
    Surface(
        "Brukere: delete permanently (staff users are never deleted)",
        lambda c, w: c.post("/admin/users/delete-permanently/", data={"id": [w.target.id]}),
        lambda w: db.session.get(Person, w.target.person_id) is not None,
        never,
    ),
    Surface(
        "Personer tab: change access",
        lambda c, w: c.post(
            f"/admin/clients/people/{w.target.person_id}/access/?id={w.internal_id}",
            data={"main_package": str(w.package_id)},
        ),
        _assignments,
        only_admin,
    ),
    Surface(
        "Kunder bulk: give an employee access",
        lambda c, w: c.post(
            "/admin/clients/action/",
            data={
                "action": "grant_access",
                "rowid": [w.customer_id],
                "employee": str(w.target.id),
                "role": "accountant",
                "grant": "1",
            },
        ),
        lambda w: db.session.scalar(select(func.count(User.id)).where(User.employee_id == w.target.id)),
        always,
    ),
]
CASES = [
    pytest.param(surface, role, target, id=f"{surface.name} | {role} -> {target}")
    for surface in SURFACES
    for role in ("staff", "admin")
    for target in surface.targets
]


@pytest.mark.parametrize(("surface", "role", "target_kind"), CASES)
def test_every_surface_asks_the_policy(
    surface, role, target_kind, client, bureau, make_staff, make_client, make_package, login
):
    make_staff(bureau, StaffRole.ADMIN)  # a spare administrator: the last-administrator rule is tested on its own
    actor = make_staff(bureau, StaffRole(role))
    targets = {
        "admin": lambda: make_staff(bureau, StaffRole.ADMIN),
        "staff": lambda: make_staff(bureau, StaffRole.STAFF),
        "self": lambda: actor,
    }
    target = targets[target_kind]()
    world = World(
        actor=actor,
        target=target,
        package_id=make_package(kind=PackageKind.MAIN).id,
        internal_id=internal_client(bureau).id,
        customer_id=make_client().id,
    )
    if surface.setup:
        surface.setup(world)
    login(actor)
    before = surface.snapshot(world)
    response = surface.post(client, world)
    assert response.status_code in (200, 302), page(response)[-2000:]
    after = surface.snapshot(world)
    if surface.allowed(role, target_kind):
        assert after != before, page(response)[-3000:]
    else:
        assert after == before


# --- the scenarios of the issue -------------------------------------------------------------------


def test_staff_cannot_make_themselves_administrator(client, bureau, make_staff, login):
    make_staff(bureau, StaffRole.ADMIN)
    ola = make_staff(bureau, StaffRole.STAFF)
    login(ola)
    client.post(f"/admin/users/edit/?id={ola.id}", data={"staff_role": "admin", "end_date": ""})
    db.session.expire_all()
    assert db.session.get(User, ola.id).staff_role is StaffRole.STAFF
    assert 'name="staff_role"' not in page(client.get(f"/admin/users/edit/?id={ola.id}"))


def test_the_takeover_chain_is_refused_at_every_step(client, bureau, make_staff, login):
    boss = make_staff(bureau, StaffRole.ADMIN, email="sjef@byra.example")
    kari = make_staff(bureau, StaffRole.STAFF)
    login(kari)
    client.post(
        f"/admin/persons/edit/?id={boss.person_id}",
        data={"first_name": "Sjef", "last_name": "Testesen", "email": "kari-privat@example.no", "phone": ""},
    )
    client.post(f"/admin/users/edit/?id={boss.id}", data={"status": "invited"})
    response = client.post("/admin/users/action/", data={"action": "invite", "rowid": [boss.id]}, follow_redirects=True)
    assert "Bare en byråadministrator" in page(response) or "allerede aktiv" in page(response)
    db.session.expire_all()
    stored = db.session.get(User, boss.id)
    assert stored.person.email == "sjef@byra.example" and stored.status is UserStatus.ACTIVE
    assert stored.password_hash is not None and stored.invitation_nonce is None
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/admin/users/action/", {"action": "deactivate"}),
        ("/admin/users/edit/?id={id}", {"end_date": "2000-01-01"}),
        ("/admin/users/edit/?id={id}", {"staff_role": "staff"}),
        ("/admin/users/delete/", {"id": "{id}"}),
        ("/admin/persons/delete/", {"id": "{person_id}"}),
    ],
    ids=["block", "end date", "demote", "delete", "delete person"],
)
def test_staff_cannot_block_end_date_demote_or_delete_an_administrator(client, bureau, make_staff, login, url, data):
    make_staff(bureau, StaffRole.ADMIN)  # another administrator: the policy alone must refuse, not the last-admin rule
    boss = make_staff(bureau, StaffRole.ADMIN)
    login(make_staff(bureau, StaffRole.STAFF))
    data = {key: value.format(id=boss.id, person_id=boss.person_id) for key, value in data.items()}
    if data.get("action"):
        data["rowid"] = [boss.id]
    client.post(url.format(id=boss.id), data=data)
    db.session.expire_all()
    stored = db.session.get(User, boss.id)
    assert stored is not None
    assert (stored.status, stored.staff_role, stored.end_date) == (UserStatus.ACTIVE, StaffRole.ADMIN, None)


def test_the_last_active_administrator_cannot_be_lost_by_an_administrator_either(client, bureau, make_staff, login):
    only = make_staff(bureau, StaffRole.ADMIN, email="eneste@byra.example")
    login(only)
    response = client.post(
        f"/admin/persons/edit/?id={only.person_id}",
        data={"first_name": "Eneste", "last_name": "Admin", "email": "ny@byra.example", "phone": ""},
        follow_redirects=True,
    )
    assert "uten aktiv administrator" in page(response)
    response = client.post(
        "/admin/users/action/", data={"action": "deactivate", "rowid": [only.id]}, follow_redirects=True
    )
    assert "din egen bruker" in page(response)
    db.session.expire_all()
    stored = db.session.get(User, only.id)
    assert stored.person.email == "eneste@byra.example" and stored.status is UserStatus.ACTIVE
    assert stored.staff_role is StaffRole.ADMIN and stored.password_hash is not None


def test_an_administrator_demotes_another_but_not_themselves(client, bureau, make_staff, login):
    me, other = make_staff(bureau, StaffRole.ADMIN), make_staff(bureau, StaffRole.ADMIN)
    login(me)
    client.post(f"/admin/users/edit/?id={me.id}", data={"staff_role": "staff"})
    client.post(f"/admin/users/edit/?id={other.id}", data={"staff_role": "staff"})
    db.session.expire_all()
    assert db.session.get(User, me.id).staff_role is StaffRole.ADMIN
    assert db.session.get(User, other.id).staff_role is StaffRole.STAFF


@pytest.mark.parametrize("view", ["users", "persons"])
def test_the_generic_create_forms_are_gone(client, login_as, make_client, make_person, view):
    login_as("admin")
    person = make_person(make_client())
    assert client.get(f"/admin/{view}/new/").status_code in (302, 403, 404)
    users_before = db.session.scalar(select(func.count(User.id)))
    persons_before = db.session.scalar(select(func.count(Person.id)))
    data = {"person": person.id, "status": "active", "staff_role": "admin", "new_password": "p" * 14}
    data |= {"client": person.client_id, "kind": "user", "first_name": "Ny", "last_name": "Person"}
    client.post(f"/admin/{view}/new/", data=data)
    assert db.session.scalar(select(func.count(User.id))) == users_before
    assert db.session.scalar(select(func.count(Person.id))) == persons_before


def test_the_people_tab_offers_only_what_the_policy_allows(client, bureau, make_staff, login):
    boss = make_staff(bureau, StaffRole.ADMIN)
    staff = make_staff(bureau, StaffRole.STAFF)
    login(staff)
    text = page(client.get(f"/admin/clients/manage/?id={internal_client(bureau).id}&tab=people"))
    assert f'data-person="{boss.person_id}"' in text
    row = text.split(f'data-person="{boss.person_id}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-op="deactivate"' not in row and 'data-op="remove_access"' not in row
    client.post("/logout")
    login(boss)
    text = page(client.get(f"/admin/clients/manage/?id={internal_client(bureau).id}&tab=people"))
    row = text.split(f'data-person="{staff.person_id}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-op="deactivate"' in row


def test_the_people_import_adds_people_for_staff(client, login_as, make_client):
    login_as("staff")
    customer = make_client()
    content = (
        "org_number,kind,first_name,last_name,email,phone,main_package,addon_packages,end_date,invite\n"
        f"{customer.org_number},user_without_packages,Importert,Person,importert@kunde.example,,,,,no\n"
    )
    upload_and_import(client, f"/admin/clients/people/import/?id={customer.id}", None, None, "p.csv", content.encode())
    person = db.session.scalar(select(Person).where(Person.client_id == customer.id))
    assert person is not None and person.kind is PersonKind.USER_WITHOUT_PACKAGES
    assert person.user.status is UserStatus.INVITED


def _bureau_access(client, login, actor, employee, customer_id: int) -> User:
    """Give ``employee`` access to the customer (the Kunder bulk action, open to staff) and return that bureau user."""
    login(actor)
    client.post(
        "/admin/clients/action/",
        data={
            "action": "grant_access",
            "rowid": [customer_id],
            "employee": str(employee.id),
            "role": "accountant",
            "grant": "1",
        },
    )
    access = db.session.scalar(select(User).where(User.employee_id == employee.id))
    assert access is not None
    return access


@pytest.mark.parametrize("employee_role", [StaffRole.ADMIN, StaffRole.STAFF, "oneself"])
def test_staff_cannot_change_a_staff_employees_access_to_a_client(
    client, bureau, make_staff, make_client, login, employee_role
):
    """A bureau user is an employee's own access to a client. Staff could rename it and point its e-mail elsewhere,
    end-date it, change its role and bank access, deactivate and archive it: an administrator's access included."""
    actor = make_staff(bureau, StaffRole.STAFF)
    employee = actor if employee_role == "oneself" else make_staff(bureau, employee_role)
    customer = make_client(name="Tilgang AS")
    access = _bureau_access(client, login, actor, employee, customer.id)
    key, person_id = access.id, access.person_id
    before = (access.person.first_name, access.person.email, access.end_date, access.reseller_role, access.bank_access)
    tab = f"/admin/clients/people/{person_id}/{{}}/?id={customer.id}"
    client.post(
        f"/admin/persons/edit/?id={person_id}",
        data={"first_name": "Overtatt", "last_name": "X", "email": "overtatt@example.no", "phone": ""},
    )
    client.post(
        f"/admin/users/edit/?id={key}",
        data={
            "end_date": (date.today() + timedelta(days=2)).isoformat(),
            "reseller_role": "auditor",
            "bank_access": "y",
        },
    )
    for operation in ("deactivate", "archive"):
        client.post(tab.format(operation))
    client.post("/admin/users/action/", data={"action": "deactivate", "rowid": [key]})
    db.session.expire_all()
    stored = db.session.get(User, key)
    after = (stored.person.first_name, stored.person.email, stored.end_date, stored.reseller_role, stored.bank_access)
    assert after == before
    assert stored.status is UserStatus.ACTIVE and stored.archived_at is None


def test_an_administrator_still_manages_staff_access_and_staff_a_customers_users(
    client, bureau, make_staff, make_client, make_user, login
):
    admin = make_staff(bureau, StaffRole.ADMIN)
    colleague = make_staff(bureau, StaffRole.STAFF)
    customer = make_client(name="Tilgang AS")
    access = _bureau_access(client, login, admin, colleague, customer.id)
    client.post(f"/admin/clients/people/{access.person_id}/deactivate/?id={customer.id}")
    db.session.expire_all()
    assert db.session.get(User, access.id).status is UserStatus.BLOCKED
    customer_user = make_user(customer)
    login(colleague)
    client.post(f"/admin/clients/people/{customer_user.person_id}/deactivate/?id={customer.id}")
    db.session.expire_all()
    assert db.session.get(User, customer_user.id).status is UserStatus.BLOCKED
