"""The Oversikt tab: company and contact, the access switches, invoice e-mail texts, consent, register refresh."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request
from flask_admin import expose
from flask_babel import gettext as _

from admin_views.client_page.page import registry_failure, stale_message
from admin_views.unit_of_work import unit_of_work
from extensions import db
from forms.clients import InvoiceEmailTextForm, VersionedActionForm
from models import Client
from services import client_refresh
from services.clients import set_invoice_email_texts, set_switch
from services.consent import request_consent
from services.registry import RegistryError, request_registry
from services.registry.messages import NOTHING_CHANGED

SWITCHES = {
    "company_lookup_enabled": "Company lookup",
    "custom_invoice_email_enabled": "Custom invoice e-mail",
}
# "Apply these changes" applies what the preview showed, if the preview was this recent (seconds); else it asks again.
REFRESH_CONFIRM_WINDOW = 600


class OverviewTab:
    """The Oversikt tab's context and the changes made from it."""

    def overview_context(self, client: Client, invoice_form: InvoiceEmailTextForm | None = None) -> dict:
        if invoice_form is None:
            texts = client.invoice_email_texts or {}
            invoice_form = InvoiceEmailTextForm(
                data={
                    **{f"subject_{lang}": t.get("subject") for lang, t in texts.items()},
                    **{f"body_{lang}": t.get("body") for lang, t in texts.items()},
                    "version_check": client.version,
                }
            )
        return {"invoice_form": invoice_form, "switches": SWITCHES, "history": self.history_for(client)}

    @expose("/switch/<switch>/", methods=("POST",))
    def switch_view(self, switch: str):
        """Turn Bedriftsoppslag or Egendefinert fakturaepost on or off (recorded in the history)."""
        if switch not in SWITCHES:
            abort(404)
        with unit_of_work() as work:
            client = self._load_for_change()
            set_switch(db.session, client, switch, not getattr(client, switch))
        if not work.done:
            return redirect(self.get_url(".manage_view", id=request.args.get("id")))
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
