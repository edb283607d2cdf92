"""The Alembic migrations build exactly the schema the models describe, rules included."""

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from app import create_app
from extensions import db
from models.search import include_name
from tests.conftest import PG_ADMIN_URL


@pytest.fixture
def empty_database_url(tmp_path):
    if os.environ.get("TEST_DATABASE") != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    import psycopg

    name = f"klient_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def assert_demo_flag_is_permanent() -> None:
    with db.engine.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO bureaus (org_number, name, version, created_at)"
                " VALUES ('974760673', 'B', 1, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO clients (bureau_id, name, is_internal, is_demo, company_lookup_enabled,"
                " custom_invoice_email_enabled, version, created_at)"
                " SELECT id, 'Demo AS', false, true, false, false, 1, CURRENT_TIMESTAMP FROM bureaus"
            )
        )
        with pytest.raises(IntegrityError, match="demo_flag_is_permanent"):
            conn.execute(text("UPDATE clients SET is_demo = false"))
        conn.rollback()


def test_upgrade_matches_models_and_installs_rules(empty_database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        try:
            upgrade()
            with db.engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"include_name": include_name})
                diff = compare_metadata(context, db.metadata)
                assert diff == [], diff
            assert_demo_flag_is_permanent()
            # One step down and up again keeps the rules (SQLite rebuilds tables for some changes).
            downgrade(revision="-1")
            assert_demo_flag_is_permanent()
            upgrade()
            assert_demo_flag_is_permanent()
            downgrade(revision="base")
            with db.engine.connect() as conn:
                assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        finally:
            db.session.remove()
            db.engine.dispose()
