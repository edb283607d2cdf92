"""Fixtures: an app per test on SQLite or PostgreSQL, a test client, factories and logins.

The whole suite runs once per database: SQLite by default, PostgreSQL when
``TEST_DATABASE=postgresql`` (``make test`` runs both). Under ``CI=true`` an unreachable
PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import event, text

from app import create_app
from extensions import db
from models import (
    Bureau,
    Client,
    CustomerTemplate,
    Package,
    PackageAssignment,
    PackageKind,
    Permission,
    Person,
    PersonKind,
    StaffRole,
    User,
    UserStatus,
)
from services.orgnumbers import valid_numbers

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct-horse-battery"
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123"

# Apps built without a mapping (the schema, migrations, CLI subprocesses) run under production rules with this key.
os.environ.setdefault("SECRET_KEY", TEST_SECRET_KEY)


def _postgres_database() -> Iterator[str]:
    import psycopg

    name = f"klient_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    if os.environ.get("TEST_DATABASE") == "postgresql":
        yield from _postgres_database()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def _schema(database_url: str) -> Iterator[None]:
    """Create the schema once per run (create_all also installs the database rules)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.session.remove()
        db.engine.dispose()
    yield


def _empty_all_tables() -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
            # Planner statistics of another test's few rows would steer this test's plans (the worker's ANALYZE
            # leaves them): every test starts, like a fresh database, without any.
            if conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar():
                conn.execute(text("DELETE FROM sqlite_stat1"))
                conn.execute(text("ANALYZE sqlite_schema"))


@pytest.fixture(scope="session")
def registry_emulator() -> Iterator[Any]:
    """The company register's emulator: a real HTTP server on loopback, shared by the run."""
    from services.registry.emulator import start_emulator

    with start_emulator() as emulator:
        yield emulator


@pytest.fixture
def app(database_url: str, _schema, registry_emulator, tmp_path) -> Iterator[Any]:
    registry_emulator.reset()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "BRREG_BASE_URL": registry_emulator.base_url,
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SUBMISSION_TOKEN_REQUIRED": False,  # like CSRF; tests/faults/test_concurrent_creates.py requires it
            "SECRET_KEY": TEST_SECRET_KEY,
            "PUBLIC_BASE_URL": "http://testserver",
            "MAIL_SERVER": None,
            "IMPORT_UPLOAD_DIR": str(tmp_path / "imports"),
        }
    )
    with app.app_context():
        yield app
        db.session.remove()
        _empty_all_tables()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def dialect(app) -> str:
    return db.engine.dialect.name


# --- factories --------------------------------------------------------------------------------

_numbers = valid_numbers(70_000_000)
_seq = itertools.count(1)


@pytest.fixture
def make_bureau(app) -> Callable[..., Bureau]:
    def make(**overrides: Any) -> Bureau:
        bureau = Bureau(**{"org_number": next(_numbers), "name": f"Byrå {next(_seq)} AS", **overrides})
        db.session.add(bureau)
        internal = Client(bureau=bureau, name=bureau.name, org_number=bureau.org_number, is_internal=True)
        db.session.add(internal)
        db.session.commit()
        return bureau

    return make


@pytest.fixture
def bureau(make_bureau) -> Bureau:
    return make_bureau(name="Testbyrå AS")


def internal_client(bureau: Bureau) -> Client:
    return db.session.query(Client).filter_by(bureau_id=bureau.id, is_internal=True).one()


@pytest.fixture
def make_staff(app) -> Callable[..., User]:
    def make(bureau: Bureau, role: StaffRole = StaffRole.STAFF, **overrides: Any) -> User:
        n = next(_seq)
        person = Person(
            bureau_id=bureau.id,
            client=internal_client(bureau),
            kind=PersonKind.USER,
            first_name=overrides.pop("first_name", f"Ansatt{n}"),
            last_name="Testesen",
            email=overrides.pop("email", f"ansatt{n}@byra{bureau.id}.example"),
        )
        overrides.setdefault("status", UserStatus.ACTIVE)
        user = User(bureau_id=bureau.id, person=person, staff_role=role, **overrides)
        user.set_password(PASSWORD)
        db.session.add_all([person, user])
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_client(app, bureau) -> Callable[..., Client]:
    def make(**overrides: Any) -> Client:
        target = overrides.pop("bureau", bureau)
        values = {"name": f"Kunde {next(_seq)} AS", "org_number": next(_numbers), "bureau_id": target.id}
        values.update(overrides)
        client = Client(**values)
        db.session.add(client)
        db.session.commit()
        return client

    return make


@pytest.fixture
def make_person(app) -> Callable[..., Person]:
    def make(client: Client, kind: PersonKind = PersonKind.USER, **overrides: Any) -> Person:
        n = next(_seq)
        values = {
            "bureau_id": client.bureau_id,
            "client": client,
            "kind": kind,
            "first_name": f"Person{n}",
            "last_name": "Kundesen",
            "email": None if kind is PersonKind.PERSON else f"person{n}@kunde.example",
        }
        values.update(overrides)
        person = Person(**values)
        db.session.add(person)
        db.session.commit()
        return person

    return make


@pytest.fixture
def make_user(app, make_person) -> Callable[..., User]:
    def make(client: Client, kind: PersonKind = PersonKind.USER, **overrides: Any) -> User:
        person = overrides.pop("person", None) or make_person(client, kind)
        if kind is PersonKind.EXTERNAL_USER:
            overrides.setdefault("end_date", date.today() + timedelta(days=30))
        user = User(
            bureau_id=client.bureau_id, person=person, status=overrides.pop("status", UserStatus.ACTIVE), **overrides
        )
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_package(app, bureau) -> Callable[..., Package]:
    def make(**overrides: Any) -> Package:
        target = overrides.pop("bureau", bureau)
        kind = overrides.pop("kind", PackageKind.MAIN)
        values = {
            "bureau_id": target.id,
            "code": f"P{next(_seq)}",
            "name": "Pakke",
            "kind": kind,
            "rank": 1 if kind is PackageKind.MAIN else None,
            "price": Decimal("100.00"),
        }
        values.update(overrides)
        package = Package(**values)
        db.session.add(package)
        db.session.commit()
        return package

    return make


@pytest.fixture
def assign(app) -> Callable[..., PackageAssignment]:
    def make(user: User, package: Package, valid_from: date | None = None, valid_to: date | None = None):
        assignment = PackageAssignment(
            bureau_id=user.bureau_id,
            user=user,
            package=package,
            valid_from=valid_from or date.today(),
            valid_to=valid_to,
        )
        db.session.add(assignment)
        db.session.commit()
        return assignment

    return make


@pytest.fixture
def make_template(app, bureau) -> Callable[..., CustomerTemplate]:
    def make(**overrides: Any) -> CustomerTemplate:
        template = CustomerTemplate(**{"bureau_id": bureau.id, "name": f"Mal {next(_seq)}", **overrides})
        db.session.add(template)
        db.session.commit()
        return template

    return make


@pytest.fixture
def make_permission(app, bureau) -> Callable[..., Permission]:
    def make(**overrides: Any) -> Permission:
        permission = Permission(**{"bureau_id": bureau.id, "code": f"R{next(_seq)}", "name": "Rett", **overrides})
        db.session.add(permission)
        db.session.commit()
        return permission

    return make


# --- logins -----------------------------------------------------------------------------------


@pytest.fixture
def login(client) -> Callable[[User], Any]:
    def do_login(user: User):
        response = client.post("/login", data={"email": user.person.email, "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return do_login


@pytest.fixture
def login_as(login, bureau, make_staff) -> Callable[[str], Any]:
    """Log the test client in as a fresh staff member of ``bureau``: role "admin" or "staff"."""

    def do_login(role: str = "staff"):
        user = make_staff(bureau, StaffRole(role))
        login(user)
        return user

    return do_login


# --- query counting ---------------------------------------------------------------------------


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app) -> Callable[[], Any]:
    """Use as ``with count_queries() as counter:``; counts every statement sent to the database."""
    from contextlib import contextmanager

    @contextmanager
    def counting():
        counter = QueryCounter()
        event.listen(db.engine, "before_cursor_execute", counter)
        try:
            yield counter
        finally:
            event.remove(db.engine, "before_cursor_execute", counter)

    return counting


# --- a real SMTP server on loopback -----------------------------------------------------------

SENDER = "Klientadministrasjon <noreply@klient.example>"


class RecordingHandler:
    """Keeps every accepted envelope; can be told to refuse with an SMTP reply, or to pause before accepting."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.reject_data: str | None = None
        self.reject_rcpt: str | None = None
        self.delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_rcpt:
            return self.reject_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reject_data:
            return self.reject_data
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.handler = RecordingHandler()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self) -> list[EmailMessage]:
        return [message_from_bytes(e.content, policy=policy.default) for e in self.handler.envelopes]


@pytest.fixture
def smtp(app):
    server = SmtpServer()
    server.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_DEFAULT_SENDER=SENDER, MAIL_TIMEOUT=5)
    try:
        yield server
    finally:
        server.stop()


# --- background jobs --------------------------------------------------------------------------


@pytest.fixture
def run_jobs(app) -> Callable[..., int]:
    """Run every due background job to its end now, in a session of its own, as the jobs worker would."""
    from services.jobs import run_until_idle

    def run(**kwargs: Any) -> int:
        db.session.commit()  # the test's own transaction must not hold SQLite's lock while the "worker" writes
        claims = run_until_idle(app, **kwargs)
        db.session.expire_all()
        return claims

    return run
