"""The outbox against a relay that accepts and then hangs, and against a worker that dies: the pass ends at its
deadline with the untried messages back in the queue as they were, a dead worker's claims are taken over within a
minute, and a live worker's are not, because its heartbeat renews them. Per-message state is asserted, not time."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import services.outbox as outbox
from config import Config
from extensions import db
from models import OutboxMessage, OutboxStatus
from models.base import utcnow
from services.outbox import CLAIM_LEASE, DeliveryReport, deliver_due, enqueue_email, run_worker


@pytest.fixture
def enqueue(bureau):
    def make(count: int) -> list[int]:
        ids = [
            enqueue_email(
                db.session,
                bureau_id=bureau.id,
                to=f"kunde{n}@kunde.example",
                subject=f"Melding {n}",
                text="Hei",
                kind="consent",
            ).id
            for n in range(count)
        ]
        db.session.commit()
        return ids

    return make


class HangingData:
    """Wraps the recording handler: the first DATA it receives is held until released (a relay gone quiet)."""

    def __init__(self, smtp) -> None:
        self.entered = threading.Event()
        self.release = asyncio.Event()
        smtp.handler.handle_DATA, self._accept = self.handle_DATA, smtp.handler.handle_DATA
        self.hung = 0

    async def handle_DATA(self, server, session, envelope):
        if self.hung == 0:
            self.hung += 1
            self.entered.set()
            try:
                await asyncio.wait_for(self.release.wait(), timeout=60)
            except TimeoutError:
                pass
            return "451 Timed out"
        return await self._accept(server, session, envelope)


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives naive UTC


def rows(ids: list[int]) -> list[OutboxMessage]:
    db.session.expire_all()
    return [db.session.get(OutboxMessage, key) for key in ids]


def test_mail_timeout_and_batch_deadline_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAIL_TIMEOUT", "7.5")
    monkeypatch.setenv("MAIL_BATCH_DEADLINE", "20")
    config = Config()
    assert (config.MAIL_TIMEOUT, config.MAIL_BATCH_DEADLINE) == (7.5, 20.0)
    monkeypatch.delenv("MAIL_TIMEOUT")
    monkeypatch.delenv("MAIL_BATCH_DEADLINE")
    assert (Config().MAIL_TIMEOUT, Config().MAIL_BATCH_DEADLINE) == (30.0, 60.0)


def test_a_relay_hanging_after_data_holds_the_pass_only_until_its_deadline(app, smtp, enqueue):
    ids = enqueue(4)
    # Deferred and due: it must come back deferred, with its attempts and error, not reset or counted again.
    deferred = rows(ids)[3]
    deferred.status, deferred.attempts, deferred.last_error = OutboxStatus.DEFERRED, 2, "451 earlier"
    deferred.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    hang = HangingData(smtp)
    # The socket timeout alone would wait 60 s for the answer to DATA; the deadline cuts the conversation at 1 s.
    app.config.update(MAIL_TIMEOUT=60, MAIL_BATCH_DEADLINE=1)

    report = deliver_due(db.session)
    assert hang.entered.is_set()  # the relay saw the first message's DATA and never answered it

    assert report == DeliveryReport(deferred=1, released=3)
    first, *rest = rows(ids)
    assert first.status is OutboxStatus.DEFERRED and first.attempts == 1 and first.locked_until is None
    assert "deadline" in first.last_error
    assert [(m.status, m.attempts, m.last_error, m.locked_until) for m in rest] == [
        (OutboxStatus.PENDING, 0, None, None),
        (OutboxStatus.PENDING, 0, None, None),
        (OutboxStatus.DEFERRED, 2, "451 earlier", None),
    ]
    assert smtp.received == []

    # The relay recovers: the next pass sends the untried ones (the deferred first one waits out its backoff).
    smtp.controller.loop.call_soon_threadsafe(hang.release.set)
    app.config["MAIL_BATCH_DEADLINE"] = 60
    assert deliver_due(db.session).sent == 3
    assert sorted(m["Subject"] for m in smtp.received) == ["Melding 1", "Melding 2", "Melding 3"]
    assert deliver_due(db.session, now=utcnow() + timedelta(minutes=2)).sent == 1
    assert [m.status for m in rows(ids)] == [OutboxStatus.SENT] * 4
    assert len(smtp.received) == 4


def test_the_worker_comes_back_at_once_for_messages_put_back(app, smtp, enqueue, monkeypatch):
    enqueue(2)
    reports = iter([DeliveryReport(deferred=1, released=1), DeliveryReport(sent=1)])
    calls = []

    def fake_pass(session, **kwargs):
        calls.append(kwargs)
        return next(reports, DeliveryReport())

    monkeypatch.setattr(outbox, "deliver_due", fake_pass)
    waits = []
    stop = threading.Event()
    monkeypatch.setattr(stop, "wait", lambda seconds: waits.append(seconds))
    run_worker(app, interval=5.0, stop_event=stop, max_passes=3)
    assert len(calls) == 3
    assert waits == [5.0]  # no pause after the pass that put messages back, one after the pass that sent


def test_the_claim_lease_is_at_most_a_minute():
    assert CLAIM_LEASE <= timedelta(minutes=1) and outbox.HEARTBEAT_EVERY * 3 <= CLAIM_LEASE.total_seconds()


def test_a_dead_workers_claims_are_taken_over_after_the_lease_and_sent_once(app, smtp, enqueue):
    ids = enqueue(3)
    # A worker claims and dies before sending anything (no heartbeat renews its claims).
    claims = outbox._claim_due(db.session, utcnow(), limit=10, include_deferred=False, server_configured=True)
    assert len(claims) == 3
    assert all(m.status is OutboxStatus.SENDING for m in rows(ids))

    assert deliver_due(db.session).total == 0  # within the lease nobody else touches them
    report = deliver_due(db.session, now=utcnow() + CLAIM_LEASE + timedelta(seconds=1))
    assert report.sent == 3
    assert sorted(m["Subject"] for m in smtp.received) == ["Melding 0", "Melding 1", "Melding 2"]
    # The dead worker's claims are void: were it to wake, it could record nothing.
    assert all(outbox._transition(db.session, claim, status=OutboxStatus.FAILED) is None for claim in claims)
    db.session.commit()
    assert [m.status for m in rows(ids)] == [OutboxStatus.SENT] * 3


def test_a_live_workers_claims_are_renewed_while_the_relay_hangs_and_never_taken_twice(app, smtp, enqueue, monkeypatch):
    monkeypatch.setattr(outbox, "CLAIM_LEASE", timedelta(seconds=2))
    monkeypatch.setattr(outbox, "HEARTBEAT_EVERY", 0.1)
    ids = enqueue(3)
    hang = HangingData(smtp)
    app.config.update(MAIL_TIMEOUT=60, MAIL_BATCH_DEADLINE=60)
    reports: list[DeliveryReport] = []
    db.session.commit()

    def first_worker() -> None:
        with app.app_context():
            reports.append(deliver_due(db.session))

    worker = threading.Thread(target=first_worker)
    worker.start()
    try:
        assert hang.entered.wait(30)
        claimed_until = {m.id: m.locked_until for m in rows(ids)}
        db.session.rollback()
        # Past the first lease: a second worker finds every row still claimed, the heartbeat having renewed it.
        pause = threading.Event()
        for _look in range(300):  # a bound, so that a heartbeat that never beats fails the test instead of hanging it
            now = {m.id: m.locked_until for m in rows(ids)}
            db.session.rollback()
            if all(now[key] > claimed_until[key] + timedelta(seconds=2) for key in ids):
                break
            pause.wait(0.1)
        assert all(now[key] > claimed_until[key] + timedelta(seconds=2) for key in ids), "leases never renewed"
        # Renewed that late means the first leases have run out (renewal = now + lease): without the heartbeat this
        # second worker would take the rows over and send the hung message a second time.
        assert utcnow() > max(utc(moment) for moment in claimed_until.values())
        assert deliver_due(db.session).total == 0
        assert [m.status for m in rows(ids)] == [OutboxStatus.SENDING] * 3
        db.session.rollback()
    finally:
        smtp.controller.loop.call_soon_threadsafe(hang.release.set)
        worker.join(timeout=60)
    # The hung message was refused with 451 once released; the others went out once, by the first worker.
    assert reports == [DeliveryReport(sent=2, deferred=1)]
    assert sorted(m["Subject"] for m in smtp.received) == ["Melding 1", "Melding 2"]
    assert [m.status for m in rows(ids)] == [OutboxStatus.DEFERRED, OutboxStatus.SENT, OutboxStatus.SENT]
    assert db.session.scalars(select(OutboxMessage.attempts).order_by(OutboxMessage.id)).all() == [1, 1, 1]
