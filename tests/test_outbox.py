"""The e-mail outbox: queued in the caller's transaction, delivered to a real SMTP server on loopback, the grid."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select

from extensions import db
from models import Client, OutboxMessage, OutboxStatus
from models.base import utcnow
from services.outbox import (
    MAX_ATTEMPTS,
    NO_MAIL_SERVER,
    InvalidRecipientError,
    backoff,
    deliver_due,
    enqueue_email,
    public_url,
    requeue,
    run_worker,
)
from tests.conftest import SENDER

NOTHING = {"sent": 0, "deferred": 0, "failed": 0, "held": 0, "released": 0}


@pytest.fixture
def enqueue(bureau):
    def make(**overrides) -> OutboxMessage:
        values = {
            "bureau_id": bureau.id,
            "to": "kari@kunde.example",
            "subject": "Samtykke til behandling av personopplysninger",
            "text": "Hei Kari,\n\nVennligst bekreft samtykket.",
            "kind": "consent",
        }
        values.update(overrides)
        message = enqueue_email(db.session, **values)
        db.session.commit()
        return message

    return make


def send(runner, *flags: str) -> dict[str, int]:
    result = runner.invoke(args=["outbox", "send", *flags])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def reload(message: OutboxMessage) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, message.id)


# --- enqueueing -------------------------------------------------------------------------------


def test_enqueue_is_part_of_the_callers_transaction(app, bureau, make_client):
    customer = make_client(name="Før AS")
    customer.name = "Etter AS"
    enqueue_email(db.session, bureau_id=bureau.id, to="a@b.example", subject="s", text="t", kind="consent")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert db.session.get(Client, customer.id).name == "Før AS"


def test_enqueue_validates_and_normalises(app, bureau, make_client, make_bureau):
    with pytest.raises(InvalidRecipientError, match="ikke-en-epost"):
        enqueue_email(db.session, bureau_id=bureau.id, to="ikke-en-epost", subject="s", text="t", kind="consent")
    with pytest.raises(ValueError, match="does not belong"):
        other = make_client(bureau=make_bureau())
        enqueue_email(
            db.session, bureau_id=bureau.id, to="a@b.example", subject="s", text="t", kind="x", client_id=other.id
        )
    app.config["MAIL_DEFAULT_SENDER"] = SENDER
    first = enqueue_email(
        db.session, bureau_id=bureau.id, to="Kari@Kunde.EXAMPLE", subject="Linje 1\r\nBcc: x@y", text="t", kind="x"
    )
    second = enqueue_email(db.session, bureau_id=bureau.id, to="b@b.example", subject="s", text="t", kind="x")
    assert first.recipient == "Kari@kunde.example"
    assert first.subject == "Linje 1 Bcc: x@y"  # no header injection through the subject
    assert first.status is OutboxStatus.PENDING and first.attempts == 0
    assert first.message_id.startswith("<") and first.message_id.endswith("@klient.example>")
    assert first.message_id != second.message_id


def test_links_are_built_from_public_base_url(app):
    assert public_url("auth.login") == "http://testserver/login"
    app.config["PUBLIC_BASE_URL"] = "https://klient.example.no/app"
    assert public_url("auth.login", next="/admin/") == "https://klient.example.no/app/login?next=/admin/"


# --- delivery ---------------------------------------------------------------------------------


def test_send_delivers_exactly_once_with_the_stored_message_id(runner, smtp, enqueue, make_client):
    customer = make_client()
    message = enqueue(
        to="kari@kunde.example",
        subject="Samtykke – bekreft for Ærlig Øl AS",
        text="Hei Kari,\n\nKlikk her: http://testserver/samtykke/abc",
        html="<p>Hei Kari</p>",
        client_id=customer.id,
        related=f"client:{customer.id}",
    )

    assert send(runner) == {**NOTHING, "sent": 1}
    [received] = smtp.received
    assert smtp.handler.envelopes[0].mail_from == "noreply@klient.example"
    assert smtp.handler.envelopes[0].rcpt_tos == ["kari@kunde.example"]
    assert received["To"] == "kari@kunde.example"
    assert received["Subject"] == "Samtykke – bekreft for Ærlig Øl AS"
    assert received["Message-ID"] == message.message_id
    assert received.get_body(("plain",)).get_content().strip().endswith("Klikk her: http://testserver/samtykke/abc")
    assert "<p>Hei Kari</p>" in received.get_body(("html",)).get_content()

    stored = reload(message)
    assert stored.status is OutboxStatus.SENT
    assert stored.attempts == 1 and stored.sent_at is not None and stored.last_error is None

    assert send(runner) == NOTHING
    assert send(runner, "--include-deferred") == NOTHING
    assert len(smtp.received) == 1


def test_smtp_down_defers_and_nothing_is_lost(runner, smtp, enqueue):
    smtp.stop()
    message = enqueue()

    assert send(runner) == {**NOTHING, "deferred": 1}
    stored = reload(message)
    assert stored.status is OutboxStatus.DEFERRED
    assert stored.attempts == 1
    assert "Connection refused" in stored.last_error
    assert stored.next_attempt_at is not None
    assert send(runner) == NOTHING  # still waiting out its backoff

    smtp.start()
    assert send(runner) == NOTHING
    assert send(runner, "--include-deferred") == {**NOTHING, "sent": 1}
    assert send(runner, "--include-deferred") == NOTHING
    assert [m["Message-ID"] for m in smtp.received] == [message.message_id]
    assert reload(message).status is OutboxStatus.SENT


def test_temporary_refusal_is_retried_after_the_backoff(app, smtp, enqueue):
    smtp.handler.reject_data = "451 4.3.0 Try again later"
    message = enqueue()
    assert deliver_due(db.session).deferred == 1
    stored = reload(message)
    assert stored.status is OutboxStatus.DEFERRED and "451" in stored.last_error

    smtp.handler.reject_data = None
    assert deliver_due(db.session, now=utcnow() + timedelta(seconds=30)).sent == 0  # the first backoff is 1 min
    assert deliver_due(db.session, now=utcnow() + timedelta(minutes=2)).sent == 1
    stored = reload(message)
    assert stored.status is OutboxStatus.SENT and stored.attempts == 2
    assert len(smtp.received) == 1


def test_permanent_refusal_fails_at_once(app, smtp, enqueue):
    smtp.handler.reject_rcpt = "550 5.1.1 No such user"
    message = enqueue()
    assert deliver_due(db.session, include_deferred=True).failed == 1
    stored = reload(message)
    assert stored.status is OutboxStatus.FAILED and stored.attempts == 1
    assert "550" in stored.last_error
    assert deliver_due(db.session, include_deferred=True).total == 0


def test_backoff_doubles_to_an_hour_then_gives_up(app, smtp, enqueue):
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert backoff(7) == backoff(30) == timedelta(hours=1)

    smtp.stop()
    message = enqueue()
    for _ in range(MAX_ATTEMPTS):
        deliver_due(db.session, include_deferred=True)
    stored = reload(message)
    assert stored.status is OutboxStatus.FAILED and stored.attempts == MAX_ATTEMPTS
    assert deliver_due(db.session, include_deferred=True).total == 0


def test_without_mail_server_messages_are_held_until_released(app, runner, smtp, enqueue):
    app.config["MAIL_SERVER"] = None
    message = enqueue()
    assert send(runner) == {**NOTHING, "held": 1}
    stored = reload(message)
    assert stored.status is OutboxStatus.HELD
    assert stored.last_error == NO_MAIL_SERVER == "not delivered: no mail server configured"
    assert stored.attempts == 0
    assert send(runner, "--include-deferred") == NOTHING  # still no server: it stays held, untouched

    app.config["MAIL_SERVER"] = "127.0.0.1"
    assert send(runner) == NOTHING  # held messages go out only when someone asks
    assert send(runner, "--include-deferred") == {**NOTHING, "sent": 1}
    assert [m["Message-ID"] for m in smtp.received] == [message.message_id]


def test_a_live_claim_is_respected_and_an_expired_one_retried(app, smtp, enqueue):
    message = enqueue()
    stored = reload(message)
    stored.status, stored.locked_until = OutboxStatus.SENDING, utcnow() + timedelta(minutes=1)
    db.session.commit()
    assert deliver_due(db.session, include_deferred=True).total == 0  # another worker holds it

    # That worker crashed: once its lease has run out the message is sent.
    assert deliver_due(db.session, now=utcnow() + timedelta(minutes=2)).sent == 1
    assert len(smtp.received) == 1


def test_two_workers_at_once_send_every_message_once(app, smtp, enqueue):
    messages = [enqueue(to=f"kunde{n}@kunde.example", subject=f"Melding {n}") for n in range(30)]
    smtp.handler.delay = 0.005  # keep both workers busy at the same time
    start = threading.Barrier(2)
    sent_by: dict[int, int] = {0: 0, 1: 0}
    errors = []

    def worker(number: int) -> None:
        try:
            with app.app_context():
                start.wait()
                while (report := deliver_due(db.session, limit=4)).total:
                    sent_by[number] += report.sent
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(sent_by.values()) == 30 and all(sent_by.values()), sent_by  # both worked, neither sent twice
    received = [m["Message-ID"] for m in smtp.received]
    assert sorted(received) == sorted(m.message_id for m in messages)
    db.session.expire_all()
    assert set(db.session.scalars(select(OutboxMessage.status))) == {OutboxStatus.SENT}


# --- the worker and the command ---------------------------------------------------------------


def test_worker_command_delivers_and_stops_after_max_passes(runner, smtp, enqueue):
    enqueue()
    result = runner.invoke(args=["outbox", "worker", "--interval", "0.1", "--max-passes", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {**NOTHING, "sent": 1}
    assert len(smtp.received) == 1


def test_worker_stops_on_event_and_on_sigterm(app, smtp, enqueue):
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(app,), kwargs={"interval": 0.05, "stop_event": stop})
    thread.start()
    enqueue()
    for _ in range(200):
        if smtp.received:
            break
        threading.Event().wait(0.05)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(smtp.received) == 1

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed in the main thread")
    previous = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    assert run_worker(app, interval=0.05) >= 1  # returns instead of being killed
    timer.join()
    assert signal.getsignal(signal.SIGTERM) is previous


# --- the grid ---------------------------------------------------------------------------------


def test_outbox_grid_shows_only_the_bureaus_messages(login_as, client, enqueue, make_bureau):
    foreign = enqueue(bureau_id=make_bureau().id, subject="Annet byrå sin e-post")
    own = enqueue(subject="Vårt samtykke", text="Hemmelig <lenke>")
    login_as("admin")
    response = client.get("/admin/outbox/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Vårt samtykke" in page and "Annet byrå sin e-post" not in page

    details = client.get(f"/admin/outbox/details/?id={own.id}").get_data(as_text=True)
    assert "Hemmelig &lt;lenke&gt;" in details and own.message_id.strip("<>") in details
    assert client.get(f"/admin/outbox/details/?id={foreign.id}").status_code == 404
    for url in ("/admin/outbox/new/", f"/admin/outbox/edit/?id={own.id}"):
        assert client.get(url).status_code in (302, 403, 404)


def test_outbox_grid_shows_held_messages_and_filters(app, login_as, client, enqueue):
    enqueue(subject="Uten server", kind="consent")
    enqueue(subject="Invitasjon til Kari", kind="invitation")
    deliver_due(db.session)
    login_as("admin")
    page = client.get("/admin/outbox/").get_data(as_text=True)
    assert NO_MAIL_SERVER in page
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", None) == "outbox")
    args = {str(f.name): view.get_filter_arg(i, f) for i, f in enumerate(view._filters)}
    filtered = client.get(f"/admin/outbox/?flt0_{args['Type']}=invitation").get_data(as_text=True)
    assert "Invitasjon til Kari" in filtered and "Uten server" not in filtered
    by_status = client.get(f"/admin/outbox/?flt0_{args['Status']}=sent").get_data(as_text=True)
    assert "Invitasjon til Kari" not in by_status
    searched = client.get("/admin/outbox/?search=invitasjon").get_data(as_text=True)
    assert "Invitasjon til Kari" in searched and "Uten server" not in searched


def test_outbox_grid_has_no_n_plus_one_and_no_count(login_as, client, enqueue, make_client, count_queries):
    login_as("admin")

    def queries() -> list[str]:
        db.session.expire_all()
        g.pop("_login_user", None)  # a real request loads the user afresh
        with count_queries() as counter:
            assert client.get("/admin/outbox/").status_code == 200
        return counter.statements

    enqueue(client_id=make_client().id)
    few = queries()
    for _ in range(15):
        enqueue(client_id=make_client().id)
    many = queries()
    assert len(many) == len(few), many
    assert not any("count(" in s.lower() for s in many)


def test_requeue_action(login_as, client, enqueue, make_bureau):
    held = enqueue(subject="Holdt tilbake")
    failed = enqueue(subject="Feilet")
    foreign = enqueue(bureau_id=make_bureau().id)
    deliver_due(db.session)  # no mail server: all held
    stored = reload(failed)
    stored.status, stored.attempts = OutboxStatus.FAILED, MAX_ATTEMPTS
    db.session.commit()
    login_as("admin")

    response = client.post(
        "/admin/outbox/action/", data={"action": "requeue", "rowid": [held.id, failed.id, foreign.id, "junk"]}
    )
    assert response.status_code == 302
    with client.session_transaction() as session:
        [(category, text)] = session["_flashes"]
    assert category == "success" and text.startswith("2 ")
    assert reload(held).status is OutboxStatus.PENDING
    assert reload(failed).status is OutboxStatus.PENDING and reload(failed).attempts == 0
    assert reload(foreign).status is OutboxStatus.HELD


def test_requeue_leaves_sent_and_pending_alone(app, bureau, enqueue):
    pending = enqueue()
    assert requeue(db.session, [pending], actor=None) == 0
    assert reload(pending).status is OutboxStatus.PENDING


def test_outbox_access(client, login_as, enqueue):
    message = enqueue()
    for url in ("/admin/outbox/", f"/admin/outbox/details/?id={message.id}"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    response = client.post("/admin/outbox/action/", data={"action": "requeue", "rowid": [message.id]})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_staff_see_the_grid_but_only_administrators_read_the_text(client, login_as, enqueue):
    message = enqueue(subject="Samtykke", text="Personlig lenke: http://testserver/samtykke/hemmelig")
    login_as("staff")
    assert "Samtykke" in client.get("/admin/outbox/").get_data(as_text=True)
    details = client.get(f"/admin/outbox/details/?id={message.id}")
    assert details.status_code == 200 and "hemmelig" not in details.get_data(as_text=True)
    client.post("/logout")
    login_as("admin")
    assert "samtykke/hemmelig" in client.get(f"/admin/outbox/details/?id={message.id}").get_data(as_text=True)
