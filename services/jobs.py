"""Background jobs: work that can outlive a request, run by ``flask jobs worker`` with progress and per-row results.

Guarantees:

- A job is queued in the caller's transaction (``create_job`` only flushes), with one ``JobRow`` per unit of input.
- One worker at a time works on a job: the claim is a compare-and-set on the job's status and lease, committed, and
  carries a token. Every chunk's transaction starts by renewing the lease *with that token* (the job's row stays
  locked until the chunk commits), so a worker whose lease was taken over records nothing.
- A chunk applies its rows and records their outcomes and the job's counters in ONE transaction. A worker that is
  stopped finishes its chunk and hands the job back; one that dies loses only its uncommitted chunk, and the next
  claim (after ``JOBS_LEASE_SECONDS``) starts with the first row without an outcome: no row is applied twice.
- Slow outside calls (the register) are made between the lease renewal and the chunk's transaction, not inside it.
- A row's own failure is its outcome (refused, with the reason). A failure of the job itself (the database gone, a
  bug) rolls the chunk back and the job is tried again after a pause; after ``MAX_CLAIMS`` claims it is failed.
  A refusal of the whole job (``DomainError``, e.g. the creator may no longer close months) fails it at once.
"""

from __future__ import annotations

import csv
import io
import logging
import signal
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from extensions import db
from models import Job, JobKind, JobRow, JobStatus, User, utcnow
from services.audit import acting_as
from services.errors import DomainError

log = logging.getLogger(__name__)

CHUNK_ROWS = 25
LEASE_SECONDS = 90.0
# Spreadsheets with more rows than this are imported by a job; smaller ones at once, on the page.
IMPORT_THRESHOLD = 50
MAX_CLAIMS = 5
RETRY_PAUSE = timedelta(seconds=30)
LIST_LIMIT = 100
RESULTS_SHOWN = 1000
MAX_TEXT = 2000


def setting(name: str, default: float) -> float:
    """A jobs setting from the app's config (``JOBS_CHUNK_ROWS``, …), else its default."""
    value = current_app.config.get(name) if has_app_context() else None
    return type(default)(value) if value not in (None, "") else default


def import_threshold() -> int:
    return int(setting("JOBS_IMPORT_THRESHOLD", IMPORT_THRESHOLD))


def _clean(text: object, limit: int = MAX_TEXT) -> str:
    """Text fit for a column on both databases: no NUL (PostgreSQL refuses it), bounded."""
    return str(text).replace("\x00", "")[:limit]


# --- what a kind of job provides --------------------------------------------------------------


@dataclass(frozen=True)
class JobContext:
    """A job's fixed values, read at the start of each chunk (plain values: valid across commits)."""

    id: int
    kind: JobKind
    bureau_id: int
    stage: int
    parameters: dict[str, Any]
    created_by_id: int | None
    created_by_label: str


@dataclass(frozen=True)
class RowInput:
    id: int
    position: int
    row_number: int
    input: dict[str, Any]


@dataclass
class Outcome:
    """What happened to one row. ``finished=False`` passes it on to the job's next stage."""

    status: str
    message: str = ""
    refused: bool = False
    target_id: int | None = None
    finished: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # kept on the row's input ("_"-prefixed keys) for later


class JobHandler:
    """One kind of job. ``apply`` runs inside the chunk's transaction and only flushes; ``prepare`` runs before it,
    outside any transaction, for slow outside calls."""

    stages = 1
    stage_labels: Sequence[Any] = (_l("Working"),)
    # A chunk that fails for no reason of the rows' own is retried one row at a time, and a row that fails alone is
    # refused: one row the database cannot store (a NUL, an over-long value) never stops the rest of the job.
    isolate_rows = True

    def prepare(self, job: JobContext, rows: list[RowInput]) -> Any:
        return None

    def begin(self, session: Session) -> None:
        """Start the chunk's transaction (a kind that needs another isolation level sets it here)."""

    def apply(
        self, session: Session, job: JobContext, rows: list[RowInput], prepared: Any, actor: User | None
    ) -> dict[int, Outcome]:
        raise NotImplementedError

    def between_stages(self, session: Session, job: JobContext, actor: User | None) -> dict[int, Outcome]:
        return {}

    def summary(self, session: Session, job: JobContext) -> str | None:
        return None


def handler_for(kind: JobKind) -> JobHandler:
    from services.job_kinds import HANDLERS

    return HANDLERS[kind]


# --- queueing ---------------------------------------------------------------------------------


def create_job(
    session: Session,
    *,
    bureau_id: int,
    kind: JobKind,
    actor: User | None,
    title: str,
    rows: Sequence[dict[str, Any]],
    row_numbers: Sequence[int] | None = None,
    columns: Sequence[str] = (),
    parameters: dict[str, Any] | None = None,
) -> Job:
    """Queue a job with one row per input item, in the caller's transaction; the worker picks it up after commit."""
    job = Job(
        bureau_id=bureau_id,
        kind=kind,
        created_by_id=actor.id if actor is not None else None,
        created_by_label=_clean(str(actor) if actor is not None else "system", 300),
        title=_clean(title, 300),
        status=JobStatus.QUEUED,
        parameters=parameters or {},
        columns=list(columns),
        total=len(rows),
    )
    session.add(job)
    session.flush()
    numbers = list(row_numbers) if row_numbers is not None else list(range(1, len(rows) + 1))
    if rows:
        session.execute(
            insert(JobRow),
            [
                {"job_id": job.id, "position": index, "row_number": numbers[index], "input": dict(row)}
                for index, row in enumerate(rows)
            ],
        )
    return job


def active_job(session: Session, bureau_id: int, kind: JobKind, **parameters: Any) -> Job | None:
    """A queued or running job of this kind whose parameters include these (a second submit finds the first)."""
    candidates = session.scalars(
        select(Job)
        .where(Job.bureau_id == bureau_id, Job.kind == kind, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        .order_by(Job.id)
    )
    for job in candidates:
        if all(job.parameters.get(key) == value for key, value in parameters.items()):
            return job
    return None


# --- claiming and running ---------------------------------------------------------------------


def _due(now: datetime):
    return or_(Job.status == JobStatus.QUEUED, and_(Job.status == JobStatus.RUNNING, Job.locked_until < now))


def claim_next(session: Session, *, token: str, now: datetime, lease: timedelta) -> int | None:
    """Claim the oldest job that is queued or whose worker's lease ran out; its id, or None."""
    session.commit()
    candidate = session.scalar(select(Job.id).where(_due(now)).order_by(Job.id).limit(1))
    session.commit()  # the claim below starts a transaction with a write (SQLite cannot upgrade a read later)
    if candidate is None:
        return None
    result = session.execute(
        update(Job)
        .where(Job.id == candidate, _due(now))
        .values(
            version=Job.version + 1,
            status=JobStatus.RUNNING,
            worker=token,
            locked_until=now + lease,
            heartbeat_at=now,
            claims=Job.claims + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        session.execute(
            update(Job)
            .where(Job.id == candidate, Job.started_at.is_(None))
            .values(version=Job.version + 1, started_at=now)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return candidate if result.rowcount == 1 else None


def _fence(session: Session, job_id: int, token: str, now: datetime, lease: timedelta) -> bool:
    """Renew the lease if the claim is still ours; the job's row stays locked until the transaction ends."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == token, Job.status == JobStatus.RUNNING)
        .values(version=Job.version + 1, heartbeat_at=now, locked_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _context(session: Session, job_id: int) -> tuple[JobContext, int]:
    job = session.execute(
        select(
            Job.id,
            Job.kind,
            Job.bureau_id,
            Job.stage,
            Job.parameters,
            Job.created_by_id,
            Job.created_by_label,
            Job.claims,
        ).where(Job.id == job_id)
    ).one()
    context = JobContext(
        id=job.id,
        kind=JobKind(job.kind),
        bureau_id=job.bureau_id,
        stage=job.stage,
        parameters=dict(job.parameters or {}),
        created_by_id=job.created_by_id,
        created_by_label=job.created_by_label,
    )
    return context, job.claims


def _actor(session: Session, job: JobContext) -> User | None:
    return session.get(User, job.created_by_id) if job.created_by_id is not None else None


def _record(session: Session, job: JobContext, rows: dict[int, RowInput], outcomes: dict[int, Outcome]) -> None:
    """Store the rows' outcomes and move the job's counters, in the caller's (the chunk's) transaction."""
    finished = refused = 0
    for row_id, outcome in outcomes.items():
        values: dict[str, Any] = {
            "status": outcome.status,
            "message": _clean(outcome.message),
            "refused": outcome.refused,
            "target_id": outcome.target_id,
            "finished": outcome.finished,
            "stage": job.stage if outcome.finished else job.stage + 1,
        }
        if outcome.extra:
            values["input"] = {**rows[row_id].input, **outcome.extra}
        session.execute(
            update(JobRow)
            .where(JobRow.id == row_id)
            .values(version=JobRow.version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        finished += outcome.finished
        refused += outcome.finished and outcome.refused
    session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(
            version=Job.version + 1,
            done=Job.done + finished,
            errors=Job.errors + refused,
            stage_done=Job.stage_done + len(outcomes),
        )
        .execution_options(synchronize_session=False)
    )


def _end(session: Session, job_id: int, token: str, now: datetime, **values: Any) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == token)
        .values(version=Job.version + 1, locked_until=None, worker=None, **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _fail(session: Session, job_id: int, token: str, now: datetime, message: str) -> None:
    session.rollback()
    _end(session, job_id, token, now, status=JobStatus.FAILED, finished_at=now, last_error=_clean(message))


def _release(session: Session, job_id: int, token: str) -> None:
    """A worker asked to stop hands its job back at once (the claim it used is not counted)."""
    session.rollback()
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == token)
        .values(version=Job.version + 1, status=JobStatus.QUEUED, locked_until=None, worker=None, claims=Job.claims - 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _pending(session: Session, job: JobContext, limit: int) -> list[RowInput]:
    rows = session.execute(
        select(JobRow.id, JobRow.position, JobRow.row_number, JobRow.input)
        .where(JobRow.job_id == job.id, JobRow.finished.is_(False), JobRow.stage == job.stage)
        .order_by(JobRow.position)
        .limit(limit)
    ).all()
    return [RowInput(r.id, r.position, r.row_number, dict(r.input or {})) for r in rows]


def run_job(
    session: Session,
    job_id: int,
    token: str,
    *,
    clock: Callable[[], datetime] = utcnow,
    stop: threading.Event | None = None,
    chunk_rows: int | None = None,
    lease: timedelta | None = None,
    after_chunk: Callable[[int], object] | None = None,
) -> str:
    """Work through a claimed job chunk by chunk; how it ended: done, failed, retry, released or lost."""
    chunk_rows = chunk_rows or int(setting("JOBS_CHUNK_ROWS", CHUNK_ROWS))
    lease = lease or timedelta(seconds=setting("JOBS_LEASE_SECONDS", LEASE_SECONDS))
    job, claims = _context(session, job_id)
    session.commit()
    handler = handler_for(job.kind)
    if claims > MAX_CLAIMS:
        _fail(
            session,
            job_id,
            token,
            clock(),
            str(
                _l(
                    "The job failed several times and has been stopped; the rows not done yet were not saved. "
                    "Try again, and tell support if it fails again."
                )
            ),
        )
        return "failed"
    isolate_until: int | None = None  # after a failed chunk: one row at a time up to this position
    while True:
        if stop is not None and stop.is_set():
            _release(session, job_id, token)
            return "released"
        job, _claims = _context(session, job_id)
        rows = _pending(session, job, 1 if isolate_until is not None else chunk_rows)
        session.commit()
        if isolate_until is not None and (not rows or rows[0].position > isolate_until):
            isolate_until = None
            continue
        try:
            if not rows:
                outcome = _finish_stage(session, handler, job, token, clock(), lease)
                if outcome == "next":
                    continue
                return outcome
            if not _fence(session, job_id, token, clock(), lease):
                session.rollback()
                return "lost"
            session.commit()
            prepared = handler.prepare(job, rows)
            handler.begin(session)
            if not _fence(session, job_id, token, clock(), lease):
                session.rollback()
                return "lost"
            open_ids = set(
                session.scalars(
                    select(JobRow.id).where(
                        JobRow.id.in_([r.id for r in rows]), JobRow.finished.is_(False), JobRow.stage == job.stage
                    )
                )
            )
            todo = [r for r in rows if r.id in open_ids]
            actor = _actor(session, job)
            with acting_as(actor, job.created_by_label):
                outcomes = handler.apply(session, job, todo, prepared, actor) if todo else {}
            _record(session, job, {r.id: r for r in todo}, outcomes)
            session.commit()
        except DomainError as exc:
            log.warning("Job %s refused: %s", job_id, exc)
            _fail(session, job_id, token, clock(), str(exc))
            return "failed"
        except Exception:
            session.rollback()
            if handler.isolate_rows and len(rows) > 1:
                log.exception("Job %s: a chunk failed and was rolled back; its rows are tried one by one", job_id)
                isolate_until = rows[-1].position
                continue
            if handler.isolate_rows and rows:
                log.exception("Job %s: row %s failed alone and is refused", job_id, rows[0].row_number)
                if _refuse_alone(session, job, rows[0], token, clock(), lease):
                    continue
            log.exception("Job %s: a chunk failed and was rolled back; trying again later", job_id)
            pause = RETRY_PAUSE * max(claims, 1)
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker == token)
                .values(
                    version=Job.version + 1,
                    locked_until=clock() + pause,
                    last_error=str(_l("A chunk failed and is tried again shortly; nothing of it was saved.")),
                )
                .execution_options(synchronize_session=False)
            )
            session.commit()
            return "retry"
        if after_chunk is not None:
            after_chunk(job_id)


def _refuse_alone(
    session: Session, job: JobContext, row: RowInput, token: str, now: datetime, lease: timedelta
) -> bool:
    """Record a row that failed on its own as refused; False when even that fails (the database is gone)."""
    message = str(_l("This row could not be saved: the database refused it. Nothing of it was saved."))
    try:
        if not _fence(session, job.id, token, now, lease):
            session.rollback()
            return False
        _record(session, job, {row.id: row}, {row.id: Outcome("failed", message, refused=True)})
        session.commit()
    except Exception:  # noqa: BLE001 - the caller pauses the job instead
        session.rollback()
        log.exception("Job %s: recording the refused row %s failed", job.id, row.row_number)
        return False
    return True


def _finish_stage(
    session: Session, handler: JobHandler, job: JobContext, token: str, now: datetime, lease: timedelta
) -> str:
    """No rows left in this stage: move to the next stage, or finish the job."""
    handler.begin(session)
    if not _fence(session, job.id, token, now, lease):
        session.rollback()
        return "lost"
    actor = _actor(session, job)
    if job.stage + 1 < handler.stages:
        with acting_as(actor, job.created_by_label):
            outcomes = handler.between_stages(session, job, actor)
        if outcomes:
            rows = session.execute(select(JobRow.id, JobRow.input).where(JobRow.id.in_(list(outcomes)))).all()
            inputs = {r.id: RowInput(r.id, 0, 0, dict(r.input or {})) for r in rows}
            _record(session, job, inputs, outcomes)
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(version=Job.version + 1, stage=job.stage + 1, stage_done=0)
            .execution_options(synchronize_session=False)
        )
        # Rows the next stage is not to see are finished above; the others move on.
        session.commit()
        return "next"
    summary = handler.summary(session, job)
    _end(session, job.id, token, now, status=JobStatus.DONE, finished_at=now, summary=summary, last_error=None)
    return "done"


def run_worker(
    app: Flask,
    *,
    interval: float = 2.0,
    stop_event: threading.Event | None = None,
    max_passes: int | None = None,
    clock: Callable[[], datetime] = utcnow,
    chunk_rows: int | None = None,
    after_chunk: Callable[[int], object] | None = None,
    on_job: Callable[[int, str], object] | None = None,
) -> int:
    """Claim and run jobs one after another until SIGINT/SIGTERM, ``stop_event`` or ``max_passes``; the passes run.

    A stop request is honoured between chunks: the job is handed back and the next worker resumes it.
    """
    stop = stop_event or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def request_stop(signum: int, frame: Any) -> None:
            threading.Thread(target=stop.set, daemon=True).start()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    passes = 0
    try:
        while not stop.is_set() and (max_passes is None or passes < max_passes):
            passes += 1
            job_id = None
            try:
                with app.app_context():
                    token = uuid.uuid4().hex
                    lease = timedelta(seconds=setting("JOBS_LEASE_SECONDS", LEASE_SECONDS))
                    job_id = claim_next(db.session, token=token, now=clock(), lease=lease)
                    if job_id is not None:
                        ended = run_job(
                            db.session,
                            job_id,
                            token,
                            clock=clock,
                            stop=stop,
                            chunk_rows=chunk_rows,
                            lease=lease,
                            after_chunk=after_chunk,
                        )
                        if on_job is not None:
                            on_job(job_id, ended)
            except Exception:  # noqa: BLE001 - a database outage must not end the worker
                log.exception("Jobs worker pass failed; trying again in %s s", interval)
            if job_id is None and not stop.is_set() and (max_passes is None or passes < max_passes):
                stop.wait(interval)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return passes


def run_until_idle(app: Flask, *, clock: Callable[[], datetime] = utcnow, limit: int = 1000) -> int:
    """Run every job that is due now, then return the number of claims made (the CLI's ``jobs run``, tests)."""
    claims = 0
    for _round in range(limit):
        with app.app_context():
            token = uuid.uuid4().hex
            lease = timedelta(seconds=setting("JOBS_LEASE_SECONDS", LEASE_SECONDS))
            job_id = claim_next(db.session, token=token, now=clock(), lease=lease)
            if job_id is None:
                return claims
            claims += 1
            run_job(db.session, job_id, token, clock=clock, lease=lease)
    return claims


# --- reading ----------------------------------------------------------------------------------


def bureau_jobs(session: Session, bureau_id: int, limit: int = LIST_LIMIT, criterion=None) -> list[Job]:
    """The "Jobber" list: the bureau's newest jobs (those ``criterion`` keeps: Hjem's running or failed jobs)."""
    query = select(Job).where(Job.bureau_id == bureau_id)
    if criterion is not None:
        query = query.where(criterion)
    return list(session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)))


def find_job(session: Session, bureau_id: int, job_id: int) -> Job | None:
    """The job, only when it is this bureau's."""
    return session.scalar(select(Job).where(Job.id == job_id, Job.bureau_id == bureau_id))


def elapsed_seconds(job: Job, now: datetime | None = None) -> int:
    start = job.started_at or job.created_at
    end = job.finished_at or now or utcnow()
    if start.tzinfo is None:
        start = start.replace(tzinfo=end.tzinfo)
    if end.tzinfo is None:
        end = end.replace(tzinfo=start.tzinfo)
    return max(int((end - start).total_seconds()), 0)


def progress(job: Job) -> dict[str, Any]:
    """The job page's poll: rows done of total, errors so far, elapsed, and whether it has ended."""
    handler = handler_for(job.kind)
    stage_label = handler.stage_labels[min(job.stage, len(handler.stage_labels) - 1)]
    return {
        "id": job.id,
        "status": str(job.status),
        "total": job.total,
        "done": job.done,
        "errors": job.errors,
        "stage": job.stage,
        "stages": handler.stages,
        "stage_label": str(stage_label),
        "stage_done": job.stage_done if job.status is not JobStatus.DONE else job.total,
        "elapsed": elapsed_seconds(job),
        "ended": job.status in (JobStatus.DONE, JobStatus.FAILED),
        "summary": job.summary,
        "error": job.last_error if job.status is JobStatus.FAILED else None,
    }


def job_rows(session: Session, job_id: int, *, refused_only: bool = False, limit: int = RESULTS_SHOWN) -> list[JobRow]:
    query = select(JobRow).where(JobRow.job_id == job_id, JobRow.finished.is_(True))
    if refused_only:
        query = query.where(JobRow.refused.is_(True))
    return list(session.scalars(query.order_by(JobRow.position).limit(limit)))


def rejected_csv(session: Session, job: Job) -> bytes:
    """The refused rows as CSV: the input's columns plus the reason, UTF-8 with BOM, to fix and upload again."""
    columns = list(job.columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*columns, "reason"])
    rows = session.execute(
        select(JobRow.input, JobRow.message)
        .where(JobRow.job_id == job.id, JobRow.finished.is_(True), JobRow.refused.is_(True))
        .order_by(JobRow.position)
        .execution_options(yield_per=1000)
    )
    for values, message in rows:
        writer.writerow([_text((values or {}).get(column, "")) for column in columns] + [_formula_safe(message or "")])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _formula_safe(text: str) -> str:
    """Our own message must not start a spreadsheet formula (it may quote the input)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
