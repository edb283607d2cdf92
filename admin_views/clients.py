"""The client grid (klienter)."""

from __future__ import annotations

from flask import redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BooleanEqualFilter, FilterEmpty, FilterEqual, IntEqualFilter
from flask_admin.model.template import TemplateLinkRowAction
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from admin_views.archive import ArchiveMixin
from admin_views.base import SecureModelView, TenantAjaxLoader, per_request
from admin_views.client_page import ClientPageMixin
from admin_views.grant_access import grant_access_action
from admin_views.imports import ClientImportMixin, PersonImportMixin
from admin_views.labels import CONSENT_STATUS, COUNTRY, LANGUAGE, REGISTRY_STATUS, choices, formatter
from admin_views.unit_of_work import unit_of_work
from extensions import db
from models import Client, CustomerTemplate, Person
from services import search


def _organisation_form_options():
    from services.queries import distinct_values

    forms = distinct_values(db.session, Client.__table__.c.organisation_form, current_user.bureau_id)
    return [(form, form) for form in forms]


def _template_options():
    return [
        (str(t.id), t.name)
        for t in db.session.query(CustomerTemplate)
        .filter(CustomerTemplate.bureau_id == current_user.bureau_id)
        .order_by(CustomerTemplate.name)
    ]


def _name_with_badges(view, context, model, name):
    badges = []
    if model.is_demo:
        badges.append(Markup('<span class="badge badge-demo ml-1">{}</span>').format(_("Demo")))
    if model.is_internal:
        badges.append(Markup('<span class="badge badge-info ml-1">{}</span>').format(_("Internal")))
    if model.registry_status and model.registry_status != "active":
        # What the register said at the last refresh or register watch: bankrupt, deleted, …
        label = REGISTRY_STATUS.get(model.registry_status, model.registry_status)
        badges.append(Markup('<span class="badge badge-danger ml-1">{}</span>').format(label))
    return Markup("{}{}").format(model.name, Markup("").join(badges))


def _invoice_email_subjects(view, context, model, name):
    """The custom invoice e-mail's subject per language, one per line ("–" when none is written)."""
    texts = model.invoice_email_texts or {}
    lines = [f"{LANGUAGE.get(lang, lang)}: {text.get('subject') or '–'}" for lang, text in sorted(texts.items())]
    return Markup("<br>").join(lines) if lines else "–"


class ClientView(ArchiveMixin, ClientPageMixin, ClientImportMixin, PersonImportMixin, SecureModelView):
    column_list = (
        Client.name,
        Client.org_number,
        Client.organisation_form,
        "template",
        Client.is_demo,
        Client.consent_status,
        Client.created_at,
    )
    column_labels = {
        "name": _l("Company name"),
        "org_number": _l("Organisation number"),
        "organisation_form": _l("Organisation form"),
        "template": _l("Customer template"),
        "template.name": _l("Customer template"),
        "is_demo": _l("Demo"),
        "is_internal": _l("Internal client"),
        "consent_status": _l("GDPR consent"),
        "consent_at": _l("Consent answered"),
        "consent_from": _l("Consent answered from"),
        "created_at": _l("Created"),
        "business_address_lines": _l("Business address"),
        "business_postal_code": _l("Postcode"),
        "business_city": _l("City"),
        "business_country_code": _l("Country code"),
        "postal_address_lines": _l("Postal address"),
        "postal_postal_code": _l("Postal address postcode"),
        "postal_city": _l("Postal address city"),
        "postal_country_code": _l("Postal address country code"),
        "email": _l("E-mail"),
        "phone": _l("Phone"),
        "company_lookup_enabled": _l("Company lookup"),
        "custom_invoice_email_enabled": _l("Custom invoice e-mail"),
        "contact_person": _l("Contact person"),
        "contact_role": _l("Role"),
        "persons": _l("People"),
        "country_code": _l("Country"),
        "language": _l("Language"),
        "currency": _l("Currency"),
        "invoice_email_texts": _l("Invoice e-mail texts"),
        "consent_requested_at": _l("Consent requested"),
        "registry_status": _l("Status in the register"),
        "registry_checked_at": _l("Checked against the register"),
        "archived_at": _l("Archived"),
    }
    column_formatters = {
        "name": _name_with_badges,
        "consent_status": formatter("consent_status", CONSENT_STATUS),
    }
    column_formatters_detail = {
        "consent_status": formatter("consent_status", CONSENT_STATUS),
        "country_code": formatter("country_code", COUNTRY),
        "business_country_code": formatter("business_country_code", COUNTRY),
        "postal_country_code": formatter("postal_country_code", COUNTRY),
        "language": formatter("language", LANGUAGE),
        "registry_status": formatter("registry_status", REGISTRY_STATUS),
        "invoice_email_texts": _invoice_email_subjects,
    }
    column_searchable_list = (Client.name, Client.org_number)
    search_in = search.CLIENTS_BY_NAME
    # Not by customer template: that sorts by the template's name, which no index of the clients holds (0.6–1.5 s at
    # 1M clients); the Kundemal filter picks a template's clients instead.
    column_sortable_list = (
        Client.name,
        Client.org_number,
        Client.organisation_form,
        Client.is_demo,
        Client.consent_status,
        Client.created_at,
    )
    column_default_sort = (Client.name, False)
    column_filters = (
        BooleanEqualFilter(Client.is_demo, _l("Demo")),
        BooleanEqualFilter(Client.is_internal, _l("Internal client")),
        IntEqualFilter(Client.template_id, _l("Customer template"), options=per_request(_template_options)),
        FilterEqual(Client.consent_status, _l("GDPR consent"), options=choices(CONSENT_STATUS)),
        FilterEqual(Client.organisation_form, _l("Organisation form"), options=per_request(_organisation_form_options)),
        FilterEmpty(Client.organisation_form, _l("Organisation form")),
        Client.created_at,
    )
    # The consent nonce is the open consent link's secret: never shown.
    column_details_exclude_list = ("version", "persons", "bureau", "consent_nonce")
    # The company and contact are edited on the client page's Oversikt tab (its own forms, ``services.clients``);
    # the demo flag by the "Mark as demo" action. One way to do each: no generic edit form.
    can_edit = False
    # "+ Ny kunde" is its own form (``NewClientForm``); Flask-Admin still builds a model form for the view, so it
    # is kept to plain columns rather than every column it would scaffold.
    form_columns = ("name", "org_number")
    form_ajax_refs = {
        "template": TenantAjaxLoader("template", CustomerTemplate, fields=["name"]),
        "contact_person": TenantAjaxLoader(
            "contact_person",
            Person,
            fields=["first_name", "last_name", "email"],
            search=search.PERSONS_BY_NAME,
            order_by=(Person.last_name, Person.first_name, Person.id),
        ),
    }

    list_template = "admin/clients/list.html"
    column_extra_row_actions = [
        TemplateLinkRowAction("client_actions.manage", _l("Manage client")),
        TemplateLinkRowAction("client_actions.mark_demo", _l("Mark as demo")),
    ]
    row_actions_by_id_only = ("client_actions.manage",)  # mark_demo reads the row (its name, whether it may)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        """An old link to the generic form opens the company card's own form (another bureau's client: 404)."""
        record = self.get_one(request.args.get("id"))
        return redirect(self.get_url(".manage_view", id=record.id, edit="company"))

    def list_header_buttons(self) -> list[dict]:
        return [
            {"label": _("+ New client"), "url": self.get_url(".create_view"), "css": "btn-success btn-new-client"},
            {"label": _("Import clients"), "url": self.get_url(".import_view"), "css": "btn-outline-secondary"},
        ]

    @action(
        "mark_demo",
        _l("Mark as demo"),
        _l("Mark the selected clients as demo? A demo client can never become a real client again."),
    )
    def action_mark_demo(self, ids: list[str]) -> None:
        from flask import flash

        from services.clients import mark_demo

        with unit_of_work() as work:
            changed = mark_demo(db.session, self.selected(ids))
        if work.done:
            flash(_("%(count)s client(s) marked as demo.", count=changed), "success")

    @action(
        "refresh_registry",
        _l("Update from Brønnøysund"),
        _l("Update the selected clients' company data from the company register?"),
    )
    def action_refresh_registry(self, ids: list[str]):
        """Always a job: the register may take long to answer, and the request makes no call to it at all."""
        from admin_views.jobs import redirect_to_job
        from models import JobKind
        from services.jobs import create_job

        clients = sorted(self.selected(ids), key=lambda c: (c.name.lower(), c.id))
        if not clients:
            from flask import flash

            flash(_("Choose at least one client."), "error")
            return None
        job = create_job(
            db.session,
            bureau_id=current_user.bureau_id,
            kind=JobKind.CLIENT_REFRESH,
            actor=current_user._get_current_object(),
            title=_("Update from Brønnøysund: %(count)s client(s)", count=len(clients)),
            rows=[{"client_id": c.id, "org_number": c.org_number or "", "name": c.name} for c in clients],
            columns=("org_number", "name"),
        )
        db.session.commit()
        return redirect_to_job(job)

    @action("export_packages", _l("Export packages (CSV)"))
    def action_export_packages(self, ids: list[str]):
        from admin_views.billing import redirect_to_export

        return redirect_to_export([client.id for client in self.selected(ids)])

    @action("grant_access", _l("Give an employee access"))
    def action_grant_access(self, ids: list[str]):
        """Make one bureau employee an accountant, auditor or integration user on every selected client (chosen on the next page)."""
        return grant_access_action(self, ids)
