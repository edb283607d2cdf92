"""Unbound extension singletons, bound to an app in ``create_app``."""

import sqlite3
import threading
from collections import deque

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
from sqlalchemy.pool import Pool

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


# How long a writer waits in this process's queue for SQLite's write lock before asking SQLite directly (which then
# waits up to busy_timeout more). Under gunicorn's 30 s worker timeout.
SQLITE_WRITE_TURN_WAIT = 15.0
_TURN_KEY = "sqlite_write_turn"


class _WriteTurns:
    """First come, first served turns at one SQLite file's write lock for the threads of this process.

    SQLite's own busy handler polls with growing sleeps (up to 100 ms), so a writer that has waited long polls
    least often and loses the lock again and again to newcomers: under 50 simultaneous logins some waited past any
    busy timeout ("database is locked") while the lock was free most of the time. Here a waiting thread sleeps
    on its own event and is handed the turn when the writer before it ends its transaction. The turn is only an
    ordering aid: SQLite's lock stays the authority (other processes take it through busy_timeout), and a
    thread that waited ``SQLITE_WRITE_TURN_WAIT`` in vain (a very long write, or a turn leaked by a connection
    that was never returned) goes on to ask SQLite itself, as it did before there were turns.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None  # thread ident holding the turn
        self._waiting: deque[tuple[int, threading.Event]] = deque()

    def take(self, timeout: float) -> bool:
        """Wait for this thread's turn; False when it did not come within ``timeout`` (or is already ours)."""
        me = threading.get_ident()
        with self._lock:
            if self._owner is None:
                self._owner = me
                return True
            if self._owner == me:
                return False  # a second connection of the same thread: SQLite decides, as it always did
            ticket = (me, threading.Event())
            self._waiting.append(ticket)
        if ticket[1].wait(timeout):
            return True
        with self._lock:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
                return False
        return True  # handed over between the timeout and the lock

    def give_back(self) -> None:
        with self._lock:
            if self._waiting:
                owner, event = self._waiting.popleft()
                self._owner = owner
                event.set()
            else:
                self._owner = None


_turns: dict[str, _WriteTurns] = {}
_turns_lock = threading.Lock()


def _turns_for(database: str) -> _WriteTurns:
    with _turns_lock:
        return _turns.setdefault(database, _WriteTurns())


def _give_back_turn(info: dict) -> None:
    turns = info.pop(_TURN_KEY, None)
    if turns is not None:
        turns.give_back()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection) -> None:
    """Writers queue for SQLite's one write lock up front; page views read a snapshot without blocking anyone.

    A deferred transaction that has read and then writes after another connection committed fails at once
    ("database is locked") instead of waiting its turn, so anything that may write (a POST, a command, the
    outbox worker) begins IMMEDIATE, after waiting for its turn among this process's writers (``_WriteTurns``).
    GET and HEAD requests, and connections opened with the execution option ``read_only_snapshot`` (the billing
    export), only read.
    """
    if connection.dialect.name != "sqlite":
        return
    reading = connection.get_execution_options().get("read_only_snapshot") or (
        has_request_context() and request.method in ("GET", "HEAD")
    )
    if reading:
        connection.exec_driver_sql("BEGIN")
        return
    database = connection.engine.url.database or ""
    if database in ("", ":memory:"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    turns = _turns_for(database)
    if turns.take(SQLITE_WRITE_TURN_WAIT):
        connection.info[_TURN_KEY] = turns
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _give_back_turn(connection.info)
        raise


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _sqlite_end(connection) -> None:
    """The transaction ends here (COMMIT or ROLLBACK follows at once): the next writer in this process may begin."""
    if connection.dialect.name == "sqlite":
        _give_back_turn(connection.info)


@event.listens_for(Pool, "reset")
def _sqlite_connection_returned(dbapi_connection, connection_record, reset_state) -> None:
    """A connection returned, lost or closed in mid-transaction gives its turn back too."""
    if connection_record is not None:
        _give_back_turn(connection_record.info)


@event.listens_for(Pool, "invalidate")
def _sqlite_connection_lost(dbapi_connection, connection_record, exception) -> None:
    _sqlite_connection_returned(dbapi_connection, connection_record, None)


@event.listens_for(Pool, "close")
def _sqlite_connection_closed(dbapi_connection, connection_record) -> None:
    _sqlite_connection_returned(dbapi_connection, connection_record, None)
