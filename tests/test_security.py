"""Sessions and secrets: the SECRET_KEY guard, security headers, upload limit, login throttling, revocable
sessions, the password rule and one login per e-mail."""

from __future__ import annotations

import io
import logging
import re
from datetime import date, timedelta

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

import services.auth as services_auth
from app import create_app
from config import DEV_SECRET_KEY, InsecureSecretKeyError
from extensions import db
from models import AuditEntry, LoginFailure, StaffRole, User, UserStatus, utcnow
from services import invitations, passwords, sessions, throttle
from services.audit import acting_as
from services.errors import DomainError, integrity_message
from tests.conftest import PASSWORD
from tests.test_migrations import empty_database_url  # noqa: F401  (a fixture)

# --- the SECRET_KEY guard -----------------------------------------------------------------------

MEMORY = {"SQLALCHEMY_DATABASE_URI": "sqlite://"}


@pytest.fixture
def bare_environment(monkeypatch):
    """No APP_ENV and no SECRET_KEY in the environment, as on a freshly provisioned server."""
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    return monkeypatch


def test_unset_app_env_without_a_key_is_production_and_refuses_to_start(bare_environment):
    with pytest.raises(InsecureSecretKeyError, match="SECRET_KEY is not set"):
        create_app(MEMORY)


@pytest.mark.parametrize("typo", ["prod", "Production", "develop", "Development", "dev", " ", "staging"])
def test_any_app_env_but_exactly_development_is_production(bare_environment, typo):
    bare_environment.setenv("APP_ENV", typo)
    with pytest.raises(InsecureSecretKeyError):
        create_app(MEMORY)
    bare_environment.setenv("SECRET_KEY", "k" * 40)
    assert create_app(MEMORY).config["ENV_NAME"] == "production"


def test_production_refuses_the_public_development_key(bare_environment):
    bare_environment.setenv("SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(InsecureSecretKeyError, match="development key"):
        create_app(MEMORY)
    with pytest.raises(InsecureSecretKeyError, match="development key"):
        create_app({**MEMORY, "SECRET_KEY": DEV_SECRET_KEY})


def test_production_refuses_a_short_key(bare_environment):
    bare_environment.setenv("SECRET_KEY", "s" * 31)
    with pytest.raises(InsecureSecretKeyError, match="too short"):
        create_app(MEMORY)
    bare_environment.setenv("SECRET_KEY", "s" * 32)
    assert create_app(MEMORY).config["SECRET_KEY"] == "s" * 32


def test_development_uses_the_public_key_and_says_so(bare_environment, caplog):
    bare_environment.setenv("APP_ENV", "development")
    with caplog.at_level(logging.WARNING):
        app = create_app(MEMORY)
    assert app.config["ENV_NAME"] == "development"
    assert app.config["SECRET_KEY"] == DEV_SECRET_KEY
    notices = [r.getMessage() for r in caplog.records if "Development mode" in r.getMessage()]
    assert len(notices) == 1 and "never use this mode in production" in notices[0]


def test_production_is_silent_about_development(bare_environment, caplog):
    bare_environment.setenv("SECRET_KEY", "p" * 40)
    with caplog.at_level(logging.WARNING):
        create_app(MEMORY)
    assert not [r for r in caplog.records if "Development mode" in r.getMessage()]


# --- security headers -----------------------------------------------------------------------------

ADMIN_PAGES = ["/admin/", "/admin/clients/", "/admin/persons/", "/admin/users/", "/admin/clients/new/"]


def csp_of(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else "" for part in policy.split("; ")}


def test_every_response_has_the_security_headers(client):
    for path in ["/login", "/invitasjon/not-a-token", "/samtykke/not-a-token", "/static/js/people.js"]:
        response = client.get(path)
        csp = csp_of(response)
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'", path
        assert csp["base-uri"] == "'none'" and csp["form-action"] == "'self'", path
        assert "'unsafe-inline'" not in csp["script-src"] and csp["script-src"].startswith("'self' 'nonce-"), path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["Referrer-Policy"] == "same-origin", path
        assert "Strict-Transport-Security" not in response.headers, path
        response.close()
    static = client.get("/static/js/people.js")
    assert static.headers.get("Cache-Control") != "no-store"
    static.close()
    for path in ["/login", "/invitasjon/not-a-token", "/samtykke/not-a-token"]:
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_hsts_only_behind_https(app, client):
    app.config["SESSION_COOKIE_SECURE"] = True
    assert client.get("/login").headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_admin_pages_are_not_stored_and_inline_scripts_carry_this_requests_nonce(login_as, client):
    login_as("admin")
    nonces = set()
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
        nonce = csp_of(response)["script-src"].split("'nonce-")[1].rstrip("'")
        nonces.add(nonce)
        html = response.get_data(as_text=True)
        inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
        assert all(f'nonce="{nonce}"' in attributes for attributes in inline), (path, inline)
        assert not re.search(r"\son[a-z]+\s*=", html), path
        # Flask-Admin's list and pager keep href="javascript:void(0)" on links that never navigate (not overridden).
        assert not re.search(r"javascript:(?!void\(0\))", html), path
    assert len(nonces) == len(ADMIN_PAGES)  # a new nonce per request
    asset = client.get("/admin/static/vendor/jquery.min.js")
    assert asset.status_code == 200 and asset.headers.get("Cache-Control") != "no-store"
    assert asset.headers["X-Content-Type-Options"] == "nosniff"
    asset.close()


# --- the upload limit -----------------------------------------------------------------------------


class CountingStream:
    """A 100 MB request body that is never materialised: it counts what is read from it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.read_bytes = 0

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: offset, 1: self.position + offset, 2: self.size + offset}[whence]
        return self.position

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.position
        n = left if n is None or n < 0 else min(n, left)
        self.position += n
        self.read_bytes += n
        return b"x" * n

    def readline(self, n: int = -1) -> bytes:
        return self.read(min(n, 65536) if n and n > 0 else 65536)


def test_an_oversized_upload_is_refused_before_it_is_read(login_as, client):
    login_as("admin")
    size = 100 * 1024 * 1024
    body = CountingStream(size)
    response = client.post(
        "/admin/clients/import/",
        input_stream=body,
        content_type="multipart/form-data; boundary=xyz",
        headers={"Content-Length": str(size)},
    )
    assert response.status_code == 413
    assert "Filen er for stor" in response.get_data(as_text=True)
    assert body.read_bytes == 0


def test_upload_limit_is_configurable(app, login_as, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    login_as("admin")
    response = client.post(
        "/admin/clients/import/",
        data={"file": (io.BytesIO(b"a" * 4096), "k.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413


# --- login throttling -----------------------------------------------------------------------------


def login_post(browser, email: str, password: str):
    return browser.post("/login", data={"email": email, "password": password})


@pytest.fixture
def second_app(app):
    """Another instance of the app on the same database, like a second gunicorn worker."""
    other = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": app.config["SECRET_KEY"],
        }
    )
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def age_failures(minutes: int) -> None:
    """Move every recorded failure ``minutes`` into the past (instead of waiting)."""
    for failure in db.session.scalars(select(LoginFailure)):
        failure.failed_at -= timedelta(minutes=minutes)
    db.session.commit()


def test_throttle_holds_across_two_app_instances_and_lets_the_right_password_in_only_after_the_wait(
    app, second_app, bureau, make_staff
):
    staff = make_staff(bureau)
    email = staff.person.email
    db.session.commit()  # end this test's transaction: on SQLite it would hold the lock the other app waits for
    first, second = app.test_client(), second_app.test_client()
    for attempt in range(5):
        browser = first if attempt % 2 else second
        assert login_post(browser, email.upper(), "wrong password").status_code == 200
    assert db.session.scalar(select(func.count()).select_from(LoginFailure)) == 10  # account and address rows

    db.session.commit()
    for browser in (first, second):
        refused = login_post(browser, email, PASSWORD)
        assert refused.status_code == 429
        assert "For mange mislykkede innlogginger. Prøv igjen om 15 min." in refused.get_data(as_text=True)
        assert browser.get("/admin/").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, staff.id).last_login_at is None
    # Attempts while throttled are not counted: the lock does not grow.
    assert db.session.scalar(select(func.count()).select_from(LoginFailure)) == 10

    age_failures(14)
    assert login_post(second, email, PASSWORD).status_code == 429
    age_failures(2)
    assert login_post(second, email, PASSWORD).status_code == 302
    assert second.get("/admin/").status_code == 200
    remaining = db.session.scalars(select(LoginFailure.key)).all()
    assert remaining == [] or all(key.startswith("address:") for key in remaining)


def test_success_clears_the_accounts_failures(client, bureau, make_staff):
    staff = make_staff(bureau)
    for _attempt in range(4):
        login_post(client, staff.person.email, "wrong password")
    assert login_post(client, staff.person.email, PASSWORD).status_code == 302
    account = f"account:{staff.person.email.lower()}"
    assert db.session.scalar(select(func.count()).where(LoginFailure.key == account)) == 0
    client.post("/logout")
    for _attempt in range(4):
        login_post(client, staff.person.email, "wrong password")
    assert login_post(client, staff.person.email, PASSWORD).status_code == 302


def test_one_address_trying_many_accounts_is_throttled(app, client, bureau, make_staff):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    staff = make_staff(bureau)
    for n in range(3):
        login_post(client, f"guess{n}@byra.example", "wrong password")
    assert login_post(client, staff.person.email, PASSWORD).status_code == 429
    other_address = app.test_client()
    response = other_address.post(
        "/login",
        data={"email": staff.person.email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert response.status_code == 302


def test_old_failures_are_cleaned_up(app, client):
    login_post(client, "a@byra.example", "wrong password")
    age_failures(60)
    login_post(client, "b@byra.example", "wrong password")
    keys = set(db.session.scalars(select(LoginFailure.key)).all())
    assert keys == {"account:b@byra.example", "address:127.0.0.1"}


def test_throttle_service_counts_from_the_database(app):
    now = utcnow()
    for _attempt in range(5):
        throttle.record_failure(db.session, "Kari@Byra.example ", "10.1.1.1", now=now)
    assert throttle.seconds_to_wait(db.session, "kari@byra.example", None, now=now) == 15 * 60
    assert throttle.seconds_to_wait(db.session, "kari@byra.example", None, now=now + timedelta(minutes=10)) == 300
    assert throttle.seconds_to_wait(db.session, "kari@byra.example", None, now=now + timedelta(minutes=15)) == 0
    assert throttle.seconds_to_wait(db.session, "ola@byra.example", "10.1.1.1", now=now) == 0
    db.session.rollback()


# --- constant time: one password hash whatever the e-mail -----------------------------------------


@pytest.fixture
def hash_checks(monkeypatch):
    checked: list[str] = []
    real = services_auth.check_password_hash

    def spy(pwhash: str, password: str) -> bool:
        checked.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(services_auth, "check_password_hash", spy)
    return checked


def test_unknown_and_inactive_users_still_cost_one_password_hash(bureau, make_staff, hash_checks):
    active = make_staff(bureau)
    blocked = make_staff(bureau, status=UserStatus.BLOCKED)
    invited = make_staff(bureau, status=UserStatus.INVITED, password_hash=None)

    assert services_auth.authenticate(db.session, "nobody@byra.example", PASSWORD) is None
    assert services_auth.authenticate(db.session, blocked.person.email, PASSWORD) is None
    assert services_auth.authenticate(db.session, invited.person.email, PASSWORD) is None
    assert services_auth.authenticate(db.session, active.person.email, "wrong password") is None
    assert services_auth.authenticate(db.session, active.person.email, PASSWORD) == active
    assert len(hash_checks) == 5
    dummy = hash_checks[0]
    assert hash_checks[1] == dummy and hash_checks[2] == dummy
    assert hash_checks[3] == hash_checks[4] == active.password_hash != dummy


def test_a_throttled_login_also_costs_one_password_hash(app, client, bureau, make_staff, hash_checks):
    app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] = 1
    staff = make_staff(bureau)
    login_post(client, staff.person.email, "wrong password")
    hash_checks.clear()
    assert login_post(client, staff.person.email, PASSWORD).status_code == 429
    assert len(hash_checks) == 1 and hash_checks[0] != staff.password_hash


# --- revocable sessions ---------------------------------------------------------------------------


def copy_session(app, browser):
    """A second browser holding a copy of ``browser``'s session cookie (as a thief would)."""
    thief = app.test_client()
    thief.set_cookie("session", browser.get_cookie("session").value)
    return thief


def test_a_cookie_copied_before_logout_no_longer_opens_the_admin(app, client, bureau, make_staff, login):
    staff = make_staff(bureau)
    login(staff)
    thief = copy_session(app, client)
    assert thief.get("/admin/").status_code == 200
    token = staff.session_token
    assert client.post("/logout").status_code == 302
    assert thief.get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, staff.id).session_token != token


def logged_in_browser(app, user):
    browser = app.test_client()
    assert login_post(browser, user.person.email, PASSWORD).status_code == 302
    assert browser.get("/admin/").status_code == 200
    return browser


def change_role(user):
    user.staff_role = StaffRole.ADMIN


def deactivate_user(user):
    invitations.deactivate(db.session, [user])


def change_email(user):
    user.person.email = f"ny-{user.id}@byra.example"


def change_password(user):
    user.set_password("et helt nytt og langt passord")


@pytest.mark.parametrize("change", [change_role, deactivate_user, change_email, change_password])
def test_changes_that_end_the_targets_sessions(app, bureau, make_staff, change):
    target = make_staff(bureau)
    bystander = make_staff(bureau)
    target_browser, bystander_browser = logged_in_browser(app, target), logged_in_browser(app, bystander)
    change(db.session.get(User, target.id))
    db.session.commit()
    assert target_browser.get("/admin/").status_code == 302
    assert bystander_browser.get("/admin/").status_code == 200


def test_harmless_changes_keep_the_session(app, bureau, make_staff):
    target = make_staff(bureau)
    browser = logged_in_browser(app, target)
    token = db.session.get(User, target.id).session_token
    target.person.phone = "99887766"
    target.end_date = date.today() + timedelta(days=300)
    db.session.commit()
    assert browser.get("/admin/").status_code == 200
    db.session.expire_all()
    assert db.session.get(User, target.id).session_token == token


def test_the_session_token_never_reaches_the_history(app, bureau, make_staff):
    target = make_staff(bureau)
    with acting_as(None, "test"):
        sessions.end_sessions(target)
        target.staff_role = StaffRole.ADMIN
        db.session.commit()
    entries = db.session.scalars(select(AuditEntry)).all()
    assert entries and all("session_token" not in (entry.changes or {}) for entry in entries)
    assert all(target.session_token not in str(entry.changes) for entry in entries)


def test_idle_session_is_logged_out_with_a_message(app, client, bureau, make_staff, login):
    login(make_staff(bureau))
    with client.session_transaction() as stored:
        stored["last_seen"] -= 119 * 60
    assert client.get("/admin/").status_code == 200  # still within the limit, and this counts as activity
    with client.session_transaction() as stored:
        stored["last_seen"] -= 121 * 60
    response = client.get("/admin/clients/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Du ble logget ut etter 120 minutter uten aktivitet." in page
    assert client.get("/admin/").status_code == 302


def test_idle_limit_is_configurable(app, client, bureau, make_staff, login):
    app.config["SESSION_IDLE_MINUTES"] = 5
    login(make_staff(bureau))
    with client.session_transaction() as stored:
        stored["last_seen"] -= 6 * 60
    assert client.get("/admin/").status_code == 302


# --- the password rule ----------------------------------------------------------------------------

WEAK = ["aaaaaaaaaaaa", "passwordpassword", "123456789012", "qwertyuiopasdf", "KariNordmannKari", "kari.nordmann.2026"]


@pytest.mark.parametrize("password", WEAK + ["kort"])
def test_weak_passwords_are_refused(app, password):
    with pytest.raises(DomainError):
        passwords.check_password(password, ["Kari", "Nordmann", "kari.nordmann@kunde.example", "Kunde AS"])


def test_a_strong_passphrase_is_accepted_and_messages_are_norwegian(app):
    passwords.check_password("Fjelltur i regnvær med kaffe", ["Kari", "Nordmann"])
    with pytest.raises(DomainError) as refused:
        passwords.check_password("aaaaaaaaaaaa", [])
    assert "Passordet er for lett å gjette" in str(refused.value)
    with pytest.raises(DomainError, match="at most|høyst"):
        passwords.check_password("Fjelltur i regnvær " * 20, [])


@pytest.fixture
def invited_staff(bureau, make_staff):
    from services.invitations import invite_user

    user = make_staff(bureau, status=UserStatus.INVITED, password_hash=None, first_name="Kari")
    invite_user(db.session, user)
    db.session.commit()
    return user


def invitation_path(user) -> str:
    from services.invitations import invitation_url

    return "/invitasjon/" + invitation_url(user).rsplit("/", 1)[1]


@pytest.mark.parametrize("password", WEAK + ["KariTestesenKari"])
def test_invitation_page_refuses_weak_passwords_and_changes_nothing(client, invited_staff, password):
    path = invitation_path(invited_staff)
    data = {"first_name": "Kari", "last_name": "Nordmann", "password": password, "confirm": password}
    response = client.post(path, data=data)
    assert response.status_code == 200
    assert "is-invalid" in response.get_data(as_text=True)
    db.session.expire_all()
    user = db.session.get(User, invited_staff.id)
    assert user.status is UserStatus.INVITED and user.check_password(PASSWORD) and not user.check_password(password)


def test_invitation_page_explains_the_rule_and_takes_a_strong_password(client, invited_staff):
    path = invitation_path(invited_staff)
    assert "en setning med fire eller fem vanlige ord" in client.get(path).get_data(as_text=True)
    strong = "Fjelltur i regnvær med kaffe"
    data = {"first_name": "Kari", "last_name": "Nordmann", "password": strong, "confirm": strong}
    assert client.post(path, data=data).status_code == 200
    db.session.expire_all()
    user = db.session.get(User, invited_staff.id)
    assert user.status is UserStatus.ACTIVE and user.check_password(strong)


def test_the_service_applies_the_same_rule(app, invited_staff):
    from services.invitations import accept_invitation

    token = invitation_path(invited_staff).rsplit("/", 1)[1]
    with pytest.raises(DomainError):
        accept_invitation(db.session, token, first_name="Kari", last_name="Nordmann", password="passwordpassword")
    db.session.rollback()
    user = db.session.get(User, invited_staff.id)
    assert user.status is UserStatus.INVITED and not user.check_password("passwordpassword")


# --- one staff login per e-mail ---------------------------------------------------------------------


def test_a_staff_login_email_is_unique_across_bureaus(app, bureau, make_bureau, make_staff):
    first = make_staff(bureau, email="Kari@Byra.example")
    other = make_bureau(name="Hemmelig Byrå AS")
    with pytest.raises(IntegrityError) as refused:
        make_staff(other, email=" kari@byra.EXAMPLE")
    message = integrity_message(refused.value)
    db.session.rollback()
    assert message and "Hemmelig" not in message and bureau.name not in message
    assert services_auth.authenticate(db.session, "KARI@byra.example", PASSWORD) == first
    assert db.session.get(User, first.id).login_email == "kari@byra.example"


def test_changing_a_staff_email_to_a_taken_one_is_refused(app, bureau, make_bureau, make_staff):
    make_staff(bureau, email="kari@byra.example")
    second = make_staff(make_bureau(), email="ola@byra.example")
    second.person.email = "KARI@byra.example"
    with pytest.raises(IntegrityError) as refused:
        db.session.commit()
    assert integrity_message(refused.value)
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(User, second.id).login_email == "ola@byra.example"


def test_customers_and_people_without_staff_role_do_not_take_login_emails(
    app, bureau, make_staff, make_client, make_user, make_person
):
    staff = make_staff(bureau, email="kari@byra.example")
    customer_client = make_client()
    customer = make_user(customer_client, person=make_person(customer_client, email="kari@byra.example"))
    assert customer.login_email is None
    staff.staff_role = None
    db.session.commit()
    assert db.session.get(User, staff.id).login_email is None
    staff.staff_role = StaffRole.STAFF
    staff.person.email = "Kari.Ny@byra.example"
    db.session.commit()
    assert db.session.get(User, staff.id).login_email == "kari.ny@byra.example"


# --- the migration's backfill -------------------------------------------------------------------------


def test_migration_gives_existing_staff_their_login_email_and_the_older_keeps_a_shared_one(
    empty_database_url,  # noqa: F811  (the fixture imported above)
):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        try:
            upgrade(revision="51db0c39fb73")
            with db.engine.begin() as conn:
                for n, (org_number, email) in enumerate(
                    [("974760673", "Kari@Byra.example"), ("923609016", "kari@byra.example ")], start=1
                ):
                    conn.execute(
                        text(
                            "INSERT INTO bureaus (id, org_number, name, version, created_at)"
                            " VALUES (:n, :org, :name, 1, CURRENT_TIMESTAMP)"
                        ),
                        {"n": n, "org": org_number, "name": f"Byrå {n}"},
                    )
                    conn.execute(
                        text(
                            "INSERT INTO clients (id, bureau_id, name, is_internal, is_demo, company_lookup_enabled,"
                            " custom_invoice_email_enabled, version, created_at)"
                            " VALUES (:n, :n, 'Intern', true, false, false, false, 1, CURRENT_TIMESTAMP)"
                        ),
                        {"n": n},
                    )
                    conn.execute(
                        text(
                            "INSERT INTO persons (id, bureau_id, client_id, kind, first_name, last_name, email,"
                            " version, created_at) VALUES (:n, :n, :n, 'user', 'Kari', 'N', :email, 1,"
                            " CURRENT_TIMESTAMP)"
                        ),
                        {"n": n, "email": email},
                    )
                    conn.execute(
                        text(
                            "INSERT INTO users (id, bureau_id, person_id, person_kind, status, staff_role,"
                            " bank_access, user_admin, version, created_at)"
                            " VALUES (:n, :n, :n, 'user', 'active', 'admin', false, false, 1, CURRENT_TIMESTAMP)"
                        ),
                        {"n": n},
                    )
            upgrade()
            with db.engine.connect() as conn:
                rows = conn.execute(text("SELECT id, login_email, session_token FROM users ORDER BY id")).all()
            assert [(row.id, row.login_email) for row in rows] == [(1, "kari@byra.example"), (2, None)]
            assert all(row.session_token and len(row.session_token) >= 40 for row in rows)
            assert rows[0].session_token != rows[1].session_token
        finally:
            db.session.remove()
            db.engine.dispose()


def test_behind_one_trusted_proxy_the_forwarded_address_is_throttled(app):
    proxied = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "PROXY_FIX_X_FOR": 1,
        }
    )
    try:
        browser = proxied.test_client()
        headers = {"X-Forwarded-For": "198.51.100.7, 203.0.113.5"}
        browser.post("/login", data={"email": "x@byra.example", "password": "wrong password"}, headers=headers)
        keys = set(db.session.scalars(select(LoginFailure.key)).all())
        assert keys == {"account:x@byra.example", "address:203.0.113.5"}
    finally:
        with proxied.app_context():
            db.session.remove()
            db.engine.dispose()


def test_no_page_shows_a_users_session_token(client, login_as, bureau, make_staff):
    """The session token is the revocation secret inside the signed cookie: the Brukere details page showed it (any
    staff member could read an administrator's), so a leaked key would have been enough to forge their session."""
    me = login_as("staff")
    admin = make_staff(bureau, StaffRole.ADMIN)
    for path in (
        f"/admin/users/details/?id={admin.id}",
        f"/admin/users/details/?id={me.id}",
        f"/admin/users/edit/?id={admin.id}",
        "/admin/users/",
        "/admin/auditlog/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.get_data(as_text=True)
        assert admin.session_token not in body and me.session_token not in body, path
