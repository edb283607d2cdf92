"""Many staff at once against a real threaded server: simultaneous logins and saves never answer 5xx (SQLite's
"database is locked" included), and what they stored is what each asked for. Runs on both engines."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from html.parser import HTMLParser

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from extensions import _WriteTurns, db
from models import Client, LoginFailure, StaffRole, User, UserStatus
from services.audit import acting_as
from tests.conftest import PASSWORD

LOGINS = 50
SAVES = 20


@pytest.fixture
def live_server(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def at_once(count: int, work: Callable[[int], requests.Response]) -> list[requests.Response]:
    """Run ``work(i)`` in ``count`` threads released together; the test's own session holds no lock meanwhile."""
    db.session.rollback()
    barrier = threading.Barrier(count)
    responses: list[requests.Response | None] = [None] * count
    failures: list[BaseException] = []

    def run(number: int) -> None:
        barrier.wait()
        try:
            responses[number] = work(number)
        except BaseException as exc:  # noqa: BLE001 - reported below with the others
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    return [response for response in responses if response is not None]


class _FormFields(HTMLParser):
    """The named inputs, selects and textareas of a page's form, with their current values."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields[name] = a.get("value") or "y"
            else:
                self.fields[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select = name
            self.fields.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_fields(html: str) -> dict[str, str]:
    parser = _FormFields()
    parser.feed(html)
    return parser.fields


def log_in(base: str, email: str) -> requests.Session:
    browser = requests.Session()
    response = browser.post(f"{base}/login", data={"email": email, "password": PASSWORD}, allow_redirects=False)
    assert response.status_code == 302, response.text[:500]
    return browser


def test_fifty_simultaneous_logins_all_succeed(app, live_server, bureau, make_staff):
    staff = [make_staff(bureau) for _ in range(LOGINS)]
    emails = [user.person.email for user in staff]
    ids = [user.id for user in staff]

    responses = at_once(
        LOGINS,
        lambda n: requests.post(
            f"{live_server}/login", data={"email": emails[n], "password": PASSWORD}, allow_redirects=False, timeout=120
        ),
    )

    assert [r.status_code for r in responses if r.status_code >= 500] == []
    assert [r.status_code for r in responses] == [302] * LOGINS
    db.session.expire_all()
    stamped = db.session.scalars(select(User.last_login_at).where(User.id.in_(ids))).all()
    assert len(stamped) == LOGINS and all(moment is not None for moment in stamped)


def test_twenty_simultaneous_saves_all_stored(app, live_server, bureau, make_staff, make_client):
    staff = [make_staff(bureau) for _ in range(SAVES)]
    clients = [make_client(name=f"Før {n} AS") for n in range(SAVES)]
    keys = [client.id for client in clients]
    emails = [user.person.email for user in staff]
    db.session.rollback()  # on SQLite this test's open transaction would hold the write lock the server needs
    browsers = [log_in(live_server, email) for email in emails]
    forms = []
    for browser, key in zip(browsers, keys, strict=True):
        page = browser.get(f"{live_server}/admin/clients/manage/?id={key}&edit=company", timeout=60)
        assert page.status_code == 200
        fields = form_fields(page.text)
        assert "version_check" in fields and fields["name"].startswith("Før")
        forms.append(fields)

    def save(n: int) -> requests.Response:
        data = {**forms[n], "name": f"Etter {n} AS"}
        return browsers[n].post(
            f"{live_server}/admin/clients/company/?id={keys[n]}", data=data, allow_redirects=False, timeout=120
        )

    responses = at_once(SAVES, save)

    assert [r.status_code for r in responses if r.status_code >= 500] == []
    assert [r.status_code for r in responses] == [302] * SAVES, [
        r.text[:300] for r in responses if r.status_code != 302
    ]
    db.session.expire_all()
    names = dict(db.session.execute(select(Client.id, Client.name).where(Client.id.in_(keys))).all())
    assert names == {key: f"Etter {n} AS" for n, key in enumerate(keys)}


def test_simultaneous_guesses_at_one_account_count_up_to_its_limit_and_no_further(app, live_server, bureau, make_staff):
    """The password is checked outside any transaction now; each attempt is counted against the account before the
    check, one after the other, so a burst of guesses gets exactly the limit's worth of tries."""
    staff = make_staff(bureau)
    email, key = staff.person.email, staff.id
    account = f"account:{email.lower()}"
    responses = at_once(
        20,
        lambda n: requests.post(
            f"{live_server}/login", data={"email": email, "password": f"guess {n}"}, allow_redirects=False, timeout=120
        ),
    )
    assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 15
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).where(LoginFailure.key == account)) == 5
    assert db.session.scalar(select(func.count()).where(LoginFailure.key.startswith("address:"))) == 5
    db.session.rollback()
    refused = requests.post(f"{live_server}/login", data={"email": email, "password": PASSWORD}, allow_redirects=False)
    assert refused.status_code == 429
    assert db.session.get(User, key).last_login_at is None


def test_a_right_password_leaves_no_failure_counted(app, live_server, bureau, make_staff):
    email = make_staff(bureau).person.email
    db.session.rollback()
    log_in(live_server, email)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(LoginFailure)) == 0


def test_a_user_deactivated_while_the_password_is_checked_is_not_logged_in(app, bureau, make_staff, monkeypatch):
    """The check runs between two transactions: the second one looks again at the stored user."""
    import services.auth

    staff = make_staff(bureau)
    admin = make_staff(bureau, StaffRole.ADMIN)
    key, email, admin_id = staff.id, staff.person.email, admin.id
    real_check = services.auth.check_password_hash

    def check_while_an_admin_deactivates(hashed: str, password: str) -> bool:
        with app.app_context():  # another request's session
            user = db.session.get(User, key)
            with acting_as(db.session.get(User, admin_id)):
                user.status = UserStatus.BLOCKED
                db.session.commit()
            db.session.remove()
        return real_check(hashed, password)

    db.session.rollback()
    monkeypatch.setattr(services.auth, "check_password_hash", check_while_an_admin_deactivates)
    response = app.test_client().post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 200 and "Feil e-post eller passord" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, key).last_login_at is None


def test_write_turns_are_first_come_first_served_and_never_the_authority():
    turns = _WriteTurns()
    assert turns.take(1.0)
    order: list[int] = []
    started = []

    def writer(number: int) -> None:
        started.append(number)
        assert turns.take(30.0)
        order.append(number)
        turns.give_back()

    threads = []
    for number in range(5):
        thread = threading.Thread(target=writer, args=(number,))
        thread.start()
        threads.append(thread)
        while len(turns._waiting) < number + 1:  # queued in this order
            threading.Event().wait(0.001)
    turns.give_back()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]

    # A turn that is never given back (a leaked connection) makes the next writer go to SQLite itself after the wait.
    assert turns.take(1.0)
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(turns.take(0.05)))
    waiter.start()
    waiter.join()
    assert result == [False] and not turns._waiting
    # The same thread asking again does not wait for itself.
    assert turns.take(5.0) is False
