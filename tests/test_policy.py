"""services/policy and the rules with one home: unit tests without HTTP, reading the stored state afterwards."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from extensions import db
from models import PackageAssignment, PackageKind, PersonKind, StaffRole, User, UserStatus, utcnow
from services.access import employee_candidates, employee_clause, is_employee
from services.audit import acting_as
from services.errors import DomainError
from services.links import LinkKind, link_lifetime
from services.orgnumbers import normalise
from services.packages import held_between_clause, is_held_between
from services.people import NewPerson, add_person
from services.policy import (
    PolicyError,
    Verb,
    accepting_invitation,
    active_admin_counts,
    can,
    check,
    refusal,
)
from services.users import change_email, update_person, update_user
from tests.conftest import internal_client

TODAY = date.today()


@pytest.fixture
def people(bureau, make_staff, make_client, make_user):
    """Two administrators, two ordinary staff members and a customer's user, all of one bureau."""
    return {
        "admin": make_staff(bureau, StaffRole.ADMIN),
        "other_admin": make_staff(bureau, StaffRole.ADMIN),
        "staff": make_staff(bureau, StaffRole.STAFF),
        "colleague": make_staff(bureau, StaffRole.STAFF),
        "customer": make_user(make_client()),
    }


# (verb, actor, target, allowed): the permission table of services/policy's docstring, row by row.
TABLE = [
    (Verb.CATALOGUE_EDIT, "staff", None, False),
    (Verb.CATALOGUE_EDIT, "admin", None, True),
    (Verb.BILLING_CLOSE, "staff", None, False),
    (Verb.BILLING_CLOSE, "admin", None, True),
    (Verb.OUTBOX_READ_TEXT, "staff", None, False),
    (Verb.OUTBOX_READ_TEXT, "admin", None, True),
    (Verb.CLIENT_ADD_PEOPLE, "staff", None, True),
    (Verb.USER_SET_STAFF_ROLE, "staff", "colleague", False),
    (Verb.USER_SET_STAFF_ROLE, "staff", "staff", False),
    (Verb.USER_SET_STAFF_ROLE, "admin", "staff", True),
    (Verb.USER_SET_STAFF_ROLE, "admin", "other_admin", True),
    (Verb.USER_SET_STAFF_ROLE, "admin", "admin", False),
    (Verb.USER_EDIT_IDENTITY, "staff", "other_admin", False),
    (Verb.USER_EDIT_IDENTITY, "staff", "colleague", False),
    (Verb.USER_EDIT_IDENTITY, "staff", "staff", True),
    (Verb.USER_EDIT_IDENTITY, "staff", "customer", True),
    (Verb.USER_EDIT_IDENTITY, "admin", "other_admin", True),
    (Verb.USER_CHANGE_STATUS, "staff", "other_admin", False),
    (Verb.USER_CHANGE_STATUS, "staff", "colleague", False),
    (Verb.USER_CHANGE_STATUS, "staff", "staff", False),
    (Verb.USER_CHANGE_STATUS, "staff", "customer", True),
    (Verb.USER_CHANGE_STATUS, "admin", "other_admin", True),
    (Verb.USER_CHANGE_STATUS, "admin", "admin", False),
    (Verb.USER_SET_END_DATE, "staff", "other_admin", False),
    (Verb.USER_SET_END_DATE, "staff", "customer", True),
    (Verb.USER_SET_END_DATE, "admin", "admin", False),
    (Verb.USER_SET_END_DATE, "admin", "staff", True),
    (Verb.USER_CHANGE_ACCESS, "staff", "other_admin", False),
    (Verb.USER_CHANGE_ACCESS, "staff", "staff", False),
    (Verb.USER_CHANGE_ACCESS, "staff", "customer", True),
    (Verb.USER_CHANGE_ACCESS, "admin", "admin", True),
    (Verb.PERSON_ARCHIVE, "staff", "other_admin", False),
    (Verb.PERSON_ARCHIVE, "staff", "customer", True),
    (Verb.PERSON_ARCHIVE, "admin", "admin", False),
    (Verb.PERSON_ARCHIVE, "admin", "staff", True),
    (Verb.PERSON_DELETE, "staff", "customer", False),
    (Verb.PERSON_DELETE, "admin", "customer", True),
    (Verb.PERSON_DELETE, "admin", "admin", False),
]


@pytest.mark.parametrize(("verb", "actor", "target", "allowed"), TABLE)
def test_permission_table(people, verb, actor, target, allowed):
    target_object = people[target] if target else None
    assert can(db.session, people[actor], verb, target_object) is allowed
    if allowed:
        check(db.session, people[actor], verb, target_object)
    else:
        with pytest.raises(PolicyError):
            check(db.session, people[actor], verb, target_object)


def test_the_internal_client_is_never_archived_or_deleted(people, bureau, make_client):
    internal, customer = internal_client(bureau), make_client()
    for verb in (Verb.CLIENT_ARCHIVE, Verb.CLIENT_DELETE):
        assert not can(db.session, people["admin"], verb, internal)
        assert not can(db.session, None, verb, internal)
        assert can(db.session, people["admin"], verb, customer)
    assert can(db.session, people["staff"], Verb.CLIENT_ARCHIVE, customer)
    assert not can(db.session, people["staff"], Verb.CLIENT_DELETE, customer)


def test_a_persons_user_stands_for_the_person(people):
    person = people["other_admin"].person
    assert not can(db.session, people["staff"], Verb.USER_EDIT_IDENTITY, person)
    assert can(db.session, people["admin"], Verb.USER_EDIT_IDENTITY, person)


def test_the_system_may_do_what_any_rule_allows(people):
    assert can(db.session, None, Verb.USER_SET_STAFF_ROLE, people["admin"])
    assert can(db.session, None, Verb.CATALOGUE_EDIT)


def test_a_user_without_staff_role_may_do_nothing(people):
    assert refusal(db.session, people["customer"], Verb.USER_CHANGE_STATUS, people["colleague"]) is not None


def test_another_bureaus_target_is_refused(people, make_bureau, make_staff):
    stranger = make_staff(make_bureau())
    assert not can(db.session, people["admin"], Verb.USER_CHANGE_STATUS, stranger)


def test_decisions_read_the_stored_role_not_the_edited_object(people):
    """The old bug: the form set ``staff_role=admin`` on the very object the check then read."""
    staff = people["staff"]
    staff.staff_role = StaffRole.ADMIN  # pending, as a form's populate leaves it
    assert not can(db.session, staff, Verb.USER_SET_STAFF_ROLE, people["colleague"])
    assert not can(db.session, staff, Verb.USER_CHANGE_STATUS, people["other_admin"])
    db.session.rollback()
    assert db.session.get(User, staff.id).staff_role is StaffRole.STAFF


def test_invite_asks_the_state_too(people, make_client, make_user):
    invited = make_user(make_client(), status=UserStatus.INVITED)
    assert can(db.session, people["staff"], Verb.USER_INVITE, invited)
    reason = refusal(db.session, people["admin"], Verb.USER_INVITE, people["customer"])
    assert reason is not None and "aktiv" in reason.lower()


# --- the bureau always keeps an active administrator --------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        lambda user: setattr(user, "staff_role", StaffRole.STAFF),
        lambda user: setattr(user, "staff_role", None),
        lambda user: setattr(user, "status", UserStatus.BLOCKED),
        lambda user: setattr(user, "end_date", TODAY - timedelta(days=1)),
        lambda user: db.session.delete(user),
        lambda user: db.session.delete(user.person),
    ],
    ids=["demoted", "role removed", "blocked", "end date passed", "user deleted", "person deleted"],
)
def test_the_last_active_administrator_stays(bureau, make_staff, change):
    only = make_staff(bureau, StaffRole.ADMIN)
    make_staff(bureau, StaffRole.STAFF)
    change(only)
    with pytest.raises(PolicyError, match="aktiv administrator"):
        db.session.flush()
    db.session.rollback()
    assert active_admin_counts(db.session, {bureau.id}) == {bureau.id: 1}
    stored = db.session.get(User, only.id)
    assert stored.staff_role is StaffRole.ADMIN and stored.status is UserStatus.ACTIVE and stored.end_date is None


def test_an_administrator_can_go_when_another_stays(bureau, make_staff):
    leaving, staying = make_staff(bureau, StaffRole.ADMIN), make_staff(bureau, StaffRole.ADMIN)
    leaving.status = UserStatus.BLOCKED
    db.session.commit()
    assert active_admin_counts(db.session, {bureau.id}) == {bureau.id: 1}
    staying.staff_role = StaffRole.STAFF
    with pytest.raises(PolicyError):
        db.session.commit()
    db.session.rollback()


def test_an_invited_or_expired_administrator_does_not_count(bureau, make_staff):
    active = make_staff(bureau, StaffRole.ADMIN)
    make_staff(bureau, StaffRole.ADMIN, status=UserStatus.INVITED)
    make_staff(bureau, StaffRole.ADMIN, end_date=TODAY - timedelta(days=1))
    assert active_admin_counts(db.session, {bureau.id}) == {bureau.id: 1}
    active.status = UserStatus.BLOCKED
    with pytest.raises(PolicyError):
        db.session.flush()
    db.session.rollback()


# --- a user becomes active only by accepting an invitation ----------------------------------------


def test_a_staff_member_cannot_create_an_active_user(people, make_person, make_client):
    person = make_person(make_client())
    with acting_as(people["admin"]):
        db.session.add(User(bureau_id=person.bureau_id, person=person, status=UserStatus.ACTIVE))
        with pytest.raises(PolicyError, match="godta invitasjonen"):
            db.session.flush()
    db.session.rollback()
    assert db.session.scalar(select(User).where(User.person_id == person.id)) is None


def test_invited_to_active_only_through_the_invitation(people, make_client, make_user):
    invited = make_user(make_client(), status=UserStatus.INVITED)
    with acting_as(people["admin"]):
        invited.status = UserStatus.ACTIVE
        with pytest.raises(PolicyError):
            db.session.flush()
        db.session.rollback()
        with accepting_invitation():
            invited.status = UserStatus.ACTIVE
            db.session.flush()
    db.session.commit()
    assert db.session.get(User, invited.id).status is UserStatus.ACTIVE


def test_blocked_to_active_only_after_a_login(people, make_client, make_user):
    never = make_user(make_client(), status=UserStatus.BLOCKED)
    had_login = make_user(make_client(), status=UserStatus.BLOCKED, accepted_at=utcnow())
    with acting_as(people["admin"]):
        had_login.status = UserStatus.ACTIVE
        db.session.flush()
        never.status = UserStatus.ACTIVE
        with pytest.raises(PolicyError):
            db.session.flush()
    db.session.rollback()


def test_nobody_sets_another_users_password(people):
    with acting_as(people["admin"]):
        people["staff"].set_password("another-secret-password")
        with pytest.raises(PolicyError, match="passordet"):
            db.session.flush()
        db.session.rollback()
        people["admin"].set_password("my-own-new-password")
        db.session.flush()
    db.session.rollback()


def test_a_bureau_user_is_created_active_as_the_employees_own_access(people, make_client):
    customer = make_client()
    with acting_as(people["staff"]):
        data = NewPerson(kind=PersonKind.RESELLER_USER, employee_id=people["colleague"].id, reseller_role="auditor")
        person = add_person(db.session, customer, data, today=TODAY)
    db.session.commit()
    assert db.session.get(User, person.user.id).status is UserStatus.ACTIVE


# --- e-mail changes and the generic forms' service -------------------------------------------------


def test_changing_the_email_of_a_user_with_a_login_needs_a_new_invitation(people):
    colleague = people["colleague"]
    colleague.accepted_at = utcnow()
    db.session.commit()
    assert change_email(db.session, colleague.person, "ny@byra.example", actor=people["admin"])
    db.session.commit()
    stored = db.session.get(User, colleague.id)
    assert stored.person.email == "ny@byra.example"
    assert stored.status is UserStatus.INVITED
    assert stored.password_hash is None and stored.accepted_at is None and stored.invitation_nonce is None


def test_an_unchanged_email_leaves_the_login(people):
    staff = people["staff"]
    assert not change_email(db.session, staff.person, f"  {staff.person.email.upper()} ", actor=people["staff"])
    db.session.commit()
    assert db.session.get(User, staff.id).status is UserStatus.ACTIVE


def test_staff_cannot_change_an_administrators_email(people):
    admin = people["other_admin"]
    before = admin.person.email
    with pytest.raises(PolicyError):
        update_person(db.session, admin.person, {"email": "mine@evil.example"}, actor=people["staff"])
    db.session.rollback()
    assert db.session.get(User, admin.id).person.email == before


def test_update_user_compares_with_the_stored_row(people):
    staff = people["staff"]
    staff.staff_role = StaffRole.ADMIN  # what populate would have done before: the form's old value is gone
    with pytest.raises(PolicyError):
        update_user(db.session, staff, {"staff_role": "admin"}, actor=staff)
    db.session.rollback()
    assert db.session.get(User, staff.id).staff_role is StaffRole.STAFF


def test_update_user_refuses_fields_the_form_does_not_offer(people):
    with pytest.raises(DomainError):
        update_user(db.session, people["customer"], {"status": "active"}, actor=people["admin"])
    with pytest.raises(DomainError):
        update_user(db.session, people["customer"], {"password_hash": "x"}, actor=people["admin"])


# --- one home per rule ----------------------------------------------------------------------------


def test_who_counts_as_an_employee(bureau, people, make_staff, make_person, make_user, make_client):
    plain = make_user(internal_client(bureau), status=UserStatus.INVITED)
    expired = make_staff(bureau, end_date=TODAY - timedelta(days=1))
    sql = set(db.session.scalars(select(User.id).where(employee_clause(bureau.id))))
    users = db.session.scalars(select(User).where(User.bureau_id == bureau.id)).all()
    assert sql == {user.id for user in users if is_employee(user, bureau.id)}
    assert people["customer"].id not in sql and plain.id in sql and expired.id in sql
    candidates = {user.id for user in employee_candidates(db.session, bureau.id, TODAY)}
    assert plain.id not in candidates and expired.id not in candidates and people["staff"].id in candidates
    with pytest.raises(DomainError):
        data = NewPerson(kind=PersonKind.RESELLER_USER, employee_id=plain.id, reseller_role="auditor")
        add_person(db.session, make_client(), data, today=TODAY)
    db.session.rollback()


def test_holds_a_package_sql_and_python_agree(make_client, make_user, make_package, assign):
    user = make_user(make_client())
    spans = [(-10, -5), (-5, None), (0, 0), (1, 3)]
    for start, end in spans:
        assign(
            user,
            make_package(kind=PackageKind.ADDON),
            TODAY + timedelta(days=start),
            None if end is None else TODAY + timedelta(days=end),
        )
    assignments = db.session.scalars(select(PackageAssignment).where(PackageAssignment.user_id == user.id)).all()
    for first, last in [(-7, -7), (-4, -4), (0, 0), (2, 9), (-20, -11), (4, 4)]:
        day, until = TODAY + timedelta(days=first), TODAY + timedelta(days=last)
        sql = set(
            db.session.scalars(
                select(PackageAssignment.id).where(
                    PackageAssignment.user_id == user.id, held_between_clause(day, until)
                )
            )
        )
        assert sql == {a.id for a in assignments if is_held_between(a, day, until)}, (first, last)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("974 760 673", "974760673"), ("974.760.673", "974760673"), ("974-760-673", "974760673"), ("  ", None)],
)
def test_org_numbers_are_written_one_way(raw, expected):
    assert normalise(raw) == expected
    assert normalise(None) is None


def test_link_lifetimes_come_from_the_config(app):
    app.config["INVITATION_DAYS"] = 3
    app.config["CONSENT_LINK_DAYS"] = 9
    assert link_lifetime(LinkKind.INVITATION) == timedelta(days=3)
    assert link_lifetime(LinkKind.CONSENT) == timedelta(days=9)
