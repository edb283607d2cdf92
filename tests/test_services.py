"""Services without HTTP: rules, authentication and the change history."""

from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from extensions import db
from models import AuditEntry, PackageAssignment, PackageKind, PersonKind, ResellerRole, StaffRole, User, UserStatus
from services.audit import acting_as
from services.auth import authenticate
from services.clients import find_duplicate_org_number, mark_demo
from services.errors import DomainError
from services.packages import check_assignment
from services.people import check_person, check_person_deletable, check_user
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def english_messages(app):
    """Messages are asserted in English here; the Norwegian ones are checked in test_admin."""
    with force_locale("en"):
        yield


def test_authenticate_staff(bureau, make_staff):
    staff = make_staff(bureau, StaffRole.ADMIN, email="Sjef@Byra.example")
    assert authenticate(db.session, "sjef@byra.example", PASSWORD) == staff
    assert staff.last_login_at is not None
    assert authenticate(db.session, "sjef@byra.example", "wrong") is None
    assert authenticate(db.session, "nobody@byra.example", PASSWORD) is None


def test_blocked_or_non_staff_users_cannot_log_in(bureau, make_staff, make_client, make_user):
    blocked = make_staff(bureau, status=UserStatus.BLOCKED)
    assert authenticate(db.session, blocked.person.email, PASSWORD) is None
    customer = make_user(make_client())
    customer.set_password(PASSWORD)
    db.session.commit()
    assert authenticate(db.session, customer.person.email, PASSWORD) is None


def test_mark_demo_is_one_way_and_refuses_internal(bureau, make_client):
    clients = [make_client(), make_client(is_demo=True)]
    assert mark_demo(db.session, clients) == 1
    assert all(c.is_demo for c in clients)
    from tests.conftest import internal_client

    with pytest.raises(DomainError):
        mark_demo(db.session, [internal_client(bureau)])


def test_find_duplicate_org_number(make_client, bureau):
    existing = make_client(org_number="974760673")
    assert find_duplicate_org_number(db.session, bureau.id, "974760673") == existing
    assert find_duplicate_org_number(db.session, bureau.id, "974760673", exclude_id=existing.id) is None


def test_check_person_rules(make_client, make_person):
    client = make_client()
    make_person(client, PersonKind.USER, email="kari@kunde.example")
    from models import Person

    duplicate = Person(bureau_id=client.bureau_id, client=client, kind=PersonKind.USER, first_name="K", last_name="N")
    duplicate.email = " KARI@kunde.example "
    with pytest.raises(DomainError, match="e-mail"):
        check_person(db.session, duplicate)
    no_mail = Person(
        bureau_id=client.bureau_id, client=client, kind=PersonKind.EXTERNAL_USER, first_name="A", last_name="B"
    )
    with pytest.raises(DomainError, match="e-mail"):
        check_person(db.session, no_mail)
    db.session.rollback()


def test_contact_person_cannot_be_deleted(make_client, make_person):
    client = make_client()
    contact = make_person(client, PersonKind.PERSON)
    client.contact_person = contact
    db.session.commit()
    with pytest.raises(DomainError, match="contact person"):
        check_person_deletable(db.session, contact)


def test_check_user_by_kind(bureau, make_staff, make_client, make_person, make_user):
    client = make_client()
    today = date.today()
    employee = make_staff(bureau)
    outsider = make_user(client, PersonKind.USER)
    external_person = make_person(client, PersonKind.EXTERNAL_USER)
    reseller_person = make_person(client, PersonKind.RESELLER_USER)
    plain_person = make_person(client, PersonKind.USER)
    with db.session.no_autoflush:
        external = User(bureau_id=bureau.id, person=external_person)
        db.session.add(external)
        with pytest.raises(DomainError, match="end date"):
            check_user(db.session, external, today=today)
        external.end_date = today - timedelta(days=1)
        with pytest.raises(DomainError, match="past"):
            check_user(db.session, external, today=today)
        external.end_date = today + timedelta(days=5)
        check_user(db.session, external, today=today)

        reseller = User(bureau_id=bureau.id, person=reseller_person)
        db.session.add(reseller)
        with pytest.raises(DomainError, match="role"):
            check_user(db.session, reseller, today=today)
        reseller.reseller_role = ResellerRole.ACCOUNTANT
        reseller.employee = outsider
        with pytest.raises(DomainError, match="internal client"):
            check_user(db.session, reseller, today=today)
        reseller.employee = employee
        check_user(db.session, reseller, today=today)

        plain = User(bureau_id=bureau.id, person=plain_person, bank_access=True)
        db.session.add(plain)
        with pytest.raises(DomainError, match="Bank"):
            check_user(db.session, plain, today=today)
        plain.bank_access = False
        plain.staff_role = StaffRole.STAFF
        with pytest.raises(DomainError, match="staff"):
            check_user(db.session, plain, today=today)
    db.session.rollback()


def test_check_assignment(make_client, make_user, make_package, make_bureau, assign):
    client = make_client()
    user = make_user(client)
    no_packages = make_user(client, PersonKind.USER_WITHOUT_PACKAGES)
    crm, project = make_package(), make_package(rank=2)
    addon = make_package(kind=PackageKind.ADDON)
    foreign = make_package(bureau=make_bureau())
    assign(user, crm, date(2026, 1, 1))
    cases = [
        (user, project, "main package"),
        (no_packages, addon, "access packages"),
        (user, foreign, "another bureau"),
    ]
    for holder, package, reason in cases:
        with db.session.no_autoflush:
            assignment = PackageAssignment(
                bureau_id=user.bureau_id, user=holder, package=package, valid_from=date(2026, 2, 1)
            )
            db.session.add(assignment)
            with pytest.raises(DomainError, match=reason):
                check_assignment(db.session, assignment)
        db.session.rollback()


def test_audit_records_create_update_delete_with_actor(bureau, make_staff, make_client):
    actor = make_staff(bureau)
    with acting_as(actor):
        client = make_client(name="Før AS")
        client.name = "Etter AS"
        db.session.commit()
        client_id = client.id
        db.session.delete(client)
        db.session.commit()
    entries = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity == "clients", AuditEntry.entity_id == client_id)
        .order_by(AuditEntry.id)
    ).all()
    assert [e.action for e in entries] == ["create", "update", "delete"]
    assert entries[1].changes["name"] == {"from": "Før AS", "to": "Etter AS"}
    assert all(e.actor_id == actor.id and e.bureau_id == bureau.id for e in entries)


def test_audit_hides_passwords(bureau, make_staff):
    staff = make_staff(bureau)
    staff.set_password("another-long-password")
    db.session.commit()
    entry = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity == "users", AuditEntry.action == "update")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry.changes["password_hash"] == {"from": "***", "to": "***"}
