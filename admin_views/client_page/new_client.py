"""+ Ny kunde": the creation form with the register lookup as you type, and the contact person's suggestions."""

from __future__ import annotations

from flask import current_app, flash, jsonify, redirect, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from admin_views.client_page.page import registry_failure
from admin_views.labels import REGISTRY_STATUS
from admin_views.submissions import OneTimeSubmission
from admin_views.unit_of_work import unit_of_work
from extensions import db
from forms.clients import NewClientForm
from models import CustomerTemplate
from services import company_lookup
from services.clients import DuplicateOrgNumber, NewClient, create_client
from services.registry import CompanyNotFound, InvalidOrgNumber, NonsenseAnswer, RegistryError, request_registry
from services.registry.messages import MANUAL_ENTRY_HINT, error_kind, user_message

# A name in the register is at most a few hundred characters; a longer query is cut, not sent whole.
MAX_REGISTRY_QUERY = 200


class NewClientPages:
    """``/admin/clients/new/`` and the typeahead's JSON under ``/admin/clients/registry/``."""

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
            with unit_of_work(once, quiet=(DuplicateOrgNumber,)) as work:
                work.claim()
                client = create_client(db.session, current_user.bureau_id, data)
                work.leads_to(self.get_url(".manage_view", id=client.id))
            if work.replay:
                return work.replay
            if isinstance(work.error, DuplicateOrgNumber):
                duplicate = work.error.existing  # said once, with its link, above the form
            elif work.done:
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
