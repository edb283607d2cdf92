""" "Jobber": the bureau's background jobs, each with a live progress bar, its per-row results and the rejected rows."""

from __future__ import annotations

from flask import Response, abort, flash, jsonify, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from admin_views.base import deny_access, parse_id, staff_can_use_admin
from extensions import db
from models import Job, JobKind, JobStatus, utcnow
from services import home, jobs
from services.formats import format_moment

KIND_LABELS = {
    JobKind.CLIENT_IMPORT: _l("Import clients"),
    JobKind.PERSON_IMPORT: _l("Import people"),
    JobKind.CLIENT_REFRESH: _l("Update from Brønnøysund"),
    JobKind.BILLING_CLOSE: _l("Close the month"),
}
STATUS_LABELS = {
    JobStatus.QUEUED: _l("Waiting"),
    JobStatus.RUNNING: _l("Running"),
    JobStatus.DONE: _l("Finished"),
    JobStatus.FAILED: _l("Failed"),
}

# What a row's outcome is called on the job page (the statuses of every kind of job).
ROW_STATUS_LABELS = {
    "created": _l("Created"),
    "duplicate": _l("Duplicate (skipped)"),
    "invalid_number": _l("Invalid number"),
    "not_found": _l("Not found"),
    "invalid": _l("Refused"),
    "refused": _l("Refused"),
    "registry_unavailable": _l("Register unavailable"),
    "invited": _l("Invited"),
    "updated": _l("Changed"),
    "unchanged": _l("Unchanged"),
    "without_number": _l("No organisation number"),
    "gone": _l("Deleted"),
    "changed": _l("Changed meanwhile"),
    "closed": _l("Closed"),
    "already_closed": _l("Already closed"),
    "failed": _l("Not saved"),
}


def job_url(job: Job) -> str:
    return url_for("jobs.job_view", job_id=job.id)


def redirect_to_job(job: Job):
    """Where a page that queued a job sends the user: the job's page with its progress bar."""
    return redirect(job_url(job))


def _elapsed_text(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def progress_view_model(job: Job) -> dict:
    """The poll's answer, with the sentences the page shows (translated here, not in the script)."""
    data = jobs.progress(job)
    total = max(data["total"], 1)
    shown = data["done"] if job.status is JobStatus.FAILED else data["stage_done"]
    data["percent"] = 100 if job.status is JobStatus.DONE else min(100, int(100 * shown / total))
    data["status_label"] = str(STATUS_LABELS[job.status])
    data["text"] = _(
        "%(done)s of %(total)s rows done, %(errors)s error(s), %(elapsed)s elapsed.",
        done=data["done"],
        total=data["total"],
        errors=data["errors"],
        elapsed=_elapsed_text(data["elapsed"]),
    )
    if job.status is JobStatus.QUEUED:
        data["stage_text"] = _("Waiting for the jobs worker to start.")
    elif data["stages"] > 1 and not data["ended"]:
        data["stage_text"] = _(
            "%(stage)s (step %(number)s of %(stages)s): %(count)s of %(total)s rows.",
            stage=data["stage_label"],
            number=data["stage"] + 1,
            stages=data["stages"],
            count=data["stage_done"],
            total=data["total"],
        )
    else:
        data["stage_text"] = data["stage_label"] if not data["ended"] else data["status_label"]
    return data


class JobsView(BaseView):
    """The bureau's jobs (newest first, bounded) and one page per job; other bureaus' jobs are not found."""

    def is_accessible(self) -> bool:
        return staff_can_use_admin()

    def inaccessible_callback(self, name, **kwargs):
        return deny_access()

    def _job(self, job_id: str) -> Job:
        key = parse_id(job_id)
        job = jobs.find_job(db.session, current_user.bureau_id, key) if key is not None else None
        if job is None:
            abort(404)
        return job

    def _shown(self) -> tuple[str | None, object]:
        """The list's filter from Hjem's links: ``status=running``, or ``status=failed`` within ``days`` days
        (services/home.py, the same criterion as Hjem's count); any other value is refused with a message."""
        status, days = request.args.get("status"), request.args.get("days")
        if status is None:
            return None, None
        if status == "running":
            return status, Job.status == JobStatus.RUNNING
        if status == "failed":
            number = parse_id(days) if days is not None else home.failed_job_days()
            if number is not None and 0 < number <= 3650:
                return status, home.failed_jobs_clause(utcnow(), number)
        flash(_("Unknown filter value: the list shows every job."), "error")
        return None, None

    @expose("/")
    def index(self):
        status, criterion = self._shown()
        rows = [
            {
                "job": job,
                "kind": KIND_LABELS[job.kind],
                "status": STATUS_LABELS[job.status],
                "created": format_moment(job.created_at),
            }
            for job in jobs.bureau_jobs(db.session, current_user.bureau_id, criterion=criterion)
        ]
        return self.render("admin/jobs/list.html", rows=rows, limit=jobs.LIST_LIMIT, status=status)

    @expose("/<job_id>/")
    def job_view(self, job_id: str):
        job = self._job(job_id)
        refused_only = request.args.get("refused") == "1"
        ended = job.status in (JobStatus.DONE, JobStatus.FAILED)
        results = jobs.job_rows(db.session, job.id, refused_only=refused_only) if ended else []
        return self.render(
            "admin/jobs/job.html",
            job=job,
            kind=KIND_LABELS[job.kind],
            created=format_moment(job.created_at),
            progress=progress_view_model(job),
            ended=ended,
            results=results,
            refused_only=refused_only,
            shown_limit=jobs.RESULTS_SHOWN,
            row_labels=ROW_STATUS_LABELS,
            links_to_clients=job.kind in (JobKind.CLIENT_IMPORT, JobKind.CLIENT_REFRESH, JobKind.PERSON_IMPORT),
        )

    @expose("/<job_id>/progress.json")
    def progress_view(self, job_id: str):
        return jsonify(progress_view_model(self._job(job_id)))

    @expose("/<job_id>/rejected.csv")
    def rejected_view(self, job_id: str):
        job = self._job(job_id)
        return Response(
            jobs.rejected_csv(db.session, job),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename=avviste-rader-jobb-{job.id}.csv"},
        )
