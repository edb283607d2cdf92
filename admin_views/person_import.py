""" "Importer personer" on the client page: upload a spreadsheet of people, see one result per row."""

from __future__ import annotations

from datetime import date

from flask import Response, flash, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user

from admin_views.jobs import job_url, redirect_to_job
from admin_views.submissions import OneTimeSubmission
from extensions import db
from forms.clients import ImportForm
from models import Client, JobKind
from services.errors import DomainError
from services.jobs import create_job, import_threshold
from services.person_import import EXAMPLE_ROWS, HEADER, RowStatus, import_persons
from services.submissions import AlreadySubmitted
from services.tabular import read_table, template_csv


class PersonImportMixin:
    """Mixed into ClientView beside ClientPageMixin: the pages are under /admin/clients/people/import/."""

    @expose("/people/import/", methods=("GET", "POST"))
    def person_import_view(self):
        """Upload a CSV or XLSX file of people for this client; every row is checked and reported."""
        client = self.get_one(request.args.get("id"))
        form = ImportForm()
        results = None
        people_tab = self.get_url(".manage_view", id=client.id, tab="people")
        once = OneTimeSubmission(form)
        replay = once.replay(people_tab)
        if replay is not None:
            return replay
        if form.validate_on_submit():
            upload = form.file.data
            try:
                once.claim()
                rows = read_table(upload.read(), upload.filename, HEADER)
                if len(rows) > import_threshold():
                    job = queue_person_import(client, rows, upload.filename)
                    once.done(job_url(job))  # a repeat of this form opens the job it queued
                    db.session.commit()
                    return redirect_to_job(job)
                results = import_persons(
                    db.session,
                    client.bureau_id,
                    rows,
                    only_client=client,
                    today=date.today(),
                    actor=current_user._get_current_object(),
                )
                once.done(people_tab)
                db.session.commit()
            except AlreadySubmitted as exc:
                db.session.rollback()
                return once.show_first(exc, people_tab)
            except DomainError as exc:
                db.session.rollback()
                flash(str(exc), "error")
            else:
                imported = sum(1 for r in results if r.status is not RowStatus.REFUSED)
                invited = sum(1 for r in results if r.status is RowStatus.INVITED)
                refused = len(results) - imported
                flash(
                    _(
                        "%(imported)s person(s) added, %(invited)s invited, %(refused)s row(s) refused.",
                        imported=imported,
                        invited=invited,
                        refused=refused,
                    ),
                    "success" if not refused else "warning",
                )
        return self.render("admin/clients/import_people.html", client=client, form=form, results=results, header=HEADER)

    @expose("/people/import/template.csv")
    def person_import_template_view(self):
        """The header row and example rows, to fill in."""
        return Response(
            template_csv(HEADER, EXAMPLE_ROWS),
            mimetype="text/csv",
            headers={"Content-Disposition": "attachment; filename=importer-personer.csv"},
        )


def queue_person_import(client: Client, rows: list[dict[str, str]], filename: str | None):
    """A spreadsheet too big for one request becomes a job, run by the jobs worker once the caller commits."""
    job = create_job(
        db.session,
        bureau_id=client.bureau_id,
        kind=JobKind.PERSON_IMPORT,
        actor=current_user._get_current_object(),
        title=_(
            "Import people into %(client)s: %(file)s (%(rows)s rows)",
            client=client.name,
            file=filename or "",
            rows=len(rows),
        ),
        rows=rows,
        row_numbers=range(2, len(rows) + 2),
        columns=HEADER,
        parameters={"client_id": client.id},
    )
    return job
