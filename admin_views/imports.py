"""The pages of both spreadsheet imports: upload → preview of every row → "Importer N rader" (see
``services/import_rows.py`` for what a row's outcome means).

- The upload only reads and checks: the import runs in a savepoint that is rolled back, and the rows are kept on the
  server (``IMPORT_UPLOAD_DIR``) under a random key bound to the user, the bureau, the import and the client. The
  confirm form names only that key, so a preview cannot be forged by editing the page.
- "Importer N rader" carries a one-time token (a second POST imports nothing and is sent to the first one's result),
  runs the import again for real (or queues it as a background job for a big file) and says when the counts differ
  from the preview's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from flask import Response, abort, current_app, flash, redirect, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user

from admin_views.jobs import job_url, redirect_to_job
from admin_views.submissions import OneTimeSubmission
from extensions import db
from forms.clients import ImportConfirmForm, ImportForm
from models import Client, Job, JobKind
from services import client_import, person_import
from services.errors import DomainError
from services.import_rows import (
    ImportCounts,
    RowResult,
    changed_since_preview,
    discard_upload,
    load_upload,
    save_upload,
)
from services.jobs import create_job, import_threshold
from services.submissions import AlreadySubmitted
from services.tabular import template_csv


@dataclass
class ImportPage:
    """One import as its pages see it; ``run(rows, dry_run)`` classifies (and, unless a dry run, imports) the rows."""

    kind: str  # "clients" or "persons": part of the upload's owner and of the one-time token's form
    template: str
    header: tuple[str, ...]
    upload_url: str
    confirm_url: str
    done_url: str  # where a repeated "Importer N rader" is sent, and the link back
    read: Callable[[bytes, str], list[dict[str, str]]]
    run: Callable[[list[dict[str, str]], bool], list[RowResult]]
    queue: Callable[[list[dict[str, str]], str, list[int]], Job]
    client: Client | None = None

    @property
    def owner(self) -> dict[str, object]:
        return {
            "user": current_user.id,
            "bureau": current_user.bureau_id,
            "kind": self.kind,
            "client": self.client.id if self.client is not None else None,
        }

    @property
    def token_key(self) -> str:
        return f"import-{self.kind}-{self.client.id if self.client is not None else ''}"

    def render(self, view, **context):
        return view.render(
            self.template,
            client=self.client,
            header=self.header,
            confirm_url=self.confirm_url,
            done_url=self.done_url,
            **context,
        )


def upload_folder() -> str:
    return current_app.config["IMPORT_UPLOAD_DIR"]


def show_upload(view, page: ImportPage):
    """GET: the upload form. POST: the file read and every row classified, nothing kept but the file."""
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        filename = upload.filename or ""
        try:
            rows = page.read(upload.read(), filename)
            results = page.run(rows, True)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.rollback()  # a preview keeps nothing (its rows were rolled back already)
            counts = ImportCounts.of(results)
            key = save_upload(upload_folder(), owner=page.owner, filename=filename, rows=rows)
            confirm = ImportConfirmForm(data={"upload": key, "previewed": _counts_text(counts)})
            OneTimeSubmission(confirm, key=page.token_key)
            return page.render(view, form=form, results=results, counts=counts, stage="preview", confirm_form=confirm)
    return page.render(view, form=form, results=None, counts=None, stage=None, confirm_form=None)


def confirm_import(view, page: ImportPage):
    """POST "Importer N rader": the kept file imported once (a big one as a job), with its counts compared."""
    form = ImportConfirmForm()
    once = OneTimeSubmission(form, key=page.token_key)
    replay = once.replay(page.done_url)
    if replay is not None:
        return replay
    key = form.upload.data or ""
    try:
        once.claim()  # first: a twin POST waits here for this one, and then finds its result
        filename, rows = load_upload(upload_folder(), key, owner=page.owner)
        previewed = _read_counts(form.previewed.data)
        if len(rows) > import_threshold():
            job = page.queue(rows, filename, previewed.as_list() if previewed else [])
            once.done(job_url(job))  # a repeat of this form opens the job it queued
            db.session.commit()
            discard_upload(upload_folder(), key)
            return redirect_to_job(job)
        results = page.run(rows, False)
        once.done(page.done_url)
        db.session.commit()
    except AlreadySubmitted as exc:
        db.session.rollback()
        return once.show_first(exc, page.done_url)
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(page.upload_url)
    discard_upload(upload_folder(), key)
    counts = ImportCounts.of(results)
    flash(
        _(
            "%(created)s row(s) imported, %(duplicate)s duplicate(s) skipped, %(refused)s row(s) refused.",
            created=counts.created,
            duplicate=counts.duplicate,
            refused=counts.refused,
        ),
        "success" if not counts.refused else "warning",
    )
    changed = changed_since_preview(previewed, counts) if previewed is not None else None
    if changed:
        flash(changed, "warning")
    return page.render(view, form=ImportForm(), results=results, counts=counts, stage="done", confirm_form=None)


def _counts_text(counts: ImportCounts) -> str:
    return ",".join(str(n) for n in counts.as_list())


def _read_counts(text: str | None) -> ImportCounts | None:
    """The preview's counts the form carries (only compared, never trusted for anything else)."""
    parts = (text or "").split(",")
    if len(parts) != 3 or not all(part.isdigit() and len(part) < 7 for part in parts):
        return None
    created, duplicate, refused = (int(part) for part in parts)
    return ImportCounts(created=created, duplicate=duplicate, refused=refused)


def template_response(header, rows, filename: str) -> Response:
    return Response(
        template_csv(header, rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


# --- "Importer kunder" -----------------------------------------------------------------------------------------------


class ClientImportMixin:
    """Mixed into ClientView: the pages are under /admin/clients/import/."""

    def client_import_page(self) -> ImportPage:
        from services.registry import request_registry

        bureau_id = current_user.bureau_id

        def run(rows, dry_run):
            return client_import.import_clients(
                db.session, bureau_id, rows, request_registry(current_app), dry_run=dry_run
            )

        return ImportPage(
            kind="clients",
            template="admin/clients/import.html",
            header=client_import.TEMPLATE_HEADER,
            upload_url=self.get_url(".import_view"),
            confirm_url=self.get_url(".import_confirm_view"),
            done_url=self.get_url(".index_view"),
            read=client_import.read_rows,
            run=run,
            queue=queue_client_import,
        )

    @expose("/import/", methods=("GET", "POST"))
    def import_view(self):
        """Upload a spreadsheet of clients: every row is checked, looked up and shown before anything is created."""
        return show_upload(self, self.client_import_page())

    @expose("/import/confirm/", methods=("POST",))
    def import_confirm_view(self):
        """ "Importer N rader" under the preview."""
        return confirm_import(self, self.client_import_page())

    @expose("/import/template.csv")
    def import_template_view(self):
        """The Norwegian header row and two example rows, to fill in."""
        return template_response(client_import.TEMPLATE_HEADER, client_import.EXAMPLE_ROWS, "importer-kunder.csv")


def queue_client_import(rows: list[dict[str, str]], filename: str, previewed: list[int]) -> Job:
    """A spreadsheet too big for one request becomes a job, run by the jobs worker once the caller commits."""
    return create_job(
        db.session,
        bureau_id=current_user.bureau_id,
        kind=JobKind.CLIENT_IMPORT,
        actor=current_user._get_current_object(),
        title=_("Import clients: %(file)s (%(rows)s rows)", file=filename or "", rows=len(rows)),
        rows=rows,
        row_numbers=range(2, len(rows) + 2),
        columns=client_import.HEADER,
        parameters={"previewed": previewed},
    )


# --- "Importer personer" ---------------------------------------------------------------------------------------------


def person_import_page(view, client: Client) -> ImportPage:
    actor = current_user._get_current_object()

    def run(rows, dry_run):
        return person_import.import_persons(
            db.session,
            client.bureau_id,
            rows,
            only_client=client,
            today=date.today(),
            actor=actor,
            dry_run=dry_run,
        )

    def queue(rows, filename, previewed):
        return queue_person_import(client, rows, filename, previewed)

    return ImportPage(
        kind="persons",
        template="admin/clients/import_people.html",
        header=person_import.TEMPLATE_HEADER,
        upload_url=view.get_url(".person_import_view", id=client.id),
        confirm_url=view.get_url(".person_import_confirm_view", id=client.id),
        done_url=view.get_url(".manage_view", id=client.id, tab="people"),
        read=person_import.read_rows,
        run=run,
        queue=queue,
        client=client,
    )


def queue_person_import(client: Client, rows: list[dict[str, str]], filename: str, previewed: list[int]) -> Job:
    """A spreadsheet too big for one request becomes a job, run by the jobs worker once the caller commits."""
    return create_job(
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
        columns=person_import.HEADER,
        parameters={"client_id": client.id, "previewed": previewed},
    )


class PersonImportMixin:
    """Mixed into ClientView after PeopleTabMixin: the pages are under /admin/clients/people/import/."""

    def import_client(self) -> Client:
        """The client of ``?id=``: another bureau's, or none, is not found."""
        client = self.get_one(request.args.get("id"))
        if client is None:
            abort(404)
        return client

    @expose("/people/import/", methods=("GET", "POST"))
    def person_import_view(self):
        """Upload a spreadsheet of people for this client: every row is checked and shown before anything is added."""
        return show_upload(self, person_import_page(self, self.import_client()))

    @expose("/people/import/confirm/", methods=("POST",))
    def person_import_confirm_view(self):
        """ "Importer N rader" under the preview."""
        return confirm_import(self, person_import_page(self, self.import_client()))

    @expose("/people/import/template.csv")
    def person_import_template_view(self):
        """The Norwegian header row and example rows, to fill in."""
        return template_response(person_import.TEMPLATE_HEADER, person_import.EXAMPLE_ROWS, "importer-personer.csv")
