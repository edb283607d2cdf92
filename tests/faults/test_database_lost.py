"""The database lost in the middle of a request: a Norwegian page that needs nothing from the database, 503, the
request id on the page, in the ``X-Request-Id`` header and in the log line of the failure; nothing saved."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from extensions import db
from models import Client, OutboxMessage, Package

NEW_CLIENT = {
    "name": "Tapt Forbindelse AS",
    "contact_first_name": "Kari",
    "contact_last_name": "Nordmann",
    "contact_email": "kari@tapt.example",
    "contact_role": "daglig_leder",
    "business_country_code": "NO",
    "postal_country_code": "NO",
}
_REFERENCE = re.compile(r"Feilreferanse: ([0-9a-f]{12})")


def _raise_lost_connection(dialect: str) -> None:
    if dialect == "postgresql":
        import psycopg

        raise psycopg.OperationalError("server closed the connection unexpectedly")
    raise sqlite3.OperationalError("disk I/O error")


def _terminate_backend(cursor) -> None:
    """What a restart or a failover does to the connection: PostgreSQL ends its backend, from another connection."""
    import psycopg

    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (cursor.connection.info.backend_pid,))


@pytest.fixture
def cut_database(app, dialect) -> Callable[..., object]:
    """``with cut_database(on="INSERT INTO clients", how="raise"|"terminate"):`` the first statement starting so
    fails as a lost connection: the driver raises one (either engine), or PostgreSQL's backend is terminated."""

    @contextmanager
    def cutting(on: str, how: str = "raise") -> Iterator[list[str]]:
        fired: list[str] = []

        def do_execute(cursor, statement, parameters, context):
            if fired or not statement.lstrip().upper().startswith(on.upper()):
                return None
            fired.append(statement)
            if how == "terminate":
                _terminate_backend(cursor)
                return None  # the statement now goes to a backend that is gone
            _raise_lost_connection(dialect)

        event.listen(db.engine, "do_execute", do_execute)
        try:
            yield fired
        finally:
            event.remove(db.engine, "do_execute", do_execute)

    return cutting


def _assert_outage_page(response, caplog) -> str:
    body = response.get_data(as_text=True)
    assert response.status_code == 503, body[-800:]
    assert "Databasen svarer ikke" in body and "ingenting ble lagret" in body
    for leak in ("Traceback", "INSERT ", "UPDATE ", "psycopg", "sqlite3", "disk I/O"):
        assert leak not in body
    reference = _REFERENCE.search(body)
    assert reference, body
    request_id = reference.group(1)
    assert response.headers["X-Request-Id"] == request_id
    lines = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert any(request_id in line and "Database unavailable" in line for line in lines), lines
    return request_id


def _count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("how", ["raise", "terminate"])
def test_database_lost_while_creating_a_client(client, login_as, cut_database, dialect, caplog, how):
    if how == "terminate" and dialect != "postgresql":
        pytest.skip("terminating a backend is PostgreSQL's")
    login_as("staff")
    clients, messages = _count(Client), _count(OutboxMessage)
    with cut_database(on="INSERT INTO clients", how=how) as fired:
        response = client.post("/admin/clients/new/", data=NEW_CLIENT)
    assert fired, "the save never reached the database"
    _assert_outage_page(response, caplog)
    assert _count(Client) == clients and _count(OutboxMessage) == messages
    # The pool replaces the lost connection: the next request works and the same form saves.
    again = client.post("/admin/clients/new/", data=NEW_CLIENT)
    assert again.status_code == 302, again.get_data(as_text=True)[-800:]
    assert _count(Client) == clients + 1 and _count(OutboxMessage) == messages + 1


@pytest.mark.parametrize("how", ["raise", "terminate"])
def test_database_lost_while_saving_a_generic_edit(client, login_as, cut_database, make_package, dialect, caplog, how):
    """Flask-Admin's edit form: the failure is not turned into "something went wrong" above the form re-rendered with
    its history (read from the dead connection), but into the outage page."""
    if how == "terminate" and dialect != "postgresql":
        pytest.skip("terminating a backend is PostgreSQL's")
    login_as("admin")
    package = make_package(code="TAPT", name="Før")
    form = client.get(f"/admin/packages/edit/?id={package.id}").get_data(as_text=True)
    version = re.search(r'name="version_check"[^>]*value="(\d+)"', form).group(1)
    data = {"code": "TAPT", "name": "Etter", "kind": "main", "rank": "1", "price": "100.00", "version_check": version}
    with cut_database(on="UPDATE packages", how=how) as fired:
        response = client.post(f"/admin/packages/edit/?id={package.id}", data=data)
    assert fired, "the save never reached the database"
    _assert_outage_page(response, caplog)
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Package, package.id).name == "Før"


def test_database_lost_before_the_user_is_known(client, login_as, cut_database, caplog):
    """The very first query of the request (loading the logged-in user) fails: the page still renders, because it
    asks nothing of the database (no user, no history, no flashed messages from a session query)."""
    login_as("staff")
    with cut_database(on="SELECT users") as fired:
        response = client.get("/admin/clients/")
    assert fired
    _assert_outage_page(response, caplog)


def test_the_500_page_names_the_request_too(app, client, login_as, monkeypatch, caplog):
    """Any other failure: the normal 500 page, with the request id that Flask's own traceback line carries."""
    import admin_views.client_page.new_client as client_page

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    login_as("staff")
    monkeypatch.setattr(client_page, "create_client", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post("/admin/clients/new/", data=NEW_CLIENT)
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Noe gikk galt" in body and "a bug" not in body and "Traceback" not in body
    request_id = _REFERENCE.search(body).group(1)
    assert response.headers["X-Request-Id"] == request_id
    assert any(request_id in record.getMessage() and record.exc_info for record in caplog.records), (
        "the traceback's log line does not name the request"
    )


def test_every_answer_carries_a_request_id(client):
    first, second = client.get("/login"), client.get("/login")
    assert re.fullmatch(r"[0-9a-f]{12}", first.headers["X-Request-Id"])
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    sent = client.get("/login", headers={"X-Request-Id": "chosen-by-the-client"})
    assert re.fullmatch(r"[0-9a-f]{12}", sent.headers["X-Request-Id"])  # never taken over: it goes into the log
