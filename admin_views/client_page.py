"""The client's own pages: "+ Ny kunde" with the register lookup, and "Behandle klient" (Oversikt tab)."""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from admin_views.billing import packages_context
from admin_views.labels import REGISTRY_STATUS
from admin_views.submissions import OneTimeSubmission
from extensions import db
from forms.clients import ImportForm, InvoiceEmailTextForm, NewClientForm, VersionedActionForm
from models import Client, CustomerTemplate
from services import client_refresh, company_lookup
from services.clients import DuplicateOrgNumber, NewClient, create_client
from services.consent import request_consent
from services.errors import DomainError, StaleEditError
from services.history_format import HISTORY_LIMIT
from services.registry import (
    CompanyNotFound,
    InvalidOrgNumber,
    NonsenseAnswer,
    RegistryError,
    RegistryUnavailable,
    request_registry,
)
from services.registry.messages import MANUAL_ENTRY_HINT, NOTHING_CHANGED, error_kind, user_message
from services.submissions import AlreadySubmitted

SWITCHES = {
    "company_lookup_enabled": "Company lookup",
    "custom_invoice_email_enabled": "Custom invoice e-mail",
}
TABS = ("overview", "people", "packages", "history")
# Oversikt shows the latest changes; the Historikk tab shows up to HISTORY_LIMIT of them.
OVERVIEW_HISTORY = 10
# A name in the register is at most a few hundred characters; a longer query is cut, not sent whole.
MAX_REGISTRY_QUERY = 200
# "Apply these changes" applies what the preview showed, if the preview was this recent (seconds); else it asks again.
REFRESH_CONFIRM_WINDOW = 600


def registry_failure(exc: RegistryError, advice: str) -> str:
    """The reason the register gave no answer, with ``advice`` when the register (not the input) failed."""
    if isinstance(exc, RegistryUnavailable | NonsenseAnswer):
        return f"{user_message(exc)} {advice}"
    return user_message(exc)


def stale_message() -> str:
    return _(
        "Someone else saved this record while you were editing it. "
        "Reload the page to see their changes, then make yours again."
    )


class ClientPageMixin:
    """Mixed into ClientView: every page here is under /admin/clients/ and needs its login."""

    # --- "+ Ny kunde" ---------------------------------------------------------------------------
    def _template_choices(self) -> list:
        from wtforms.fields.choices import SelectChoice

        templates = db.session.scalars(
            select(CustomerTemplate)
            .where(CustomerTemplate.bureau_id == current_user.bureau_id)
            .order_by(CustomerTemplate.name)
        )
        return [SelectChoice("", "–")] + [SelectChoice(str(t.id), t.name) for t in templates]

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """The creation form: register lookup as you type, contact person, consent e-mail on "Opprett"."""
        form = NewClientForm()
        form.template.choices = self._template_choices()
        once = OneTimeSubmission(form)
        replay = once.replay()
        if replay is not None:
            return replay
        duplicate = None
        if form.validate_on_submit():
            data = NewClient(
                **{
                    name: form[name].data
                    for name in NewClient.__dataclass_fields__
                    if name in form and name != "template"
                },
                template_id=int(form.template.data) if form.template.data else None,
            )
            try:
                once.claim()
                client = create_client(db.session, current_user.bureau_id, data)
                once.done(self.get_url(".manage_view", id=client.id))
                db.session.commit()
            except AlreadySubmitted as exc:
                db.session.rollback()
                return once.show_first(exc)
            except DuplicateOrgNumber as exc:
                db.session.rollback()
                duplicate = exc.existing  # said once, with its link, above the form
            except DomainError as exc:
                db.session.rollback()
                flash(str(exc), "error")
            else:
                flash(
                    _("The client %(name)s was created and the consent e-mail is on its way.", name=client.name),
                    "success",
                )
                return redirect(self.get_url(".manage_view", id=client.id))
        elif request.method == "POST":
            flash(_("Check the fields marked in red; nothing was saved."), "error")
        status_labels = {key: str(label) for key, label in REGISTRY_STATUS.items()}
        return self.render("admin/clients/new.html", form=form, duplicate=duplicate, status_labels=status_labels)

    @expose("/registry/search/")
    def registry_search(self):
        """JSON for the typeahead: the register's matches for a name or an org number, within the request budget.

        A slow or absent register answers 503, nonsense 502, each with a message in ``error`` and its ``kind``;
        the form keeps working by hand.
        """
        text = " ".join((request.args.get("q") or "").split())[:MAX_REGISTRY_QUERY]
        if len(text) < 2:
            return jsonify(results=[])
        try:
            page = request_registry(current_app).search(text)
        except CompanyNotFound:
            return jsonify(results=[])
        except InvalidOrgNumber as exc:
            return jsonify(results=[], error=user_message(exc), kind="invalid"), 200
        except RegistryError as exc:
            status = 502 if isinstance(exc, NonsenseAnswer) else 503
            return jsonify(
                results=[], error=registry_failure(exc, str(MANUAL_ENTRY_HINT)), kind=error_kind(exc)
            ), status
        matches = company_lookup.search_matches(db.session, current_user.bureau_id, page.records)
        for match in matches:
            if match["existing"] is not None:
                match["existing"]["url"] = self.get_url(".manage_view", id=match["existing"]["id"])
        return jsonify(results=matches, total=page.total)

    @expose("/registry/roles/")
    def registry_roles(self):
        """JSON: the company's daglig leder and styreleder, to suggest as contact person."""
        org_number = (request.args.get("org") or "").strip()[:MAX_REGISTRY_QUERY]
        try:
            holders = request_registry(current_app).roles(org_number)
        except RegistryError as exc:
            return jsonify(holders=[], error=registry_failure(exc, str(MANUAL_ENTRY_HINT)), kind=error_kind(exc)), 200
        suggestions, message = company_lookup.contact_suggestions(holders)
        return jsonify(holders=suggestions, message=message)

    # --- "Behandle klient" --------------------------------------------------------------------
    @expose("/manage/")
    def manage_view(self):
        client = self.get_one(request.args.get("id"))
        tab = request.args.get("tab", "overview")
        if tab not in TABS:
            abort(404)
        texts = client.invoice_email_texts or {}
        invoice_form = InvoiceEmailTextForm(
            data={
                **{f"subject_{lang}": t.get("subject") for lang, t in texts.items()},
                **{f"body_{lang}": t.get("body") for lang, t in texts.items()},
                "version_check": client.version,
            }
        )
        return self._render_page(client, tab, invoice_form)

    def _render_page(self, client: Client, tab: str, invoice_form: InvoiceEmailTextForm):
        return self.render(
            "admin/clients/page.html",
            client=client,
            tab=tab,
            action_form=VersionedActionForm(data={"version_check": client.version}),
            invoice_form=invoice_form,
            switches=SWITCHES,
            history=(
                self.history_for(client, limit=HISTORY_LIMIT if tab == "history" else OVERVIEW_HISTORY)
                if tab in ("overview", "history")
                else []
            ),
            registry_status=REGISTRY_STATUS,
            **self.archive_flags(client),
            **(self.people_context(client) if tab == "people" else {}),
            **(packages_context(client) if tab == "packages" else {}),
        )

    def _load_for_change(self) -> Client:
        """The client a POST on its page changes, refused when the page was stale."""
        client = self.get_one(request.args.get("id"))
        form = VersionedActionForm()
        if not form.validate_on_submit():
            abort(400)
        if form.version_check.data and form.version_check.data != str(client.version):
            raise StaleEditError(stale_message())
        return client

    def _back(self, client: Client, tab: str = "overview"):
        return redirect(self.get_url(".manage_view", id=client.id, tab=tab))

    @expose("/switch/<switch>/", methods=("POST",))
    def switch_view(self, switch: str):
        """Turn Bedriftsoppslag or Egendefinert fakturaepost on or off (recorded in the history)."""
        if switch not in SWITCHES:
            abort(404)
        try:
            client = self._load_for_change()
        except StaleEditError as exc:
            flash(str(exc), "error")
            return redirect(self.get_url(".manage_view", id=request.args.get("id")))
        setattr(client, switch, not getattr(client, switch))
        db.session.commit()
        state = _("on") if getattr(client, switch) else _("off")
        flash(_("%(switch)s is now %(state)s.", switch=_(SWITCHES[switch]), state=state), "success")
        return self._back(client)

    @expose("/invoice-texts/", methods=("POST",))
    def invoice_texts_view(self):
        """Save the client's invoice e-mail texts per language, merge fields checked first."""
        client = self.get_one(request.args.get("id"))
        form = InvoiceEmailTextForm()
        if not client.custom_invoice_email_enabled:
            flash(_("Turn on custom invoice e-mail first."), "error")
            return self._back(client)
        if not form.validate_on_submit():
            for field in form:
                for error in field.errors:
                    flash(f"{field.label.text}: {error}", "error")
            return self._render_page(client, "overview", form)
        if form.version_check.data and form.version_check.data != str(client.version):
            flash(stale_message(), "error")
            return self._back(client)
        client.invoice_email_texts = {
            language: {"subject": form[f"subject_{language}"].data, "body": form[f"body_{language}"].data}
            for language in ("nb", "sv", "en")
            if form[f"subject_{language}"].data
        }
        db.session.commit()
        flash(_("The invoice e-mail texts are saved."), "success")
        return self._back(client)

    @expose("/consent/", methods=("POST",))
    def consent_view(self):
        """Send (or send again) the GDPR consent e-mail to the contact person."""
        try:
            client = self._load_for_change()
            request_consent(db.session, client)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(self.get_url(".manage_view", id=request.args.get("id")))
        flash(
            _(
                "The consent request was sent to %(email)s; older links no longer work.",
                email=client.contact_person.email,
            ),
            "success",
        )
        return self._back(client)

    @expose("/refresh/", methods=("GET", "POST"))
    def refresh_view(self):
        """Show field by field what the register would change; apply on confirmation.

        The preview always asks the register (within the request budget); the confirmation applies what the
        preview showed when it is recent, and stamps the time the register gave it, not the time of the click.
        """
        client = self.get_one(request.args.get("id"))
        if not client.org_number:
            flash(_("The client has no organisation number to look up."), "error")
            return self._back(client)
        max_age = REFRESH_CONFIRM_WINDOW if request.method == "POST" else 0
        try:
            record = request_registry(current_app).lookup(client.org_number, max_age=max_age)
        except RegistryError as exc:
            flash(registry_failure(exc, str(NOTHING_CHANGED)), "error")
            return self._back(client)
        if request.method == "POST":
            try:
                self._load_for_change()
            except StaleEditError as exc:
                flash(str(exc), "error")
                return redirect(self.get_url(".refresh_view", id=client.id))
            changes = client_refresh.apply(client, record)
            db.session.commit()
            for warning in client_refresh.warnings(record):
                flash(warning, "warning")
            flash(_("%(count)s field(s) updated from the register.", count=len(changes)), "success")
            return self._back(client)
        return self.render(
            "admin/clients/refresh.html",
            client=client,
            record=record,
            changes=client_refresh.diff(client, record),
            warnings=client_refresh.warnings(record),
            action_form=VersionedActionForm(data={"version_check": client.version}),
        )

    # --- "Importer kunder" -------------------------------------------------------------------
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
            try:
                once.claim()
                rows = read_table(upload.read(), upload.filename, HEADER)
                if len(rows) > import_threshold():
                    job = queue_client_import(rows, upload.filename)
                    once.done(job_url(job))  # a repeat of this form opens the job it queued
                    db.session.commit()
                    return redirect_to_job(job)
                results = import_clients(db.session, current_user.bureau_id, rows, request_registry(current_app))
                once.done(self.get_url(".index_view"))
                db.session.commit()
            except AlreadySubmitted as exc:
                db.session.rollback()
                return once.show_first(exc, self.get_url(".index_view"))
            except DomainError as exc:
                db.session.rollback()
                flash(str(exc), "error")
            else:
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
