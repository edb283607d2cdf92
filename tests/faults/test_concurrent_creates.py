"""Idempotent creation: every create form carries a one-time token, and a second POST of it creates nothing.

Against a real threaded server (werkzeug's, one thread per request, the suite's database: SQLite or PostgreSQL),
20 POSTs fired at once: the same "+ Ny kunde" form (same token), 20 forms with the same org number (fresh tokens),
and the same for adding a person. Then a plain double submit of every create form through the test client, the
generic Flask-Admin ones included, hostile tokens, and lost races made deterministic.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from extensions import db
from models import (
    Client,
    CustomerTemplate,
    OutboxMessage,
    Package,
    PackageAssignment,
    PackageKind,
    Permission,
    Person,
    PersonKind,
    SubmissionToken,
    User,
)
from services import submissions
from tests.conftest import PASSWORD
from tests.fixtures.imports import confirm_form
from tests.test_admin import client_form, page

TOKEN = re.compile(r'name="submission_token" type="hidden" value="([^"]*)"')
ORG_NUMBER = "974760673"
RACERS = 20
ALREADY_SENT = "Skjemaet var allerede sendt"
DUPLICATE_ORG_NUMBER = "En annen klient i byrået har allerede dette organisasjonsnummeret"
DUPLICATE_EMAIL = "En annen person hos denne klienten har allerede denne e-postadressen"


def token_of(html: str) -> str:
    found = TOKEN.findall(html)
    assert len(found) == 1 and found[0], "the form carries exactly one one-time token"
    return found[0]


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def customers() -> int:
    return count(Client, Client.is_internal.is_(False))


def mails(kind: str) -> int:
    return count(OutboxMessage, OutboxMessage.kind == kind)


@pytest.fixture
def tokens_required(app):
    """As in production: the rest of the suite posts without tokens, as it posts without CSRF tokens."""
    app.config["SUBMISSION_TOKEN_REQUIRED"] = True


# --- a real threaded server -------------------------------------------------------------------


@contextmanager
def real_server(app) -> Iterator[str]:
    db.session.remove()  # the test's own session holds no lock while the server works
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        # Each request thread gives its connection back as its app context ends, just after the response is sent.
        for _ in range(200):
            if db.engine.pool.checkedout() == 0:
                break
            time.sleep(0.05)


def log_in(base: str, email: str) -> dict:
    response = requests.post(
        f"{base}/login", data={"email": email, "password": PASSWORD}, allow_redirects=False, timeout=60
    )
    assert response.status_code == 302, response.text
    return response.cookies.get_dict()


def fresh_token(base: str, path: str, cookies: dict) -> str:
    response = requests.get(base + path, cookies=cookies, timeout=60)
    assert response.status_code == 200
    return token_of(response.text)


def at_once(url: str, payloads: list[dict], cookies: dict) -> list[requests.Response]:
    """POST every payload from its own thread at the same moment; every answer comes back (no 5xx allowed)."""
    barrier = threading.Barrier(len(payloads))
    responses: list[requests.Response] = []
    failures: list[BaseException] = []

    def post(payload: dict) -> None:
        barrier.wait()
        try:
            responses.append(requests.post(url, data=payload, cookies=cookies, allow_redirects=False, timeout=300))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=post, args=(payload,)) for payload in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(responses) == len(payloads)
    assert [r.status_code for r in responses if r.status_code >= 500] == []
    return responses


def created_by(responses: list[requests.Response]) -> list[requests.Response]:
    return [r for r in responses if r.status_code in (302, 303)]


# --- 20 at once ---------------------------------------------------------------------------------


def test_twenty_identical_new_client_posts_create_one_client_and_one_consent_email(
    app, bureau, make_staff, tokens_required
):
    """Without an org number nothing but the token tells them apart (before: 20 clients, 20 e-mails)."""
    email = make_staff(bureau).person.email
    with real_server(app) as base:
        cookies = log_in(base, email)
        token = fresh_token(base, "/admin/clients/new/", cookies)
        form = client_form(org_number="", submission_token=token)
        responses = at_once(f"{base}/admin/clients/new/", [form] * RACERS, cookies)
    assert customers() == 1 and mails("consent") == 1
    created = db.session.scalar(select(Client).where(Client.is_internal.is_(False)))
    # Every answer, the first and each repeat, leads to the one client's page.
    assert {urlsplit(r.headers["Location"]).path + "?" + urlsplit(r.headers["Location"]).query for r in responses} == {
        f"/admin/clients/manage/?id={created.id}"
    }
    assert count(SubmissionToken) == 1


def test_twenty_new_client_forms_with_the_same_org_number_create_one(app, bureau, make_staff, tokens_required):
    """Fresh tokens: twenty people creating the same company at once. PostgreSQL made 3 of 20 answer 500 before."""
    email = make_staff(bureau).person.email
    with real_server(app) as base:
        cookies = log_in(base, email)
        forms = [
            client_form(org_number=ORG_NUMBER, contact_email=f"kari{n}@nykunde.example", submission_token=token)
            for n, token in enumerate(fresh_token(base, "/admin/clients/new/", cookies) for _ in range(RACERS))
        ]
        responses = at_once(f"{base}/admin/clients/new/", forms, cookies)
    assert customers() == 1 and mails("consent") == 1
    winner = db.session.scalar(select(Client).where(Client.org_number == ORG_NUMBER))
    assert len(created_by(responses)) == 1
    for refused in (r for r in responses if r.status_code == 200):
        assert DUPLICATE_ORG_NUMBER in refused.text
        assert f"/admin/clients/manage/?id={winner.id}" in refused.text  # the same link as the pre-check's
    assert count(SubmissionToken) == 1  # the refused ones stored nothing


def add_person_form(token: str, email: str = "kari@kunde.example") -> dict:
    return {
        "first_name": "Kari",
        "last_name": "Nordmann",
        "email": email,
        "invite": "y",
        "submission_token": token,
    }


def test_twenty_identical_add_person_posts_add_one_person_and_one_invitation(
    app, bureau, make_staff, make_client, tokens_required
):
    email = make_staff(bureau).person.email
    customer_id = make_client().id
    path = f"/admin/clients/people/add/user/?id={customer_id}"
    with real_server(app) as base:
        cookies = log_in(base, email)
        token = fresh_token(base, path, cookies)
        responses = at_once(base + path, [add_person_form(token)] * RACERS, cookies)
    assert count(Person, Person.client_id == customer_id) == 1 and mails("invitation") == 1
    assert {r.status_code for r in responses} == {302}
    assert {urlsplit(r.headers["Location"]).query for r in responses} == {f"id={customer_id}&tab=people"}


def test_twenty_forms_adding_the_same_person_add_one(app, bureau, make_staff, make_client, tokens_required):
    """Fresh tokens, the same e-mail: one person; the rest hear what the pre-check says (PostgreSQL: 500 before)."""
    email = make_staff(bureau).person.email
    customer_id = make_client().id
    path = f"/admin/clients/people/add/user/?id={customer_id}"
    with real_server(app) as base:
        cookies = log_in(base, email)
        forms = [add_person_form(fresh_token(base, path, cookies)) for _ in range(RACERS)]
        responses = at_once(base + path, forms, cookies)
    assert count(Person, Person.client_id == customer_id) == 1 and mails("invitation") == 1
    assert len(created_by(responses)) == 1
    assert all(DUPLICATE_EMAIL in r.text for r in responses if r.status_code == 200)


# --- a plain double submit of every create form -------------------------------------------------


@dataclass
class Surface:
    """One create form: where it is shown and posted, what it posts, and the rows it should add once."""

    form_url: str
    post_url: str
    data: dict
    rows: Callable[[], int]
    adds: int
    multipart: bool = False
    show_with_post: dict | None = None  # the form is shown by a POST (a grid action), not a GET
    preview: bytes | None = None  # an import: the form ("Importer N rader") is shown by uploading this file


def _csv(header: tuple, rows: list[tuple]) -> bytes:
    return ("\r\n".join([",".join(header)] + [",".join(row) for row in rows]) + "\r\n").encode()


def _surface(name: str, make_client, make_user, make_package, make_staff, bureau) -> Surface:
    if name == "new client":
        return Surface("/admin/clients/new/", "/admin/clients/new/", client_form(org_number=""), customers, 1)
    if name.startswith("add "):
        kind = PersonKind(name[4:])
        customer = make_client()
        data = {"first_name": "Kari", "last_name": "Nordmann", "email": "kari@kunde.example", "phone": "+47 1"}
        if kind is PersonKind.EXTERNAL_USER:
            data["end_date"] = (date.today() + timedelta(days=30)).isoformat()
        if kind is PersonKind.RESELLER_USER:
            data = {"employee": str(make_staff(bureau).id), "reseller_role": "accountant"}
        url = f"/admin/clients/people/add/{kind.value}/?id={customer.id}"
        return Surface(url, url, data, lambda: count(Person, Person.client_id == customer.id), 1)
    if name == "package":
        data = {"code": "CRM", "name": "CRM", "kind": "main", "rank": "1", "price": "149"}
        return Surface("/admin/packages/new/", "/admin/packages/new/", data, lambda: count(Package), 1)
    if name == "permission":
        data = {"code": "CRM_LES", "name": "CRM lese"}
        return Surface("/admin/permissions/new/", "/admin/permissions/new/", data, lambda: count(Permission), 1)
    if name == "customer template":
        data = {"name": "Svensk kundemal", "country_code": "SE", "language": "sv", "currency": "SEK"}
        return Surface("/admin/templates/new/", "/admin/templates/new/", data, lambda: count(CustomerTemplate), 1)
    if name == "package assignment":
        user, addon = make_user(make_client()), make_package(kind=PackageKind.ADDON)
        data = {"user": str(user.id), "package": str(addon.id), "valid_from": "2026-06-01"}
        url = "/admin/assignments/new/"
        return Surface(url, url, data, lambda: count(PackageAssignment), 1)
    if name == "client import":
        rows = [("", "Nystartet Kafé AS", "", "yes", "", "", "", "", ""), ("", "Annen Kafé AS", "", "no", *[""] * 5)]
        from services.client_import import HEADER

        url = "/admin/clients/import/"
        return Surface(url, url + "confirm/", {}, customers, 2, preview=_csv(HEADER, rows))
    if name == "person import":
        from services.person_import import HEADER

        customer = make_client()
        rows = [
            (customer.org_number, "user", "Kari", "Nordmann", "kari@kunde.example", "", "", "", "", "no"),
            (customer.org_number, "person", "Ola", "Nordmann", "", "", "", "", "", "no"),
        ]
        url = f"/admin/clients/people/import/?id={customer.id}"
        confirm_url = f"/admin/clients/people/import/confirm/?id={customer.id}"
        rows_of = lambda: count(Person, Person.client_id == customer.id)  # noqa: E731
        return Surface(url, confirm_url, {}, rows_of, 2, preview=_csv(HEADER, rows))
    if name == "grant access":
        employee, targets = make_staff(bureau), [make_client(), make_client()]
        rowids = [str(c.id) for c in targets]
        shown = {"action": "grant_access", "rowid": rowids}
        data = {**shown, "employee": str(employee.id), "role": "auditor", "grant": "1"}
        rows_of = lambda: count(User, User.employee_id == employee.id)  # noqa: E731
        url = "/admin/clients/action/"
        return Surface(url, url, data, rows_of, 2, show_with_post=shown)
    if name == "grant package":
        customer, addon = make_client(), make_package(kind=PackageKind.ADDON)
        users = [make_user(customer), make_user(customer)]
        url = "/admin/users/grant-package/?" + "&".join(f"id={u.id}" for u in users)
        data = {"package": str(addon.id), "valid_from": date.today().isoformat(), "grant": "1"}
        return Surface(url, url, data, lambda: count(PackageAssignment), 2)
    raise AssertionError(name)


SURFACES = [
    "new client",
    *(f"add {kind.value}" for kind in PersonKind),
    "package",
    "permission",
    "customer template",
    "package assignment",
    "client import",
    "person import",
    "grant access",
    "grant package",
]


def _post(client, surface: Surface, token: str):
    data = {**surface.data, "submission_token": token}
    if surface.multipart:
        data["file"] = (io.BytesIO(surface.data["file"]), "rader.csv")
        return client.post(surface.post_url, data=data, content_type="multipart/form-data")
    return client.post(surface.post_url, data=data)


@pytest.mark.parametrize("name", SURFACES)
def test_every_create_form_submitted_twice_creates_once(
    name, client, login_as, bureau, make_client, make_user, make_package, make_staff, tokens_required
):
    login_as("admin")
    surface = _surface(name, make_client, make_user, make_package, make_staff, bureau)
    before = surface.rows()
    if surface.preview is not None:
        shown = client.post(
            surface.form_url,
            data={"file": (io.BytesIO(surface.preview), "rader.csv")},
            content_type="multipart/form-data",
        )
        _action, fields = confirm_form(shown)
        surface.data = {key: value for key, value in fields.items() if key != "submission_token"}
    elif surface.show_with_post:
        shown = client.post(surface.form_url, data=surface.show_with_post)
    else:
        shown = client.get(surface.form_url)
    assert shown.status_code == 200
    token = token_of(page(shown))

    first = _post(client, surface, token)
    assert first.status_code in (200, 302), page(first)
    assert "is-invalid" not in page(first) and "alert-danger" not in page(first), page(first)
    assert surface.rows() == before + surface.adds

    second = _post(client, surface, token)
    assert second.status_code == 302
    assert surface.rows() == before + surface.adds  # nothing created twice
    landing = client.get(second.headers["Location"])
    assert landing.status_code == 200 and ALREADY_SENT in page(landing)
    if first.status_code == 302 and "/new/" not in surface.form_url:
        assert second.headers["Location"] == first.headers["Location"]  # the first result, again
    if surface.form_url.startswith("/admin/") and "/new/" in surface.form_url and name != "new client":
        # Flask-Admin's generic create: the repeat is shown the record the first one created.
        assert "/details/?id=" in second.headers["Location"]


# --- hostile tokens -------------------------------------------------------------------------------


def _hostile_tokens(app, staff: User, other: User) -> dict[str, str | None]:
    secret = app.config["SECRET_KEY"]
    good = submissions.issue_token(secret, user_id=staff.id, form="clients.create_view")
    return {
        "missing": None,
        "empty": "",
        "garbage": "not-a-token",
        "NUL": good[:10] + "\x00" + good[10:],
        "10 kB": "x" * 10_000,
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "another user's": submissions.issue_token(secret, user_id=other.id, form="clients.create_view"),
        "another form's": submissions.issue_token(secret, user_id=staff.id, form="permissions.create_view"),
        "signed with another key": submissions.issue_token("x" * 40, user_id=staff.id, form="clients.create_view"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "empty",
        "garbage",
        "NUL",
        "10 kB",
        "tampered",
        "another user's",
        "another form's",
        "signed with another key",
    ],
)
def test_a_form_with_a_bad_token_saves_nothing_and_comes_back_with_a_good_one(
    app, client, login, bureau, make_staff, kind, tokens_required
):
    staff, other = make_staff(bureau), make_staff(bureau)
    login(staff)
    token = _hostile_tokens(app, staff, other)[kind]
    data = client_form() if token is None else client_form(submission_token=token)
    response = client.post("/admin/clients/new/", data=data)
    assert response.status_code == 200
    assert customers() == 0 and mails("consent") == 0 and count(SubmissionToken) == 0
    assert "ingenting ble lagret" in page(response)
    fresh = token_of(page(response))
    assert fresh != token
    assert client.post("/admin/clients/new/", data=client_form(submission_token=fresh)).status_code == 302
    assert customers() == 1


def test_an_expired_form_is_refused_with_its_own_message(client, login_as, monkeypatch, tokens_required):
    login_as("staff")
    token = token_of(page(client.get("/admin/clients/new/")))
    monkeypatch.setattr(submissions, "TOKEN_LIFETIME", timedelta(seconds=-1))
    response = client.post("/admin/clients/new/", data=client_form(submission_token=token))
    assert response.status_code == 200 and "åpent for lenge" in page(response)
    assert customers() == 0


def test_a_refused_form_keeps_its_token_for_the_corrected_submission(client, login_as, tokens_required):
    """A submission refused by a check stores nothing: the same showing can be corrected and sent, once."""
    login_as("staff")
    token = token_of(page(client.get("/admin/clients/new/")))
    refused = client.post("/admin/clients/new/", data=client_form(contact_email="", submission_token=token))
    assert refused.status_code == 200 and token_of(page(refused)) == token
    assert customers() == 0 and count(SubmissionToken) == 0
    assert client.post("/admin/clients/new/", data=client_form(submission_token=token)).status_code == 302
    assert client.post("/admin/clients/new/", data=client_form(submission_token=token)).status_code == 302
    assert customers() == 1 and mails("consent") == 1


def test_a_duplicate_org_number_refusal_stores_no_token(client, login_as, make_client, tokens_required):
    login_as("staff")
    make_client(org_number=ORG_NUMBER)
    token = token_of(page(client.get("/admin/clients/new/")))
    response = client.post("/admin/clients/new/", data=client_form(org_number=ORG_NUMBER, submission_token=token))
    assert response.status_code == 200 and DUPLICATE_ORG_NUMBER in page(response)
    assert count(SubmissionToken) == 0 and customers() == 1


def test_tokens_of_another_bureaus_user_cannot_reach_this_bureaus_result(
    app, client, login, bureau, make_bureau, make_staff, tokens_required
):
    """A token is signed for one user: another bureau's staff posting it is refused, never sent to the result."""
    mine, theirs = make_staff(bureau), make_staff(make_bureau())
    login(mine)
    token = token_of(page(client.get("/admin/clients/new/")))
    assert client.post("/admin/clients/new/", data=client_form(submission_token=token)).status_code == 302
    browser = app.test_client()
    browser.post("/login", data={"email": theirs.person.email, "password": PASSWORD})
    response = browser.post("/admin/clients/new/", data=client_form(submission_token=token))
    assert response.status_code == 200 and "ingenting ble lagret" in page(response)
    assert count(Client, Client.bureau_id == theirs.bureau_id, Client.is_internal.is_(False)) == 0


# --- lost races, made deterministic -----------------------------------------------------------------


def test_a_lost_race_on_the_org_number_gives_the_pre_checks_message(client, login_as, make_client, monkeypatch):
    """The pre-check saw nothing (the twin committed just after it): the unique constraint refuses, and the user
    reads the same sentence and link as the pre-check's, with no e-mail left behind."""
    from services import clients

    login_as("staff")
    existing = make_client(org_number=ORG_NUMBER)
    real = clients.find_duplicate_org_number
    calls = []

    def blind_first_time(*args, **kwargs):
        calls.append(args)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(clients, "find_duplicate_org_number", blind_first_time)
    people_before = count(Person)
    response = client.post("/admin/clients/new/", data=client_form(org_number=ORG_NUMBER))
    assert response.status_code == 200
    assert DUPLICATE_ORG_NUMBER in page(response) and f"/admin/clients/manage/?id={existing.id}" in page(response)
    assert customers() == 1 and mails("consent") == 0 and count(Person) == people_before


def test_a_lost_race_on_a_persons_e_mail_gives_the_pre_checks_message(
    client, login_as, make_client, make_person, monkeypatch
):
    from services import people

    login_as("staff")
    customer = make_client()
    make_person(customer, email="kari@kunde.example")
    # The pre-check (with the e-mail's normalising) saw no twin: only the database's constraint is left.
    monkeypatch.setattr(people, "check_person", lambda session, person: None)
    users_before = count(User)
    response = client.post(
        f"/admin/clients/people/add/user/?id={customer.id}",
        data={"first_name": "Kari", "last_name": "Nordmann", "email": "kari@kunde.example"},
    )
    assert response.status_code == 200 and DUPLICATE_EMAIL in page(response)
    assert count(Person, Person.client_id == customer.id) == 1 and count(User) == users_before


def test_a_lost_race_on_giving_access_counts_as_already_given(
    client, login_as, bureau, make_client, make_staff, monkeypatch
):
    from services import access
    from services.access import grant_employee_access

    login_as("staff")
    employee, customer = make_staff(bureau), make_client()
    grant_employee_access(db.session, bureau.id, employee, [customer], access.ResellerRole.AUDITOR)
    db.session.commit()
    monkeypatch.setattr(access, "_email_taken", lambda *args: False)
    real, calls = access._has_bureau_user, []

    def blind_first_time(*args):
        calls.append(args)
        return len(calls) > 1 and real(*args)

    monkeypatch.setattr(access, "_has_bureau_user", blind_first_time)
    response = client.post(
        "/admin/clients/action/",
        data={
            "action": "grant_access",
            "rowid": [str(customer.id)],
            "employee": str(employee.id),
            "role": "auditor",
            "grant": "1",
        },
    )
    assert response.status_code == 302
    assert count(User, User.employee_id == employee.id) == 1
    assert "allerede" in page(client.get(response.headers["Location"]))


# --- the stored tokens --------------------------------------------------------------------------------


def test_a_twin_claim_after_the_first_committed_is_sent_to_its_result(app, bureau, make_staff):
    staff = make_staff(bureau)
    used = submissions.claim(db.session, "n" * 22, bureau_id=bureau.id, user_id=staff.id, form="f")
    submissions.record_result(db.session, used, "/admin/clients/manage/?id=7")
    db.session.commit()
    with pytest.raises(submissions.AlreadySubmitted) as raised:
        submissions.claim(db.session, "n" * 22, bureau_id=bureau.id, user_id=staff.id, form="f")
    assert raised.value.result_url == "/admin/clients/manage/?id=7"
    db.session.rollback()
    assert count(SubmissionToken) == 1


def test_old_tokens_are_forgotten_by_the_worker(app, bureau, make_staff):
    from cli_outbox import forget_old_submission_tokens

    staff = make_staff(bureau)
    old = submissions.claim(db.session, "old", bureau_id=bureau.id, user_id=staff.id, form="f")
    old.used_at = old.used_at - submissions.TOKEN_LIFETIME - timedelta(days=1)
    submissions.claim(db.session, "new", bureau_id=bureau.id, user_id=staff.id, form="f")
    db.session.commit()
    forget_old_submission_tokens()
    assert set(db.session.scalars(select(SubmissionToken.nonce))) == {"new"}


def test_a_deleted_user_leaves_its_tokens_without_an_owner(app, bureau, make_staff, make_client, make_user):
    user = make_user(make_client())
    submissions.claim(db.session, "u", bureau_id=bureau.id, user_id=user.id, form="f")
    db.session.commit()
    db.session.delete(user)
    db.session.commit()
    assert db.session.scalar(select(SubmissionToken.user_id)) is None
