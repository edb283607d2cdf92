"""Importer kunder": a spreadsheet of clients, each row checked and looked up in the register (a job when big)."""

from __future__ import annotations

from flask import current_app, flash
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user

from admin_views.submissions import OneTimeSubmission
from admin_views.unit_of_work import unit_of_work
from extensions import db
from forms.clients import ImportForm
from services.registry import request_registry


class ClientImportPages:
    """``/admin/clients/import/``: the upload, its report and the template to fill in."""

    @expose("/import/", methods=("GET", "POST"))
    def import_view(self):
        """Upload a spreadsheet; every row is checked, looked up in the register and reported."""
        from admin_views.jobs import job_url, redirect_to_job
        from services.client_import import HEADER, OK_STATUSES, import_clients
        from services.jobs import import_threshold
        from services.tabular import read_table

        form = ImportForm()
        results = None
        once = OneTimeSubmission(form)
        replay = once.replay(self.get_url(".index_view"))
        if replay is not None:
            return replay
        if form.validate_on_submit():
            upload = form.file.data
            job = None
            with unit_of_work(once, fallback=self.get_url(".index_view")) as work:
                work.claim()
                rows = read_table(upload.read(), upload.filename, HEADER)
                if len(rows) > import_threshold():
                    job = queue_client_import(rows, upload.filename)
                    work.leads_to(job_url(job))  # a repeat of this form opens the job it queued
                else:
                    results = import_clients(db.session, current_user.bureau_id, rows, request_registry(current_app))
                    work.leads_to(self.get_url(".index_view"))
            if work.replay:
                return work.replay
            if work.done and job is not None:
                return redirect_to_job(job)
            if work.done:
                created = sum(1 for r in results if r.status == "created")
                refused = sum(1 for r in results if r.status not in OK_STATUSES)
                flash(
                    _("%(created)s client(s) created, %(refused)s row(s) refused.", created=created, refused=refused),
                    "success" if not refused else "warning",
                )
        return self.render("admin/clients/import.html", form=form, results=results, header=HEADER)

    @expose("/import/template.csv")
    def import_template_view(self):
        """The header row and two example rows, to fill in."""
        from flask import Response

        from services.client_import import EXAMPLE_ROWS, HEADER
        from services.tabular import template_csv

        return Response(
            template_csv(HEADER, EXAMPLE_ROWS),
            mimetype="text/csv",
            headers={"Content-Disposition": "attachment; filename=importer-kunder.csv"},
        )


def queue_client_import(rows: list[dict[str, str]], filename: str | None):
    """A spreadsheet too big for one request becomes a job, run by the jobs worker once the caller commits."""
    from models import JobKind
    from services.client_import import HEADER
    from services.jobs import create_job

    job = create_job(
        db.session,
        bureau_id=current_user.bureau_id,
        kind=JobKind.CLIENT_IMPORT,
        actor=current_user._get_current_object(),
        title=_("Import clients: %(file)s (%(rows)s rows)", file=filename or "", rows=len(rows)),
        rows=rows,
        row_numbers=range(2, len(rows) + 2),
        columns=HEADER,
    )
    return job
