"""Invitations, invitation state, expiring external users and the bulk actions on the user and client grids."""

from __future__ import annotations

import json
import re
import threading
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from admin_views.people import EffectiveStatusFilter, ExpiresWithinFilter, UserView
from extensions import db
from models import (
    AuditEntry,
    InvitationState,
    OutboxMessage,
    OutboxStatus,
    PackageAssignment,
    PackageKind,
    Person,
    PersonKind,
    ResellerRole,
    StaffRole,
    User,
    UserStatus,
    utcnow,
)
from services.access import grant_employee_access
from services.errors import DomainError
from services.invitations import (
    InvitationLinkState,
    accept_invitation,
    block_expired,
    deactivate,
    invitation_url,
    invite_person,
    invite_user,
    reactivate,
    resolve_invitation,
)
from services.links import LinkKind, link_lifetime
from services.outbox import run_worker
from tests.conftest import PASSWORD, internal_client

NEW_PASSWORD = "et-langt-passord-2026"
TODAY = date.today()


def page(response) -> str:
    return response.get_data(as_text=True)


def flashes(response) -> str:
    """The text of the flashed messages only (the grid itself shows every name too)."""
    return " ".join(re.findall(r'<div class="alert alert-[^"]*">(.*?)</div>', page(response), re.S))


def link_path(text: str) -> str:
    return re.search(r"http://testserver(/invitasjon/\S+)", text).group(1)


def latest_link(user: User) -> str:
    message = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.related == f"user:{user.id}").order_by(OutboxMessage.id.desc())
    ).first()
    return link_path(message.body_text)


def state_of(response) -> str:
    return re.search(r'id="invitation" data-state="(\w+)"', page(response)).group(1)


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def accept_data(**overrides) -> dict:
    return {
        "first_name": "Kari",
        "last_name": "Nordmann",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    } | overrides


def filter_arg(kind: type) -> str:
    [index] = [i for i, f in enumerate(UserView.column_filters) if isinstance(f, kind)]
    return f"flt0_{index}"


@pytest.fixture
def invited(make_client, make_user):
    """An invited user with packages on a Norwegian client, and its first invitation (committed)."""
    customer = make_client(name="Fjellet AS", language="nb")
    user = make_user(customer, status=UserStatus.INVITED)
    invite_user(db.session, user)
    db.session.commit()
    return user


# --- the e-mail, the link, the page -----------------------------------------------------------


def test_invitation_mail_arrives_and_its_link_activates_the_user_once(
    login_as, client, runner, smtp, make_client, make_user
):
    login_as("staff")
    customer = make_client(name="Fjellet AS")
    user = make_user(customer, status=UserStatus.INVITED)
    email, first_name = user.person.email, user.person.first_name
    response = client.post("/admin/users/action/", data={"action": "invite", "rowid": [user.id]})
    assert response.status_code == 302
    client.post("/logout")

    result = runner.invoke(args=["outbox", "send"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sent"] == 1
    [mail] = smtp.received
    assert mail["To"] == email
    assert "Fjellet AS" in mail["Subject"]
    path = link_path(mail.get_content())

    landing = client.get(path)
    assert landing.status_code == 200 and state_of(landing) == "valid"
    assert f'value="{first_name}"' in page(landing) and email in page(landing)
    done = client.post(path, data=accept_data())
    assert done.status_code == 200 and state_of(done) == "accepted"

    db.session.expire_all()
    assert user.status is UserStatus.ACTIVE and user.is_active
    assert user.accepted_at is not None and user.invitation_nonce is None
    assert (user.person.first_name, user.person.last_name) == ("Kari", "Nordmann")
    assert user.check_password(NEW_PASSWORD)
    version = user.version

    again = client.post(path, data=accept_data(first_name="Mallory", password="x" * 12, confirm="x" * 12))
    assert again.status_code == 410 and state_of(again) == "used"
    assert client.get(path).status_code == 410
    db.session.expire_all()
    assert user.person.first_name == "Kari" and user.check_password(NEW_PASSWORD) and user.version == version


def test_accept_page_checks_the_form_and_changes_nothing_on_bad_input(client, invited):
    path = latest_link(invited)
    for data in (
        accept_data(password="kort", confirm="kort"),
        accept_data(confirm="et-annet-passord-2026"),
        accept_data(first_name=""),
        accept_data(last_name="x" * 101),
    ):
        response = client.post(path, data=data)
        assert response.status_code == 200 and state_of(response) == "valid"
        assert "is-invalid" in page(response)
    db.session.expire_all()
    assert invited.status is UserStatus.INVITED and invited.password_hash is None


def test_accept_page_needs_the_csrf_token(app, invited):
    app.config["WTF_CSRF_ENABLED"] = True
    browser = app.test_client()
    path = latest_link(invited)
    assert browser.post(path, data=accept_data()).status_code == 400  # CSRFProtect refuses it outright
    db.session.expire_all()
    assert invited.status is UserStatus.INVITED
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page(browser.get(path))).group(1)
    assert state_of(browser.post(path, data=accept_data(csrf_token=token))) == "accepted"


def test_tampered_or_foreign_links_are_not_found(client, invited):
    path = latest_link(invited)
    for bad in (path[:-3] + "xyz", "/invitasjon/nonsense", path.replace("/invitasjon/", "/invitasjon/A")):
        response = client.post(bad, data=accept_data())
        assert response.status_code == 404 and state_of(response) == "invalid"
    db.session.expire_all()
    assert invited.status is UserStatus.INVITED


def test_expired_link_shows_a_clear_page_and_changes_nothing(app, client, invited):
    path = latest_link(invited)
    app.config["INVITATION_DAYS"] = -1
    assert client.get(path).status_code == 410
    response = client.post(path, data=accept_data())
    assert response.status_code == 410 and state_of(response) == "expired"
    db.session.expire_all()
    assert invited.status is UserStatus.INVITED and invited.password_hash is None
    assert invited.invitation_state(utcnow(), link_lifetime(LinkKind.INVITATION)) is InvitationState.EXPIRED


def test_resending_makes_the_old_link_stop_working(client, invited):
    old = latest_link(invited)
    invite_user(db.session, invited)
    db.session.commit()
    new = latest_link(invited)
    assert new != old
    assert state_of(client.get(old)) == "used"
    assert client.post(old, data=accept_data()).status_code == 410
    assert client.post(new, data=accept_data()).status_code == 200
    db.session.expire_all()
    assert invited.status is UserStatus.ACTIVE


def test_invitation_link_is_built_from_public_base_url(app, invited):
    app.config["PUBLIC_BASE_URL"] = "https://klient.example/app"
    assert invitation_url(invited).startswith("https://klient.example/app/invitasjon/")


# --- external users past their end date ---------------------------------------------------------


def test_external_user_past_end_date_cannot_accept_nor_count_as_active(client, make_client, make_user):
    customer = make_client()
    temp = make_user(customer, PersonKind.EXTERNAL_USER, status=UserStatus.INVITED)
    invite_user(db.session, temp)
    db.session.commit()
    path = latest_link(temp)
    temp.end_date = TODAY - timedelta(days=1)
    db.session.commit()

    response = client.post(path, data=accept_data())
    assert response.status_code == 410 and state_of(response) == "user_expired"
    db.session.expire_all()
    assert temp.status is UserStatus.INVITED and temp.password_hash is None
    assert temp.invitation_state(utcnow(), link_lifetime(LinkKind.INVITATION)) is InvitationState.EXPIRED
    with pytest.raises(DomainError):
        invite_user(db.session, temp)
    db.session.rollback()

    active = make_user(customer, PersonKind.EXTERNAL_USER, end_date=TODAY + timedelta(days=3))
    assert active.is_active
    active.end_date = TODAY - timedelta(days=1)
    db.session.commit()
    assert active.status is UserStatus.ACTIVE  # the row, until block-expired runs
    assert not active.is_active and not active.is_effectively_active(TODAY)
    assert active.effective_status(TODAY) is UserStatus.BLOCKED
    assert active.is_effectively_active(TODAY - timedelta(days=1))


def test_expired_staff_cannot_log_in_before_any_job_ran(client, bureau, make_staff):
    staff = make_staff(bureau, end_date=TODAY - timedelta(days=1))
    assert staff.status is UserStatus.ACTIVE and not staff.is_active
    response = client.post("/login", data={"email": staff.person.email, "password": PASSWORD})
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_expired_staff_already_logged_in_is_shut_out(client, bureau, make_staff, login):
    make_staff(bureau, StaffRole.ADMIN)  # the bureau keeps an active administrator
    staff = make_staff(bureau, StaffRole.ADMIN, end_date=TODAY)
    login(staff)
    assert client.get("/admin/users/").status_code == 200
    staff.end_date = TODAY - timedelta(days=1)
    db.session.commit()
    response = client.get("/admin/users/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_block_expired_command_blocks_for_the_record_once(runner, make_client, make_user):
    customer = make_client()
    yesterday = TODAY - timedelta(days=1)
    gone = make_user(customer, PersonKind.EXTERNAL_USER, end_date=TODAY + timedelta(days=1))
    pending = make_user(customer, PersonKind.EXTERNAL_USER, status=UserStatus.INVITED)
    staying = make_user(customer, PersonKind.EXTERNAL_USER, end_date=TODAY)
    ordinary = make_user(customer)
    invite_user(db.session, pending)
    gone.end_date = pending.end_date = yesterday
    db.session.commit()

    result = runner.invoke(args=["users", "block-expired"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"blocked": 2}
    db.session.expire_all()
    assert gone.status is pending.status is UserStatus.BLOCKED
    assert gone.blocked_at is not None and pending.invitation_nonce is None
    assert staying.status is ordinary.status is UserStatus.ACTIVE
    labels = set(db.session.scalars(select(AuditEntry.actor_label).where(AuditEntry.entity == "users")))
    assert "users block-expired" in labels

    again = runner.invoke(args=["users", "block-expired"])
    assert again.exit_code == 0 and json.loads(again.output) == {"blocked": 0}
    assert block_expired(db.session, TODAY) == 0


def test_worker_runs_the_daily_housekeeping_at_start_then_once_a_day(app):
    calls: list[int] = []
    assert run_worker(app, interval=0.01, max_passes=3, daily=lambda: calls.append(1)) == 3
    assert len(calls) == 1
    calls.clear()
    run_worker(app, interval=0.01, max_passes=3, daily=lambda: calls.append(1), daily_every=0)
    assert len(calls) == 3

    def broken():
        calls.append(1)
        raise RuntimeError("database away")

    calls.clear()
    assert run_worker(app, interval=0.01, max_passes=2, daily=broken, daily_every=0) == 2
    assert len(calls) == 2


def test_worker_command_blocks_expired_users(runner, make_client, make_user):
    user = make_user(make_client(), PersonKind.EXTERNAL_USER)
    user.end_date = TODAY - timedelta(days=2)
    db.session.commit()
    result = runner.invoke(args=["outbox", "worker", "--interval", "0.1", "--max-passes", "1"])
    assert result.exit_code == 0, result.output
    assert {"blocked": 1} in [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    db.session.expire_all()
    assert user.status is UserStatus.BLOCKED


def test_reactivate_refuses_expired_users_and_restores_the_others(make_client, make_user):
    customer = make_client()
    expired = make_user(customer, PersonKind.EXTERNAL_USER)
    accepted, never = make_user(customer), make_user(customer, status=UserStatus.INVITED)
    accepted.set_password(NEW_PASSWORD)
    assert deactivate(db.session, [expired, accepted, never]) == 3
    expired.end_date = TODAY - timedelta(days=1)
    db.session.commit()
    with pytest.raises(DomainError, match=re.escape(expired.person.full_name)):
        reactivate(db.session, [expired, accepted])
    db.session.rollback()
    assert accepted.status is UserStatus.BLOCKED
    assert reactivate(db.session, [accepted, never]) == 2
    assert accepted.status is UserStatus.ACTIVE and accepted.blocked_at is None
    assert never.status is UserStatus.INVITED  # no password yet: back to waiting for the invitation
    assert reactivate(db.session, [accepted]) == 0


# --- bad input ----------------------------------------------------------------------------------


def test_invite_refusals_give_the_reason_and_save_nothing(bureau, make_client, make_person, make_user, make_staff):
    customer = make_client()
    employee = make_staff(bureau)
    no_email = make_user(
        customer,
        PersonKind.RESELLER_USER,
        person=make_person(customer, PersonKind.RESELLER_USER, email=None),
        reseller_role=ResellerRole.ACCOUNTANT,
        employee=employee,
        status=UserStatus.INVITED,
    )
    blocked = make_user(customer, status=UserStatus.BLOCKED)
    active = make_user(customer)
    plain = make_person(customer, PersonKind.PERSON, first_name="Bare", last_name="Person")
    cases = [
        (lambda: invite_user(db.session, no_email), "e-post"),
        (lambda: invite_user(db.session, blocked), "aktiver brukeren igjen"),
        (lambda: invite_user(db.session, active), "allerede aktiv"),
        (lambda: invite_person(db.session, plain), "Bare Person"),
    ]
    with db.session.no_autoflush:
        for call, reason in cases:
            with pytest.raises(DomainError, match=reason):
                call()
    db.session.rollback()
    assert count(OutboxMessage) == 0
    assert count(User, User.invitation_nonce.is_not(None)) == 0
    assert count(User, User.invitation_sent_at.is_not(None)) == 0


def test_bulk_invite_sends_to_the_invitable_and_names_the_refused(login_as, client, make_client, make_user):
    login_as("staff")
    customer = make_client()
    first, second = make_user(customer, status=UserStatus.INVITED), make_user(customer, status=UserStatus.INVITED)
    active, blocked = make_user(customer), make_user(customer, status=UserStatus.BLOCKED)
    response = client.post(
        "/admin/users/action/",
        data={"action": "invite", "rowid": [first.id, second.id, active.id, blocked.id]},
        follow_redirects=True,
    )
    text = flashes(response)
    assert active.person.full_name in text and blocked.person.full_name in text
    assert first.person.full_name not in text
    db.session.expire_all()
    assert sorted(db.session.scalars(select(OutboxMessage.recipient))) == sorted(
        [first.person.email, second.person.email]
    )
    assert first.invitation_nonce and second.invitation_nonce
    assert active.invitation_nonce is None and blocked.invitation_nonce is None
    assert first.invitation_message.kind == "invitation"


def test_person_grid_invites_and_refuses_a_person_without_user(login_as, client, make_client, make_person, make_user):
    login_as("staff")
    customer = make_client()
    plain = make_person(customer, PersonKind.PERSON, first_name="Uten", last_name="Bruker")
    user = make_user(customer, status=UserStatus.INVITED)
    response = client.post(
        "/admin/persons/action/",
        data={"action": "invite", "rowid": [plain.id, user.person.id]},
        follow_redirects=True,
    )
    assert "Uten Bruker" in flashes(response)
    assert count(OutboxMessage) == 1
    db.session.expire_all()
    assert user.invitation_nonce is not None


def test_actions_never_touch_another_bureaus_users(login_as, client, make_bureau, make_client, make_user):
    login_as("admin")
    foreign = make_user(make_client(bureau=make_bureau()), status=UserStatus.INVITED)
    for name in ("invite", "deactivate"):
        client.post("/admin/users/action/", data={"action": name, "rowid": [foreign.id]})
    db.session.expire_all()
    assert foreign.status is UserStatus.INVITED and count(OutboxMessage) == 0
    response = client.get(f"/admin/users/grant-package/?id={foreign.id}")
    assert response.status_code == 302


# --- deactivate ---------------------------------------------------------------------------------


def test_deactivate_selected_users(login_as, client, make_client, make_user, invited):
    me = login_as("staff")
    other = make_user(make_client())
    path = latest_link(invited)
    response = client.post("/admin/users/action/", data={"action": "deactivate", "rowid": [invited.id, other.id]})
    assert response.status_code == 302
    db.session.expire_all()
    assert invited.status is other.status is UserStatus.BLOCKED
    assert invited.blocked_at is not None and other.blocked_at is not None
    assert state_of(client.get(path)) == "used"  # the open invitation is withdrawn

    client.post("/admin/users/action/", data={"action": "deactivate", "rowid": [me.id]})
    db.session.expire_all()
    assert me.status is UserStatus.ACTIVE


def test_only_an_administrator_deactivates_staff(login_as, client, bureau, make_staff):
    colleague = make_staff(bureau)
    login_as("staff")
    client.post("/admin/users/action/", data={"action": "deactivate", "rowid": [colleague.id]})
    db.session.expire_all()
    assert colleague.status is UserStatus.ACTIVE
    client.post("/logout")
    login_as("admin")
    client.post("/admin/users/action/", data={"action": "deactivate", "rowid": [colleague.id]})
    db.session.expire_all()
    assert colleague.status is UserStatus.BLOCKED
    client.post("/admin/users/action/", data={"action": "reactivate", "rowid": [colleague.id]})
    db.session.expire_all()
    assert colleague.status is UserStatus.ACTIVE


# --- grant a package ----------------------------------------------------------------------------


def test_grant_package_to_selected_users(login_as, client, make_client, make_user, make_package, make_bureau, assign):
    login_as("staff")
    customer = make_client()
    main = make_package(code="CRM", name="CRM", rank=1)
    other_main = make_package(code="PROSJEKT", name="Prosjekt", rank=2)
    make_package(code="GAMMEL", name="Utgått", active=False)
    foreign = make_package(bureau=make_bureau(), code="FREMMED", name="Fremmed")
    fresh = make_user(customer)
    external = make_user(customer, PersonKind.EXTERNAL_USER, end_date=TODAY + timedelta(days=60))
    no_packages = make_user(customer, PersonKind.USER_WITHOUT_PACKAGES)
    has_main = make_user(customer)
    assign(has_main, other_main)
    selected = [fresh, external, no_packages, has_main]

    response = client.post("/admin/users/action/", data={"action": "grant_package", "rowid": [u.id for u in selected]})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert urlsplit(location).path == "/admin/users/grant-package/"
    assert sorted(map(int, parse_qs(urlsplit(location).query)["id"])) == sorted(u.id for u in selected)

    form = page(client.get(location))
    assert all(u.person.full_name in form for u in selected)
    assert "CRM (CRM)" in form and "Prosjekt (PROSJEKT)" in form
    assert "GAMMEL" not in form and "FREMMED" not in form

    refused = client.post(location, data={"package": str(foreign.id), "valid_from": TODAY.isoformat()})
    assert refused.status_code == 200 and 'id="grant-report"' not in page(refused)
    assert count(PackageAssignment, PackageAssignment.package_id == foreign.id) == 0

    response = client.post(location, data={"package": str(main.id), "valid_from": TODAY.isoformat()})
    assert response.status_code == 200
    report = dict(re.findall(r'data-user="(\d+)" data-granted="(\w+)"', page(response)))
    assert report == {str(fresh.id): "yes", str(external.id): "yes", str(no_packages.id): "no", str(has_main.id): "no"}
    holders = set(db.session.scalars(select(PackageAssignment.user_id).where(PackageAssignment.package_id == main.id)))
    assert holders == {fresh.id, external.id}

    again = client.post(location, data={"package": str(main.id), "valid_from": TODAY.isoformat()})
    assert set(re.findall(r'data-granted="(\w+)"', page(again))) == {"no"}
    assert count(PackageAssignment, PackageAssignment.package_id == main.id) == 2


def test_grant_package_refuses_a_start_after_the_end_date_and_a_missing_choice(
    login_as, client, make_client, make_user, make_package
):
    login_as("staff")
    addon = make_package(code="FAKTURA", name="Fakturering", kind=PackageKind.ADDON)
    external = make_user(make_client(), PersonKind.EXTERNAL_USER, end_date=TODAY + timedelta(days=5))
    url = f"/admin/users/grant-package/?id={external.id}"
    late = client.post(url, data={"package": str(addon.id), "valid_from": (TODAY + timedelta(days=6)).isoformat()})
    assert 'data-granted="no"' in page(late)
    missing = client.post(url, data={"package": "", "valid_from": ""})
    assert missing.status_code == 200 and "is-invalid" in page(missing)
    assert count(PackageAssignment) == 0


# --- grant an employee access to many clients --------------------------------------------------


def test_grant_employee_access_to_selected_clients(login_as, client, bureau, make_client, make_staff):
    login_as("staff")
    employee = make_staff(bureau, first_name="Rita", email="rita@byra.example")
    first, second, already = make_client(), make_client(), make_client()
    grant_employee_access(db.session, bureau.id, employee, [already], ResellerRole.AUDITOR)
    db.session.commit()
    rowids = [first.id, second.id, already.id]

    form = client.post("/admin/clients/action/", data={"action": "grant_access", "rowid": rowids})
    assert form.status_code == 200
    text = page(form)
    assert all(c.name in text for c in (first, second, already)) and "rita@byra.example" in text

    response = client.post(
        "/admin/clients/action/",
        data={
            "action": "grant_access",
            "rowid": rowids,
            "employee": str(employee.id),
            "role": "accountant",
            "grant": "1",
        },
    )
    assert response.status_code == 302
    users = db.session.scalars(select(User).where(User.employee_id == employee.id)).all()
    by_client = {u.person.client_id: u for u in users}
    assert set(by_client) == {first.id, second.id, already.id} and len(users) == 3
    for customer in (first, second):
        user = by_client[customer.id]
        assert user.person.kind is PersonKind.RESELLER_USER
        assert (user.person.first_name, user.person.last_name, user.person.email) == (
            "Rita",
            "Testesen",
            "rita@byra.example",
        )
        assert user.reseller_role is ResellerRole.ACCOUNTANT and user.status is UserStatus.ACTIVE
    assert by_client[already.id].reseller_role is ResellerRole.AUDITOR


def test_grant_employee_access_refusals(login_as, client, bureau, make_bureau, make_client, make_staff, make_person):
    login_as("staff")
    stranger = make_staff(make_bureau())
    customer, taken = make_client(), make_client()
    employee = make_staff(bureau, email="ansatt@byra.example")
    make_person(taken, email="ansatt@byra.example")
    data = {"action": "grant_access", "rowid": [customer.id], "role": "auditor", "grant": "1"}
    response = client.post("/admin/clients/action/", data={**data, "employee": str(stranger.id)})
    assert response.status_code == 200
    assert count(Person, Person.kind == PersonKind.RESELLER_USER) == 0

    report = grant_employee_access(
        db.session, bureau.id, employee, [customer, taken, internal_client(bureau)], ResellerRole.AUDITOR
    )
    assert report.created == [customer] and [c for c, _ in report.refused] == [taken, internal_client(bureau)]
    db.session.rollback()
    employee.status = UserStatus.BLOCKED
    with pytest.raises(DomainError):
        grant_employee_access(db.session, bureau.id, employee, [customer], ResellerRole.AUDITOR)


# --- the user grid: invitation column and filters -----------------------------------------------


def test_invitation_state_column(login_as, client, runner, smtp, make_client, make_user, app):
    login_as("staff")
    customer = make_client()
    never = make_user(customer, status=UserStatus.INVITED)
    delivered, queued, accepted, expired = (make_user(customer, status=UserStatus.INVITED) for _ in range(4))
    for user in (delivered, expired):
        invite_user(db.session, user)
    db.session.commit()
    assert runner.invoke(args=["outbox", "send"]).exit_code == 0
    for user in (queued, accepted):
        invite_user(db.session, user)
    db.session.commit()
    accept_invitation(
        db.session, latest_link(accepted).rsplit("/", 1)[1], first_name="A", last_name="B", password=NEW_PASSWORD
    )
    expired.invitation_sent_at = utcnow() - timedelta(days=15)
    db.session.commit()

    now = utcnow()
    db.session.expire_all()
    expected = {
        never: InvitationState.NOT_SENT,
        queued: InvitationState.SENT,
        delivered: InvitationState.DELIVERED,
        accepted: InvitationState.ACCEPTED,
        expired: InvitationState.EXPIRED,
    }
    assert {user: user.invitation_state(now, link_lifetime(LinkKind.INVITATION)) for user in expected} == expected
    assert delivered.invitation_message.status is OutboxStatus.SENT

    text = page(client.get("/admin/users/?page_size=100"))
    rows = {email: state for email, state in re.findall(r'([\w.]+@kunde\.example).*?data-state="(\w+)"', text, re.S)}
    assert {rows[user.person.email] for user in expected} == {state.value for state in expected.values()}
    for user, state in expected.items():
        assert rows[user.person.email] == state.value, user


def test_expires_within_filter(login_as, client, make_client, make_user):
    login_as("staff")
    customer = make_client()
    users = {
        days: make_user(customer, PersonKind.EXTERNAL_USER, end_date=TODAY + timedelta(days=days))
        for days in (0, 5, 20, 40)
    }
    past = make_user(customer, PersonKind.EXTERNAL_USER)
    past.end_date = TODAY - timedelta(days=1)
    open_ended = make_user(customer)
    db.session.commit()

    def shown(value: str) -> set[str]:
        text = page(client.get(f"/admin/users/?{filter_arg(ExpiresWithinFilter)}={value}"))
        everyone = [*users.values(), past, open_ended]
        return {u.person.email for u in everyone if u.person.email in text}

    assert shown("30") == {users[d].person.email for d in (0, 5, 20)}
    assert shown("7") == {users[d].person.email for d in (0, 5)}
    assert len(shown("junk")) == 6  # a bad value is ignored, not an error


def test_status_filter_and_column_count_expired_users_as_blocked(login_as, client, make_client, make_user):
    login_as("staff")
    customer = make_client()
    expired = make_user(customer, PersonKind.EXTERNAL_USER)
    expired.end_date = TODAY - timedelta(days=1)
    active = make_user(customer)
    db.session.commit()
    arg = filter_arg(EffectiveStatusFilter)
    active_page = page(client.get(f"/admin/users/?{arg}=active"))
    assert active.person.email in active_page and expired.person.email not in active_page
    blocked_page = page(client.get(f"/admin/users/?{arg}=blocked"))
    assert expired.person.email in blocked_page and active.person.email not in blocked_page


def test_user_grid_with_invitations_has_no_n_plus_one(login_as, client, make_client, make_user, count_queries):
    from flask import g

    login_as("staff")
    customer = make_client()

    def add(n: int) -> None:
        for _ in range(n):
            user = make_user(customer, status=UserStatus.INVITED)
            invite_user(db.session, user)
        db.session.commit()

    def queries() -> int:
        db.session.expire_all()
        g.pop("_login_user", None)
        with count_queries() as counter:
            assert client.get("/admin/users/").status_code == 200
        return counter.count

    add(2)
    few = queries()
    add(10)
    assert queries() == few


def test_resolve_invitation_states(app, invited):
    token = latest_link(invited).rsplit("/", 1)[1]
    assert resolve_invitation(db.session, token).state is InvitationLinkState.VALID
    assert resolve_invitation(db.session, token + "x").state is InvitationLinkState.INVALID
    assert resolve_invitation(db.session, token, today=TODAY + timedelta(days=3650)).state is InvitationLinkState.VALID
    invited.end_date = TODAY
    assert (
        resolve_invitation(db.session, token, today=TODAY + timedelta(days=1)).state is InvitationLinkState.USER_EXPIRED
    )
    invited.end_date = None
    with pytest.raises(DomainError):
        accept_invitation(db.session, token, first_name="A", last_name="B", password="kort")
    db.session.rollback()
    assert resolve_invitation(db.session, token).state is InvitationLinkState.VALID


def test_two_tabs_accepting_at_once_activate_once(app, invited):
    """Both requests resolve the link as valid; only one may set the password."""
    token = latest_link(invited).rsplit("/", 1)[1]
    db.session.rollback()  # SQLite: this test's transaction would hold the write lock the requests wait for
    results: list[int] = []

    def accept(name: str) -> None:
        browser = app.test_client()
        results.append(browser.post(f"/invitasjon/{token}", data=accept_data(first_name=name)).status_code)

    threads = [threading.Thread(target=accept, args=(name,)) for name in ("En", "To")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 410]


def test_user_details_and_edit_show_the_invitation_but_never_the_nonce(login_as, client, invited):
    login_as("staff")
    for url in (f"/admin/users/details/?id={invited.id}", f"/admin/users/edit/?id={invited.id}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert invited.invitation_nonce not in page(response)
    assert 'data-state="sent"' in page(client.get(f"/admin/users/details/?id={invited.id}"))
    entries = db.session.scalars(select(AuditEntry.changes).where(AuditEntry.entity == "users")).all()
    assert all(invited.invitation_nonce not in json.dumps(changes) for changes in entries)


def test_grant_pages_post_with_the_csrf_token(app, bureau, make_staff, make_client, make_user, make_package):
    app.config["WTF_CSRF_ENABLED"] = True
    staff = make_staff(bureau)
    customer = make_client()
    user, package = make_user(customer), make_package(code="CRM", name="CRM")
    browser = app.test_client()
    login_page = browser.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    browser.post("/login", data={"email": staff.person.email, "password": PASSWORD, "csrf_token": token})

    url = f"/admin/users/grant-package/?id={user.id}"
    form = page(browser.get(url))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    data = {"package": str(package.id), "valid_from": TODAY.isoformat()}
    assert browser.post(url, data=data).status_code == 400
    assert count(PackageAssignment) == 0
    assert 'data-granted="yes"' in page(browser.post(url, data={**data, "csrf_token": token}))

    choose = page(
        browser.post(
            "/admin/clients/action/", data={"action": "grant_access", "rowid": [customer.id], "csrf_token": token}
        )
    )
    assert 'name="csrf_token"' in choose and 'name="employee"' in choose
