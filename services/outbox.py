"""The e-mail outbox: e-mails are queued in the caller's transaction and delivered later over SMTP by a worker.

Delivery guarantees:

- A message exists exactly when the change that caused it was committed (``enqueue_email`` only flushes).
- Only the worker that won a row's claim sends it. The claim is a compare-and-set on the row's ``version``
  (PostgreSQL additionally skips rows another worker has locked), committed before the slow SMTP conversation;
  the claim is re-checked and its lease renewed right before sending, and the outcome is recorded only while the
  claim is still ours. While a pass runs, a heartbeat renews its claims' leases every ``HEARTBEAT_EVERY``; a worker
  that dies stops renewing, and its claims are taken over once ``CLAIM_LEASE`` (a minute) has run out.
- A pass ends at its deadline (``MAIL_BATCH_DEADLINE``, a minute): a relay that accepts and then hangs has the
  conversation in progress cut off there (recorded as a failed attempt) and the messages not yet tried go back to
  the queue as they were.
- The one window left: a crash after the SMTP server accepted a message but before the outcome was committed
  sends that message again when the lease expires, with the same Message-ID, so receivers can tell.
"""

from __future__ import annotations

import logging
import signal
import smtplib
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import Flask, current_app, has_app_context
from flask_babel import gettext as _
from flask_mail import Connection, Message
from sqlalchemy import ColumnElement, and_, false, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from extensions import db, mail
from models import Client, OutboxMessage, OutboxStatus, User
from models.base import utcnow
from services.errors import DomainError

log = logging.getLogger(__name__)

NO_MAIL_SERVER = "not delivered: no mail server configured"
MAX_ATTEMPTS = 10
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=1)
# A dead worker's claims are taken over after this. A live worker's heartbeat renews them every HEARTBEAT_EVERY
# seconds whatever its SMTP conversation is doing, so the lease needs to outlast a few missed beats, not a send.
CLAIM_LEASE = timedelta(minutes=1)
HEARTBEAT_EVERY = 15.0
SMTP_TIMEOUT = 30.0  # seconds per socket operation; MAIL_TIMEOUT overrides it
BATCH_DEADLINE = 60.0  # seconds a pass may spend sending; MAIL_BATCH_DEADLINE overrides it
CLAIM_ROUNDS = 3
DAILY = 24 * 3600.0  # seconds between the worker's daily housekeeping runs
MAX_ERROR_LENGTH = 2000
REQUEUEABLE = frozenset({OutboxStatus.FAILED, OutboxStatus.DEFERRED, OutboxStatus.HELD})


class InvalidRecipientError(DomainError):
    """The recipient is not a usable e-mail address."""


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery pass did with the messages it claimed."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    held: int = 0
    released: int = 0  # claimed, not tried before the pass's deadline, back in the queue as they were

    @property
    def total(self) -> int:
        return self.sent + self.deferred + self.failed + self.held

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class _Claim:
    id: int
    version: int
    was: OutboxStatus | None = None  # the status before this pass claimed it


# --- enqueueing --------------------------------------------------------------------------------


def new_message_id() -> str:
    """A unique Message-ID in the sender's domain (RFC 5322), fixed when the row is written so retries reuse it."""
    sender = current_app.config.get("MAIL_DEFAULT_SENDER") if has_app_context() else None
    if isinstance(sender, tuple):
        sender = sender[1]
    domain = parseaddr(sender or "")[1].rpartition("@")[2]
    try:
        domain = domain.encode("idna").decode("ascii")  # header values must be ASCII
    except UnicodeError:
        domain = ""
    return f"<{uuid.uuid4().hex}@{domain or 'localhost'}>"


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute link for an e-mail, always on PUBLIC_BASE_URL (a request's Host header is not to be trusted)."""
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https")
    return adapter.build(endpoint, values, force_external=True)


def enqueue_email(
    session: Session,
    *,
    bureau_id: int,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    kind: str,
    client_id: int | None = None,
    related: str | None = None,
) -> OutboxMessage:
    """Queue one e-mail in the caller's transaction: it is sent only if the change that caused it is committed."""
    try:
        recipient = validate_email(to, check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidRecipientError(_("%(value)s is not a valid e-mail address.", value=to)) from None
    # A line break in a header would let the text inject headers of its own.
    subject = " ".join(subject.split())
    if len(subject) > 300:
        raise ValueError("An e-mail subject is at most 300 characters.")
    if client_id is not None:
        owner = session.scalar(select(Client.bureau_id).where(Client.id == client_id))
        if owner != bureau_id:
            raise ValueError(f"Client {client_id} does not belong to bureau {bureau_id}.")
    message = OutboxMessage(
        bureau_id=bureau_id,
        message_id=new_message_id(),
        recipient=recipient,
        subject=subject,
        body_text=text,
        body_html=html,
        kind=kind,
        client_id=client_id,
        related=related,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(message)
    session.flush()
    return message


def requeue(session: Session, messages: Iterable[OutboxMessage], *, actor: User | None) -> int:
    """Put failed, deferred or held messages back in the queue, due now with a fresh round of attempts."""
    now = utcnow()
    count = 0
    for message in messages:
        if message.status not in REQUEUEABLE:
            continue
        message.status = OutboxStatus.PENDING
        message.next_attempt_at = now
        message.locked_until = None
        message.attempts = 0  # the backoff starts again at its first step; last_error stays until the next try
        count += 1
    session.flush()  # the version check refuses this if a worker changed a row meanwhile
    if count:
        log.info("%s re-queued %d outbox message(s)", actor or "system", count)
    return count


# --- delivery ----------------------------------------------------------------------------------


def message_kinds(session: Session, bureau_id: int) -> list[str]:
    """The kinds of e-mail the bureau has, in order (the outbox grid's filter), without reading every message."""
    from services.queries import distinct_values

    return distinct_values(session, OutboxMessage.__table__.c.kind, bureau_id)


def backoff(attempts: int) -> timedelta:
    """The wait after the given number of failed attempts: 1 min, 2, 4, … capped at 1 h."""
    return min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


def _due(now: datetime, *, include_deferred: bool, server_configured: bool) -> ColumnElement[bool]:
    status, next_at = OutboxMessage.status, OutboxMessage.next_attempt_at
    waiting = [OutboxStatus.PENDING, OutboxStatus.DEFERRED]
    if include_deferred:
        # Held rows wait for an operator's decision once a server is configured; without one they stay held.
        ready = status.in_([*waiting, OutboxStatus.HELD] if server_configured else waiting)
    else:
        ready = and_(status.in_(waiting), or_(next_at.is_(None), next_at <= now))
    abandoned = and_(status == OutboxStatus.SENDING, OutboxMessage.locked_until < now)  # a crashed worker's claim
    return or_(ready, abandoned)


def _transition(
    session: Session, claim: _Claim, *, expect: ColumnElement[bool] | None = None, **values: Any
) -> _Claim | None:
    """Change a claimed row only if nobody else changed it since (compare-and-set on version); the new claim or None."""
    condition = expect if expect is not None else OutboxMessage.status == OutboxStatus.SENDING
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == claim.id, OutboxMessage.version == claim.version, condition)
        .values(version=claim.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return replace(claim, version=claim.version + 1) if result.rowcount == 1 else None


def _release(session: Session, claim: _Claim) -> bool:
    """Give back a claim that was never tried: the row is as it was (a dead worker's claim becomes pending)."""
    status = claim.was if claim.was in REQUEUEABLE or claim.was is OutboxStatus.PENDING else OutboxStatus.PENDING
    return _transition(session, claim, status=status, locked_until=None) is not None


def _claim_due(session: Session, now: datetime, *, limit: int, **due: bool) -> list[_Claim]:
    """Claim up to ``limit`` due rows in one short transaction, committed before anything is sent."""
    claims: list[_Claim] = []
    try:
        # Most polls find nothing: those stay read-only, so an idle worker never holds up the web app's writes.
        anything_due = session.scalar(select(OutboxMessage.id).where(_due(now, **due)).limit(1)) is not None
        session.commit()
        if not anything_due:
            return claims
        if session.get_bind().dialect.name == "sqlite":
            # Take the write lock before reading: SQLite cannot turn a read into a write once another worker has
            # committed since ("database is locked" at once, whatever the busy timeout), but waits for this lock.
            session.execute(update(OutboxMessage).where(false()).values(version=OutboxMessage.version))
        for _round in range(CLAIM_ROUNDS):
            candidates = session.execute(
                select(OutboxMessage.id, OutboxMessage.version, OutboxMessage.status)
                .where(_due(now, **due))
                .order_by(OutboxMessage.id)
                .limit(limit - len(claims))
                .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders nothing and relies on the check below
            ).all()
            lost = 0
            for row_id, version, was in candidates:
                claim = _transition(
                    session,
                    _Claim(row_id, version, was),
                    expect=_due(now, **due),
                    status=OutboxStatus.SENDING,
                    locked_until=now + CLAIM_LEASE,
                )
                if claim is None:
                    lost += 1
                else:
                    claims.append(claim)
            # Rows lost to another worker (SQLite) say nothing about the rest: look again for rows nobody took.
            if not lost or len(claims) >= limit:
                break
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return claims


class _TimedConnection(Connection):
    """Flask-Mail's connection with a socket timeout and verified TLS, closed without QUIT after an error."""

    def __init__(self, state: Any, timeout: float) -> None:
        super().__init__(state)
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        # smtplib verifies no certificate unless given a context; without a timeout a stalled server outlives the lease.
        context = ssl.create_default_context()
        if self.mail.use_ssl:
            host: smtplib.SMTP = smtplib.SMTP_SSL(
                self.mail.server, self.mail.port, timeout=self.timeout, context=context
            )
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=self.timeout)
        try:
            host.set_debuglevel(int(self.mail.debug))
            if self.mail.use_tls:
                host.starttls(context=context)
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host

    def open(self) -> None:
        self.host = None if self.mail.suppress else self.configure_host()
        self.num_emails = 0

    def close(self, *, polite: bool) -> None:
        if self.host is None:
            return
        try:
            if polite:
                self.host.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the message is already accepted or already recorded as failed; only the socket is left
        finally:
            self.host.close()
            self.host = None


class _Postman:
    """Sends a pass's messages over one SMTP connection, opened on first use and dropped after any error."""

    def __init__(self, app: Flask, deadline: float) -> None:
        # Read from the config now, not from the state Flask-Mail cached at init_app: settings may change while the
        # app runs. MAIL_SUPPRESS_SEND must not default to TESTING here (tests deliver to a real SMTP server), and
        # the SMTP conversation, AUTH included, is printed only when MAIL_DEBUG asks for it.
        self.state = mail.init_mail(app.config, debug=False, testing=False)
        self.timeout = float(app.config.get("MAIL_TIMEOUT") or SMTP_TIMEOUT)
        self.deadline = deadline  # time.monotonic() at which the pass stops sending
        self.connection: _TimedConnection | None = None
        self.connect_error: Exception | None = None

    def message(self, row: Any) -> Message:
        message = Message(
            subject=row.subject,
            recipients=[row.recipient],
            body=row.body_text,
            html=row.body_html,
            sender=self.state.default_sender,
            extra_headers={"Auto-Submitted": "auto-generated"},  # RFC 3834: no vacation replies to this
        )
        message.msgId = row.message_id
        return message

    def send(self, message: Message) -> None:
        if self.connection is None:
            # A connection opened near the deadline waits no longer than the time left.
            timeout = max(min(self.timeout, self.deadline - time.monotonic()), 0.1)
            connection = _TimedConnection(self.state, timeout)
            try:
                connection.open()
            except Exception as exc:
                # The server is unreachable: the rest of this pass waits for the next one instead of trying again.
                self.connect_error = exc
                raise
            self.connection = connection
        try:
            self.connection.send(message)
        except BaseException:
            self.connection.close(polite=False)
            self.connection = None
            raise

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close(polite=True)
            self.connection = None

    def cut_off(self) -> None:
        """From another thread: end the conversation in progress (a blocked read returns at once)."""
        connection = self.connection
        sock = getattr(connection.host, "sock", None) if connection is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


class _Heartbeat:
    """While a pass sends, renews its claims' leases and cuts the SMTP conversation off at the pass's deadline.

    A thread of its own, so that neither a relay that hangs nor a slow message keeps the leases from being renewed.
    The renewal is a compare-and-set on each claim's version that leaves the version as it is: the sending thread's
    claims stay valid, and a claim another worker has taken over (a new version) is never renewed.
    """

    def __init__(self, engine: Engine, postman: _Postman, clock: Callable[[], datetime]) -> None:
        self.engine, self.postman, self.clock = engine, postman, clock
        self.claims: dict[int, int] = {}  # id -> version of the claims still ours
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="outbox-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def track(self, claim: _Claim | None, *, old: _Claim | None = None) -> None:
        with self.lock:
            if old is not None:
                self.claims.pop(old.id, None)
            if claim is not None:
                self.claims[claim.id] = claim.version

    def past_deadline(self) -> bool:
        return time.monotonic() >= self.postman.deadline

    def _run(self) -> None:
        cut = False
        while True:
            left = self.postman.deadline - time.monotonic()
            if self.stopped.wait(HEARTBEAT_EVERY if cut else max(min(HEARTBEAT_EVERY, left), 0)):
                return
            if not cut and self.past_deadline():
                cut = True
                self.postman.cut_off()
            self._renew()

    def _renew(self) -> None:
        with self.lock:
            claims = list(self.claims.items())
        if not claims:
            return
        table = OutboxMessage.__table__
        try:
            with self.engine.begin() as connection:
                for row_id, version in claims:
                    connection.execute(
                        update(table)
                        .where(table.c.id == row_id, table.c.version == version, table.c.status == OutboxStatus.SENDING)
                        .values(locked_until=self.clock() + CLAIM_LEASE)
                    )
        except Exception:  # noqa: BLE001 - a missed beat is caught up by the next; the lease has room for a few
            log.warning("Outbox heartbeat could not renew %d claim(s)", len(claims), exc_info=True)


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{addr}: {code} {_decode(text)}" for addr, (code, text) in exc.recipients.items())
        description = f"recipient refused: {refused}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        description = f"{type(exc).__name__}: {exc.smtp_code} {_decode(exc.smtp_error)}"
    else:
        description = f"{type(exc).__name__}: {exc}"
    return description[:MAX_ERROR_LENGTH]


def _is_permanent(exc: BaseException) -> bool:
    """A 5xx refusal of this message itself will not change by retrying; everything else (server down, 4xx,
    authentication or TLS set-up) might, so it is retried."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _text in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


_SENT_COLUMNS = (
    OutboxMessage.message_id,
    OutboxMessage.recipient,
    OutboxMessage.subject,
    OutboxMessage.body_text,
    OutboxMessage.body_html,
    OutboxMessage.attempts,
)


def _deliver_one(
    session: Session, postman: _Postman, heartbeat: _Heartbeat, claim: _Claim, clock: Callable[[], datetime]
) -> str | None:
    """Send one claimed message and record the outcome; the outcome's name, or None when the claim was lost."""
    # Re-check the claim and renew its lease just before the step that cannot be undone.
    renewed = _transition(session, claim, locked_until=clock() + CLAIM_LEASE)
    heartbeat.track(renewed, old=claim)
    claim = renewed
    # Plain columns, not an entity: the commit below would expire it and reopen a transaction during the send.
    row = session.execute(select(*_SENT_COLUMNS).where(OutboxMessage.id == claim.id)).one() if claim else None
    session.commit()
    if claim is None or row is None:
        log.warning("Outbox claim lost before sending; another worker has the message")
        return None

    error: BaseException | None = postman.connect_error
    if error is None:
        try:
            message = postman.message(row)
        except Exception as exc:  # noqa: BLE001 - a message that cannot be built never will be
            return _record_failure(session, claim, row.attempts, exc, clock, permanent=True)
        try:
            postman.send(message)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row and retried
            error = exc
            if heartbeat.past_deadline() and not _is_permanent(exc):
                error = TimeoutError(f"cut off at the delivery pass's deadline: {_describe(exc)}")
    if error is not None:
        return _record_failure(session, claim, row.attempts, error, clock, permanent=_is_permanent(error))

    recorded = _transition(
        session,
        claim,
        status=OutboxStatus.SENT,
        sent_at=clock(),
        attempts=row.attempts + 1,
        locked_until=None,
        next_attempt_at=None,
        last_error=None,
    )
    session.commit()
    if recorded is None:
        log.warning("Outbox message %s was sent but its claim had expired", row.message_id)
    return "sent"


def _record_failure(
    session: Session,
    claim: _Claim,
    attempts: int,
    exc: BaseException,
    clock: Callable[[], datetime],
    *,
    permanent: bool,
) -> str:
    attempts += 1
    gave_up = permanent or attempts >= MAX_ATTEMPTS
    status = OutboxStatus.FAILED if gave_up else OutboxStatus.DEFERRED
    _transition(
        session,
        claim,
        status=status,
        attempts=attempts,
        last_error=_describe(exc),
        locked_until=None,
        next_attempt_at=None if gave_up else clock() + backoff(attempts),
    )
    session.commit()
    log.warning("Outbox delivery attempt %d %s: %s", attempts, status.value, _describe(exc))
    return status.value


def deliver_due(
    session: Session,
    *,
    include_deferred: bool = False,
    limit: int = 100,
    now: datetime | None = None,
) -> DeliveryReport:
    """One delivery pass over the due messages (needs an app context).

    It commits, unlike other services: a claim must be visible to other workers before the slow SMTP send, and each
    outcome is recorded as soon as it is known. Call it at the edge with a session that holds no other work.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    fixed = now.astimezone(UTC) if now is not None else None

    def clock() -> datetime:
        return fixed or utcnow()

    server_configured = bool(app.config.get("MAIL_SERVER"))
    session.commit()  # the claim starts from a fresh transaction, not from a snapshot the caller read earlier
    claims = _claim_due(
        session, clock(), limit=limit, include_deferred=include_deferred, server_configured=server_configured
    )
    if not claims:
        return DeliveryReport()

    outcomes: Counter[str] = Counter()
    if not server_configured:
        for claim in claims:
            held = _transition(session, claim, status=OutboxStatus.HELD, last_error=NO_MAIL_SERVER, locked_until=None)
            if held is not None:
                outcomes["held"] += 1
        session.commit()
        log.warning("No MAIL_SERVER configured: %d outbox message(s) held", outcomes["held"])
        return DeliveryReport(held=outcomes["held"])

    deadline = time.monotonic() + float(app.config.get("MAIL_BATCH_DEADLINE") or BATCH_DEADLINE)
    postman = _Postman(app, deadline)
    try:
        with _Heartbeat(session.get_bind(), postman, clock) as heartbeat:
            for claim in claims:
                heartbeat.track(claim)
            for number, claim in enumerate(claims):
                if heartbeat.past_deadline():
                    # Not tried: back in the queue as they were, for the next pass (or another worker) to take.
                    outcomes["released"] += sum(_release(session, rest) for rest in claims[number:])
                    session.commit()
                    log.warning("Outbox pass reached its deadline; %d message(s) put back", outcomes["released"])
                    break
                outcome = _deliver_one(session, postman, heartbeat, claim, clock)
                heartbeat.track(None, old=claim)
                if outcome is not None:
                    outcomes[outcome] += 1
    except BaseException:
        session.rollback()
        raise
    finally:
        postman.close()
    return DeliveryReport(**outcomes)


# --- the worker --------------------------------------------------------------------------------


def run_worker(
    app: Flask,
    *,
    interval: float = 5.0,
    stop_event: threading.Event | None = None,
    max_passes: int | None = None,
    limit: int = 100,
    on_report: Callable[[DeliveryReport], None] | None = None,
    daily: Callable[[], object] | None = None,
    daily_every: float = DAILY,
    every_pass: Callable[[], object] | None = None,
    periodic: Sequence[tuple[Callable[[], object], float]] = (),
) -> int:
    """Deliver due messages pass after pass until SIGINT/SIGTERM, ``stop_event`` or ``max_passes``; the passes run.

    ``daily`` (housekeeping such as blocking expired users) runs in an app context before the first pass and then
    before the first pass after every ``daily_every`` seconds; each of ``periodic``'s (chore, seconds) pairs (such
    as refreshing the planner's statistics) runs the same way; ``every_pass`` (keeping billing totals) runs before
    each delivery pass. Their failures are logged, never fatal.
    """
    stop = stop_event or threading.Event()
    chores = [*([(daily, daily_every)] if daily is not None else []), *periodic]
    chores_last: list[float | None] = [None] * len(chores)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def request_stop(signum: int, frame: Any) -> None:
            # Set from another thread: the handler may interrupt this thread inside Event.wait, holding its lock.
            threading.Thread(target=stop.set, daemon=True).start()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)

    passes = 0
    try:
        while not stop.is_set() and (max_passes is None or passes < max_passes):
            passes += 1
            more_waiting = False
            for number, (chore, every) in enumerate(chores):
                last = chores_last[number]
                if last is not None and time.monotonic() - last < every:
                    continue
                chores_last[number] = time.monotonic()
                try:
                    with app.app_context():
                        chore()
                except Exception:  # noqa: BLE001 - housekeeping must not stop the delivery of e-mail
                    log.exception("Housekeeping in the outbox worker failed; trying again in %s s", every)
            if every_pass is not None:
                try:
                    with app.app_context():
                        every_pass()
                except Exception:  # noqa: BLE001 - bookkeeping must not stop the delivery of e-mail
                    log.exception("The worker's per-pass bookkeeping failed; trying again in %s s", interval)
            try:
                with app.app_context():
                    report = deliver_due(db.session, limit=limit)
                more_waiting = report.total >= limit or report.released > 0
                if on_report is not None and report.total:
                    on_report(report)
            except Exception:  # noqa: BLE001 - a database or network outage must not end the worker
                log.exception("Outbox delivery pass failed; trying again in %s s", interval)
            if not more_waiting and (max_passes is None or passes < max_passes):
                stop.wait(interval)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return passes
