"""Unbound extension singletons, bound to an app in ``create_app``."""

import sqlite3

from flask import has_request_context, request
from flask_babel import Babel
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

# Named constraints keep Alembic migrations portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
mail = Mail()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite enforces foreign keys only when asked, per connection; wait for locks instead of failing.

    The driver's own transaction handling is switched off so that SQLAlchemy emits BEGIN itself (see
    ``_sqlite_begin``): only then do SAVEPOINTs work and does a read-only transaction see one snapshot.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 10000")
        # Readers and one writer (the web app, the outbox worker, a CLI command) do not block each other.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()
        # Case folding for searches of the small tables (services/search.py): SQLite's lower() knows ASCII only.
        dbapi_connection.create_function("search_fold", 1, _search_fold, deterministic=True)


def _search_fold(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection) -> None:
    """Writers queue for SQLite's one write lock up front; page views read a snapshot without blocking anyone.

    A deferred transaction that has read and then writes after another connection committed fails at once
    ("database is locked") instead of waiting its turn, so anything that may write (a POST, a command, the
    outbox worker) begins IMMEDIATE. GET and HEAD requests, and connections opened with the execution option
    ``read_only_snapshot`` (the billing export), only read.
    """
    if connection.dialect.name != "sqlite":
        return
    reading = connection.get_execution_options().get("read_only_snapshot") or (
        has_request_context() and request.method in ("GET", "HEAD")
    )
    connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")
