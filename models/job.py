"""Background jobs: work that can outlive a request (imports, the bulk register refresh, month closing).

A job is a row here and one ``JobRow`` per unit of its input (a spreadsheet row, a client, a month). The jobs
worker (``flask jobs worker``) claims a job with a lease and works through its rows in chunks, committing each
chunk together with the rows' outcomes, so a worker that stops or dies resumes where the last commit left off.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import TenantOwned, Timestamped, Versioned, enum_column


class JobStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"  # claimed by a worker until locked_until (renewed every chunk)
    DONE = "done"  # every row has its outcome (some may be refused)
    FAILED = "failed"  # stopped by an error that is not a row's; the rows done so far stay done


class JobKind(enum.StrEnum):
    CLIENT_IMPORT = "client_import"
    PERSON_IMPORT = "person_import"
    CLIENT_REFRESH = "client_refresh"
    BILLING_CLOSE = "billing_close"


class Job(TenantOwned, Versioned, Timestamped, db.Model):
    __tablename__ = "jobs"
    __table_args__ = (
        # The "Jobber" list: a bureau's jobs, newest first.
        Index("ix_jobs_bureau_created", "bureau_id", "created_at", "id"),
        # Hjem and the list's status filter: a bureau's running or failed jobs, newest first.
        Index("ix_jobs_bureau_status_created", "bureau_id", "status", "created_at", "id"),
        # The worker's claim: queued jobs, and running ones whose lease has run out.
        Index("ix_jobs_status_locked_until", "status", "locked_until"),
        CheckConstraint(
            "total >= 0 AND done >= 0 AND errors >= 0 AND stage_done >= 0 AND done <= total", name="counts_in_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = enum_column(JobKind, name="job_kind", nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_by_label: Mapped[str] = mapped_column(String(300), nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    status: Mapped[JobStatus] = enum_column(JobStatus, name="job_status", nullable=False, default=JobStatus.QUEUED)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    # The input's columns, for the download of the rejected rows (same columns plus the reason).
    columns: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    errors: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # A kind may work in stages (the person import checks every row before it imports any).
    stage: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    stage_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # rows handled in this stage
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker: Mapped[str | None] = mapped_column(String(64))  # the claim's token: only its holder records outcomes
    claims: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)

    def __str__(self) -> str:
        return self.title


class JobRow(Versioned, db.Model):
    """One unit of a job's input and, once processed, its outcome (``status`` is None until then)."""

    __tablename__ = "job_rows"
    __table_args__ = (
        UniqueConstraint("job_id", "position"),
        # The next chunk: a job's rows not done yet, in order.
        Index("ix_job_rows_job_pending", "job_id", "finished", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    row_number: Mapped[int] = mapped_column(Integer, nullable=False)  # as the user knows it (spreadsheet row)
    input: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    stage: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # the job stage that last handled it
    finished: Mapped[bool] = mapped_column(nullable=False, default=False)
    status: Mapped[str | None] = mapped_column(String(40))
    refused: Mapped[bool] = mapped_column(nullable=False, default=False)
    message: Mapped[str | None] = mapped_column(Text)
    target_id: Mapped[int | None] = mapped_column(Integer)  # the client the row created or changed, for a link
