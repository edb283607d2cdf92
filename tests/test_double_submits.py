"""Double submits: the same POST twice in a row and twice at once (two tabs, a double click) gives no 500, and the
stored state is the one the first submit made."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from extensions import db
from models import BillingMonth, Client, StaffRole, User, UserStatus
from services import archive
from tests.conftest import PASSWORD


def _browsers(app, user, count: int = 2) -> list:
    browsers = []
    for _ in range(count):
        browser = app.test_client()
        assert browser.post("/login", data={"email": user.person.email, "password": PASSWORD}).status_code == 302
        browsers.append(browser)
    return browsers


def _at_once(browsers, path: str, data: dict) -> list:
    """POST from every browser at the same moment; the test's own session holds no lock meanwhile."""
    db.session.rollback()
    barrier = threading.Barrier(len(browsers))
    responses, failures = [], []

    def submit(browser) -> None:
        barrier.wait()
        try:
            responses.append(browser.post(path, data=data))
        except Exception as exc:  # noqa: BLE001 - under TESTING an unhandled error propagates instead of a 500
            failures.append(exc)

    threads = [threading.Thread(target=submit, args=(browser,)) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert all(response.status_code < 500 for response in responses)
    return responses


def _client(key: int) -> Client:
    db.session.expire_all()
    return db.session.get(Client, key)


@pytest.fixture
def customer(make_client, make_user):
    client = make_client(name="Dobbel AS")
    users = [make_user(client) for _ in range(3)]
    return client.id, [user.id for user in users]


@pytest.mark.parametrize("round_", range(3))
def test_archive_and_restore_submitted_twice_at_once(app, bureau, make_staff, customer, round_):
    """Two archive POSTs at once lost a race on the row versions: the loser answered 500 (StaleDataError)."""
    key, user_ids = customer
    browsers = _browsers(app, make_staff(bureau, StaffRole.ADMIN))
    _at_once(browsers, f"/admin/clients/archive/{key}/archive/", {})
    assert _client(key).archived_at is not None
    assert all(db.session.get(User, uid).status is UserStatus.BLOCKED for uid in user_ids)
    _at_once(browsers, f"/admin/clients/archive/{key}/restore/", {})
    assert _client(key).archived_at is None
    _at_once(browsers, "/admin/clients/action/", {"action": "archive", "rowid": [str(key)]})
    assert _client(key).archived_at is not None
    _at_once(browsers, "/admin/clients/action/", {"action": "restore", "rowid": [str(key)]})
    assert _client(key).archived_at is None


@pytest.mark.parametrize("round_", range(3))
def test_person_row_actions_submitted_twice_at_once(app, bureau, make_staff, make_client, make_user, round_):
    client = make_client()
    user = make_user(client)
    key, person_id, user_id = client.id, user.person_id, user.id
    browsers = _browsers(app, make_staff(bureau, StaffRole.ADMIN))
    _at_once(browsers, f"/admin/clients/people/{person_id}/deactivate/?id={key}", {})
    db.session.expire_all()
    assert db.session.get(User, user_id).status is UserStatus.BLOCKED
    _at_once(browsers, "/admin/users/action/", {"action": "reactivate", "rowid": [str(user_id)]})
    db.session.expire_all()
    assert db.session.get(User, user_id).status is not UserStatus.BLOCKED  # invited: it never had a login
    _at_once(browsers, f"/admin/clients/people/{person_id}/archive/?id={key}", {})
    db.session.expire_all()
    assert db.session.get(User, user_id).archived_at is not None


@pytest.mark.parametrize("round_", range(2))
def test_billing_close_submitted_three_times_at_once(app, bureau, make_staff, round_, run_jobs):
    browsers = _browsers(app, make_staff(bureau, StaffRole.ADMIN), 3)
    _at_once(browsers, "/admin/billing/close/", {"period": "2025-03", "confirm": "1"})
    run_jobs()  # the close runs as a job; a job queued by a racing submit finds the month closed
    assert db.session.scalar(select(func.count(BillingMonth.id)).where(BillingMonth.bureau_id == bureau.id)) == 1


def test_the_switch_submitted_twice_at_once(app, bureau, make_staff, make_client):
    client = make_client()
    key = client.id
    browsers = _browsers(app, make_staff(bureau, StaffRole.ADMIN), 3)
    _at_once(browsers, f"/admin/clients/switch/company_lookup_enabled/?id={key}", {})
    _at_once(browsers, f"/admin/clients/consent/?id={key}", {})


def test_a_lost_race_is_a_sentence_not_a_500(client, login_as, make_client, monkeypatch):
    """Deterministic on both databases: the version check failing under a page's commit becomes the stale message."""
    login_as("admin")
    target = make_client()

    def lose_the_race(*args, **kwargs):
        raise StaleDataError("UPDATE statement on table 'clients' expected to update 1 row(s); 0 were matched.")

    monkeypatch.setattr(archive, "archive_many", lose_the_race)
    response = client.post(f"/admin/clients/archive/{target.id}/archive/", headers={"Referer": "/admin/clients/"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "UPDATE statement" not in page
    assert "Reload the page" in page or "Last siden" in page or "lagret" in page
    assert _client(target.id).archived_at is None


@pytest.mark.parametrize("round_", range(3))
def test_the_invitation_accepted_twice_at_once(app, bureau, make_staff, round_):
    """Two tabs posting the same invitation link: one login is made, with one of the two passwords; no 500."""
    from services.invitations import invitation_url, invite_user

    user = make_staff(bureau, status=UserStatus.INVITED, password_hash=None)
    invite_user(db.session, user)
    db.session.commit()
    key, path = user.id, "/invitasjon/" + invitation_url(user).rsplit("/", 1)[1]
    passwords = ["fjord-kveld-lyng-1984", "hest-batteri-stift-77"]
    browsers = [app.test_client() for _ in passwords]
    db.session.rollback()
    barrier = threading.Barrier(2)
    responses, failures = [], []

    def accept(browser, password):
        barrier.wait()
        try:
            responses.append(
                browser.post(
                    path,
                    data={"first_name": "Kari", "last_name": "Nordmann", "password": password, "confirm": password},
                )
            )
        except Exception as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=accept, args=pair) for pair in zip(browsers, passwords, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and all(response.status_code < 500 for response in responses)
    db.session.expire_all()
    stored = db.session.get(User, key)
    assert stored.status is UserStatus.ACTIVE and stored.accepted_at is not None
    assert sum(stored.check_password(password) for password in passwords) == 1
