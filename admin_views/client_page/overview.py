"""The Oversikt tab: company and contact, the access switches, invoice e-mail texts, consent, register refresh."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from admin_views.client_page.page import registry_failure, stale_message
from admin_views.unit_of_work import unit_of_work
from extensions import db
from forms.clients import CompanyForm, ContactForm, InvoiceEmailTextForm, VersionedActionForm
from models import Client, ContactRole, User
from services import client_page, client_refresh, countries
from services.clients import (
    COMPANY_FIELDS,
    DuplicateOrgNumber,
    company_changes,
    contact_changes,
    set_contact_person,
    set_invoice_email_texts,
    set_switch,
    update_company,
    update_contact,
)
from services.consent import request_consent
from services.errors import StaleEditError
from services.history_format import HISTORY_LIMIT
from services.registry import RegistryError, request_registry
from services.registry.messages import NOTHING_CHANGED

# "Apply these changes" applies what the preview showed, if the preview was this recent (seconds); else it asks again.
REFRESH_CONFIRM_WINDOW = 600


def _actor() -> User:
    return current_user._get_current_object()


# Oversikt shows the latest changes; the Historikk tab shows up to HISTORY_LIMIT of them.
OVERVIEW_HISTORY = 10


class OverviewTab:
    """The Oversikt tab's context and the changes made from it."""

    def overview_context(
        self,
        client: Client,
        invoice_form: InvoiceEmailTextForm | None = None,
        company_form: CompanyForm | None = None,
        contact_form: ContactForm | None = None,
        duplicate: Client | None = None,
    ) -> dict:
        """``?edit=company`` or ``?edit=contact`` turns that card into its form (a form with errors is passed in)."""
        if invoice_form is None:
            texts = client.invoice_email_texts or {}
            invoice_form = InvoiceEmailTextForm(
                data={
                    **{f"subject_{lang}": t.get("subject") for lang, t in texts.items()},
                    **{f"body_{lang}": t.get("body") for lang, t in texts.items()},
                    "version_check": client.version,
                }
            )
        model = client_page.overview(client)
        editing = request.args.get("edit") if model.can_edit else None
        if company_form is None and editing == "company":
            company_form = self._company_form(client, obj=client)
        if contact_form is None and editing == "contact":
            contact_form = self._contact_form(client, obj=client)
        return {
            "overview": model,
            "invoice_form": invoice_form,
            "company_form": company_form,
            "contact_form": contact_form,
            "duplicate": duplicate,
            "history": self.history_for(client, limit=OVERVIEW_HISTORY),
        }

    # --- the company and contact cards, edited in place -----------------------------------------------------------
    def _company_form(self, client: Client, obj: Client | None = None) -> CompanyForm:
        form = CompanyForm(obj=obj)
        if obj is not None:
            form.template.data = str(obj.template_id or "")
            form.version_check.data = str(obj.version)
        form.template.choices = self._template_choices()
        countries_ = [SelectChoice("", "–")] + [SelectChoice(code, name) for code, name in countries.choices()]
        form.business_country_code.choices = countries_
        form.postal_country_code.choices = countries_
        return form

    def _contact_form(self, client: Client, obj: Client | None = None) -> ContactForm:
        person = client.contact_person
        form = ContactForm(obj=person if obj is not None else None)
        if obj is not None:
            form.person.data = str(person.id) if person is not None else ""
            form.role.data = client.contact_role.value if client.contact_role else None
            form.version_check.data = str(client.version)
        form.person.choices = [SelectChoice("", "–")] + [
            SelectChoice(str(p.id), f"{p.full_name}" + (f" <{p.email}>" if p.email else ""))
            for p in sorted(client.persons, key=lambda p: (p.last_name.lower(), p.first_name.lower(), p.id))
            if p.archived_at is None
        ]
        return form

    def _changes_checked(self, client: Client, form, changed: bool) -> None:
        """A change made from a page opened before someone else's save is refused; an unchanged one is not."""
        if changed and form.version_check.data and form.version_check.data != str(client.version):
            raise StaleEditError(stale_message())

    @expose("/company/", methods=("POST",))
    def company_view(self):
        """Save the company card (name, org number, addresses, e-mail, phone, customer template)."""
        client = self.get_one(request.args.get("id"))
        form = self._company_form(client)
        if not form.validate_on_submit():
            flash(_("Check the fields marked in red; nothing was saved."), "error")
            return self._render_page(client, "overview", company_form=form)
        data = {name: form[name].data for name in COMPANY_FIELDS if name != "template_id" and name in form}
        data["template_id"] = int(form.template.data) if form.template.data else None
        with unit_of_work(quiet=(DuplicateOrgNumber,)) as work:
            self._changes_checked(client, form, bool(company_changes(client, data)))
            changed = update_company(db.session, client, data)
        if isinstance(work.error, DuplicateOrgNumber):
            form.org_number.errors.append(str(work.error))
            return self._render_page(client, "overview", company_form=form, duplicate=work.error.existing)
        if not work.done:
            return self._render_page(client, "overview", company_form=form)
        flash(_("The company data are saved.") if changed else _("Nothing was changed."), "success")
        return self._back(client)

    @expose("/contact/", methods=("POST",))
    def contact_view(self):
        """Save the contact card: another of the client's people as contact, or the contact's details, and the role."""
        client = self.get_one(request.args.get("id"))
        form = self._contact_form(client)
        if not form.validate_on_submit():
            flash(_("Check the fields marked in red; nothing was saved."), "error")
            return self._render_page(client, "overview", contact_form=form)
        role = ContactRole(form.role.data)
        chosen = int(form.person.data) if (form.person.data or "").isdigit() else None
        current = client.contact_person.id if client.contact_person is not None else None
        details = {name: form[name].data for name in ("first_name", "last_name", "email", "phone")}
        changed = contact_changes(client, chosen, details, role)
        with unit_of_work() as work:
            self._changes_checked(client, form, changed)
            if chosen is not None and chosen != current:
                set_contact_person(db.session, client, chosen, role, actor=_actor())
            elif changed:
                update_contact(db.session, client, details, role, actor=_actor())
        if not work.done:
            return self._render_page(client, "overview", contact_form=form)
        flash(_("The contact person is saved.") if changed else _("Nothing was changed."), "success")
        return self._back(client)

    @expose("/switch/<switch>/", methods=("POST",))
    def switch_view(self, switch: str):
        """Turn Bedriftsoppslag or Egendefinert fakturaepost on or off (recorded in the history)."""
        if switch not in client_page.SWITCHES:
            abort(404)
        with unit_of_work() as work:
            client = self._load_for_change()
            set_switch(db.session, client, switch, not getattr(client, switch))
        if not work.done:
            return redirect(self.get_url(".manage_view", id=request.args.get("id")))
        state = _("on") if getattr(client, switch) else _("off")
        flash(_("%(switch)s is now %(state)s.", switch=client_page.SWITCH_LABELS[switch], state=state), "success")
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
            return self._render_page(client, "overview", invoice_form=form)
        if form.version_check.data and form.version_check.data != str(client.version):
            flash(stale_message(), "error")
            return self._back(client)
        texts = {
            language: {"subject": form[f"subject_{language}"].data, "body": form[f"body_{language}"].data}
            for language in ("nb", "sv", "en")
            if form[f"subject_{language}"].data
        }
        with unit_of_work() as work:
            set_invoice_email_texts(db.session, client, texts)
        if work.done:
            flash(_("The invoice e-mail texts are saved."), "success")
        return self._back(client)

    @expose("/consent/", methods=("POST",))
    def consent_view(self):
        """Send (or send again) the GDPR consent e-mail to the contact person."""
        with unit_of_work() as work:
            client = self._load_for_change()
            request_consent(db.session, client)
        if not work.done:
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
            with unit_of_work() as work:
                self._load_for_change()
                changes = client_refresh.apply(client, record)
            if not work.done:
                return redirect(self.get_url(".refresh_view", id=client.id))
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

    # --- Historikk -------------------------------------------------------------------------------------------------
    def history_context(self, client: Client) -> dict:
        """The Historikk tab: the client's changes, its people's, users' and packages' included, newest first."""
        return {"history": self.history_for(client, limit=HISTORY_LIMIT)}
