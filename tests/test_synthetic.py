"""The synthetic bulk loader and ``flask seed-synthetic``, on SQLite and on PostgreSQL.

Self-contained: every test builds its own app and database (a SQLite file, or a throwaway
PostgreSQL database that is dropped afterwards) instead of using the shared fixtures.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from stdnum.no import orgnr

from app import create_app
from cli_synthetic import seed_synthetic_command
from extensions import db
from models import (
    AlertKind,
    AuditEntry,
    Bureau,
    Client,
    OutboxMessage,
    Package,
    PackageAssignment,
    PackageKind,
    Person,
    RegistryAlert,
    User,
)
from services.errors import DomainError
from services.synthetic import (
    SYNTHETIC_BUREAU_NAME,
    SYNTHETIC_BUREAU_ORG_NUMBER,
    alerts_before,
    persons_before,
    seed_synthetic,
)

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _throwaway_postgres() -> Iterator[str]:
    import psycopg

    name = f"synth_test_{uuid.uuid4().hex[:10]}"
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


@pytest.fixture(params=["sqlite", "postgresql"])
def synthetic_db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'synthetic.db'}"
    else:
        yield from _throwaway_postgres()


@pytest.fixture
def synthetic_app(synthetic_db_url: str) -> Iterator[Flask]:
    """An app on an empty schema, with the command registered (cli.py may not have it yet)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": synthetic_db_url, "TESTING": True})
    app.cli.add_command(seed_synthetic_command)
    with app.app_context():
        db.create_all()
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def count(model: type[db.Model], *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def run_seed(app: Flask, *args: str) -> dict[str, int | float]:
    db.session.rollback()  # end this session's read snapshot, as a request would, so the load is visible after
    result = app.test_cli_runner().invoke(args=["seed-synthetic", *args])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    return json.loads(result.stdout.strip().splitlines()[-1])


def org_numbers() -> list[str]:
    return list(db.session.scalars(select(Client.org_number).order_by(Client.id)))


def test_seed_synthetic_loads_clients_people_and_packages(synthetic_app: Flask) -> None:
    summary = run_seed(synthetic_app, "--clients", "50")

    assert summary["clients"] == 50 and summary["bureaus"] == 1 and summary["packages"] == 6
    assert summary["seconds"] >= 0
    bureau = db.session.scalars(select(Bureau)).one()
    assert (bureau.org_number, bureau.name) == (SYNTHETIC_BUREAU_ORG_NUMBER, SYNTHETIC_BUREAU_NAME)
    assert orgnr.is_valid(bureau.org_number)
    persons = count(Person)
    assert 120 <= persons <= 180 and persons == summary["persons"] == persons_before(50)
    assert count(Client) == 50
    assert count(User) == summary["users"] == persons
    assert count(PackageAssignment) == summary["package_assignments"] == 2 * persons
    assert db.session.scalar(select(func.count()).where(Client.is_demo)) == 1

    # Every user: person kind "user", one main package and one add-on, all in the bureau.
    kinds = db.session.execute(
        select(PackageAssignment.user_id, PackageAssignment.package_kind, func.count()).group_by(
            PackageAssignment.user_id, PackageAssignment.package_kind
        )
    ).all()
    assert len(kinds) == 2 * persons and {n for _, _, n in kinds} == {1}
    assert {kind for _, kind, _ in kinds} == {PackageKind.MAIN, PackageKind.ADDON}
    assert set(db.session.scalars(select(User.person_kind).distinct())) == {"user"}
    assert {"active", "invited"} <= set(db.session.scalars(select(User.status).distinct()))
    assert set(db.session.scalars(select(PackageAssignment.bureau_id).distinct())) == {bureau.id}
    assert db.session.scalar(select(func.count()).where(PackageAssignment.valid_to.is_not(None))) > 0

    numbers = org_numbers()
    assert all(orgnr.is_valid(number) for number in numbers) and len(set(numbers)) == 50

    second = run_seed(synthetic_app, "--clients", "50")
    assert (second["bureaus"], second["packages"], second["clients"]) == (0, 0, 50)
    numbers = org_numbers()
    assert count(Client) == 100 and len(set(numbers)) == 100
    assert all(orgnr.is_valid(number) for number in numbers)
    assert count(User) == count(Person) == 2 * persons

    # Ordinary inserts still get fresh ids (PostgreSQL's sequences were moved past the loaded ones).
    db.session.add(Client(bureau_id=bureau.id, name="Etter lasting AS"))
    db.session.commit()
    assert db.session.scalar(select(func.max(Client.id))) == 101


def test_seed_synthetic_refuses_an_unknown_bureau(synthetic_app: Flask) -> None:
    result = synthetic_app.test_cli_runner().invoke(args=["seed-synthetic", "--clients", "5", "--bureau", "123456785"])

    assert result.exit_code != 0
    assert "No bureau has org number '123456785'" in result.output
    assert count(Client) == 0


def test_parallel_batches_into_a_given_bureau(synthetic_app: Flask) -> None:
    bureau = Bureau(org_number="923456783", name="Nordlys Regnskap AS")
    db.session.add(bureau)
    db.session.flush()
    main = Package(bureau_id=bureau.id, code="M", name="Hoved", kind=PackageKind.MAIN, rank=1, price=Decimal(1))
    addon = Package(bureau_id=bureau.id, code="T", name="Tillegg", kind=PackageKind.ADDON, price=Decimal(1))
    db.session.add_all([main, addon])
    db.session.commit()

    summary = seed_synthetic(db.engine, clients=25, bureau_org_number="923 456 783", batch_size=4, workers=2)

    assert (summary["bureau_id"], summary["bureaus"], summary["packages"]) == (bureau.id, 0, 0)
    assert count(Client) == 25 and db.session.scalar(select(func.max(Client.id))) == 25
    assert count(Person) == persons_before(25) == db.session.scalar(select(func.max(Person.id)))
    assert count(PackageAssignment) == 2 * count(User) == 2 * persons_before(25)
    assert set(db.session.scalars(select(PackageAssignment.package_id).distinct())) == {main.id, addon.id}
    numbers = org_numbers()
    assert numbers == sorted(numbers) and len(set(numbers)) == 25
    if db.engine.dialect.name == "sqlite":  # the unsafe sync setting was only for the load
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"  # the app's own setting
        assert db.session.execute(text("PRAGMA synchronous")).scalar() != 0


def test_a_bureau_without_add_ons_is_refused(synthetic_app: Flask) -> None:
    bureau = Bureau(org_number="923456783", name="Nordlys Regnskap AS")
    db.session.add(bureau)
    db.session.commit()
    org_number = bureau.org_number
    db.session.rollback()  # SQLite: leave the write lock to the loader's own connection

    with pytest.raises(DomainError, match="one active main package and one active add-on"):
        seed_synthetic(db.engine, clients=1, bureau_org_number=org_number)
    assert count(Client) == 0


def test_history_and_e_mails_come_with_the_clients(synthetic_app: Flask) -> None:
    """Each client brings two audit entries and a consent e-mail, each user an audit entry and an invitation: all in
    the client's bureau, about the rows just loaded, already sent or failed (nothing for a worker to send), and in
    batches on parallel connections the ids still fit together; the planner has statistics afterwards."""
    first = seed_synthetic(db.engine, clients=5)  # the synthetic bureau's rows first
    bureau = Bureau(org_number="923456783", name="Nordlys Regnskap AS")
    db.session.add(bureau)
    db.session.flush()
    db.session.add_all(
        [
            Package(bureau_id=bureau.id, code="M", name="Hoved", kind=PackageKind.MAIN, rank=1, price=Decimal(1)),
            Package(bureau_id=bureau.id, code="T", name="Tillegg", kind=PackageKind.ADDON, price=Decimal(1)),
        ]
    )
    db.session.commit()
    summary = seed_synthetic(db.engine, clients=13, bureau_org_number="923456783", batch_size=4, workers=2)
    users = persons_before(13)

    assert summary["audit_entries"] == 2 * 13 + users and summary["outbox_messages"] == 13 + users
    loaded = AuditEntry.entity.in_(["clients", "users"])
    assert count(AuditEntry, loaded) == first["audit_entries"] + summary["audit_entries"]
    assert count(OutboxMessage) == first["outbox_messages"] + summary["outbox_messages"]
    clients = dict(db.session.execute(select(Client.id, Client.bureau_id)).all())
    user_bureaus = dict(db.session.execute(select(User.id, User.bureau_id)).all())
    for entity, entity_id, owner in db.session.execute(
        select(AuditEntry.entity, AuditEntry.entity_id, AuditEntry.bureau_id).where(loaded)
    ):
        assert (clients if entity == "clients" else user_bureaus)[entity_id] == owner  # a row of the same bureau
    assert count(AuditEntry, loaded, AuditEntry.bureau_id == bureau.id) == summary["audit_entries"]
    assert len(set(db.session.scalars(select(AuditEntry.at)))) > 1  # spread in time, so the log has an order

    messages = db.session.execute(
        select(OutboxMessage.kind, OutboxMessage.client_id, OutboxMessage.bureau_id, OutboxMessage.status)
    ).all()
    assert all(clients[client_id] == owner for _kind, client_id, owner, _status in messages)
    assert {status for *_, status in messages} <= {"sent", "failed"}
    mine = [kind for kind, _client, owner, _status in messages if owner == bureau.id]
    assert mine.count("consent") == 13 and mine.count("invitation") == users
    invited = set(db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.kind == "invitation")))
    assert invited == set(db.session.scalars(select(Person.email)))
    if db.engine.dialect.name == "sqlite":
        assert db.session.scalar(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'outbox_messages'")) > 0


def test_register_alerts_come_with_the_clients(synthetic_app: Flask) -> None:
    """One client in 200 has a register alert of its own, in its bureau, naming it by its number; one in ten of those
    is open, so the alerts grid and Hjem have rows at scale. In batches that do not start at a multiple of 200 the
    ids and clients still fit together."""
    summary = seed_synthetic(db.engine, clients=1_000, batch_size=333)
    assert summary["registry_alerts"] == alerts_before(1_000) == 5
    alerts = db.session.execute(
        select(RegistryAlert.id, RegistryAlert.client_id, RegistryAlert.org_number, RegistryAlert.bureau_id)
    ).all()
    assert len(alerts) == 5 and len({alert_id for alert_id, *_ in alerts}) == 5
    clients = {row.id: row for row in db.session.execute(select(Client.id, Client.org_number, Client.bureau_id))}
    first_client = min(clients)
    for _alert_id, client_id, org_number, bureau_id in alerts:
        assert (client_id - first_client) % 200 == 77
        assert clients[client_id].org_number == org_number and clients[client_id].bureau_id == bureau_id
    open_ids = db.session.scalars(select(RegistryAlert.id).where(RegistryAlert.acknowledged_at.is_(None))).all()
    assert len(open_ids) == 1
    assert {kind for kind in db.session.scalars(select(RegistryAlert.kind))} == set(list(AlertKind)[:5])
