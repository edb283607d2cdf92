"""The alerts grid (Registervarsler): what the register watch found about the bureau's clients, newest first.

Read-only except for "Kvitter ut" (acknowledge), as a row action and a bulk action, both through
``services.alerts.acknowledge``: no create, edit or delete form exists, and the generic delete action is refused.
The open filter is the grid's first filter, so a link to the open alerts is ``url_for("alerts.index_view",
flt0_0="open")`` (``/admin/alerts/?flt0_0=open``) in any language.
"""

from __future__ import annotations

from flask import flash, url_for
from flask_admin.actions import action
from flask_admin.babel import lazy_gettext as admin_lazy_gettext
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual, FilterLike
from flask_admin.model.template import TemplateLinkRowAction
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from admin_views.base import SecureModelView, parse_id
from admin_views.labels import ALERT_KIND, alert_details, choices
from extensions import db
from models import RegistryAlert
from services.alerts import acknowledge

OPEN_FILTER_ARG = "flt0_0"
ALERT_STATE = {"open": _l("Open (not acknowledged)"), "acknowledged": _l("Acknowledged")}


class AlertStateFilter(BaseSQLAFilter):
    """Open (nobody has acknowledged it) or acknowledged; the open ones are read from their partial index."""

    def __init__(self, name: str) -> None:
        super().__init__(RegistryAlert.acknowledged_at, name, options=choices(ALERT_STATE))

    def apply(self, query, value, alias=None):
        column = RegistryAlert.acknowledged_at
        return query.filter(column.is_(None) if value == "open" else column.is_not(None))

    def operation(self):
        return admin_lazy_gettext("equals")


def _client_link(view, context, model: RegistryAlert, name: str) -> Markup:
    url = url_for("clients.manage_view", id=model.client_id)
    return Markup('<a href="{}">{}</a>').format(url, model.client_name)


def _details(view, context, model: RegistryAlert, name: str) -> str:
    return alert_details(model.kind, model.details)


class AlertView(SecureModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = False
    action_disallowed_list = ["delete"]
    list_template = "admin/alerts/list.html"
    column_list = (
        RegistryAlert.seen_at,
        RegistryAlert.client_name,
        RegistryAlert.org_number,
        RegistryAlert.kind,
        RegistryAlert.details,
        RegistryAlert.register_date,
        RegistryAlert.acknowledged_at,
        RegistryAlert.acknowledged_by_label,
    )
    column_labels = {
        "seen_at": _l("Seen"),
        "client_name": _l("Client"),
        "org_number": _l("Organisation number"),
        "kind": _l("Alert"),
        "details": _l("What changed"),
        "register_date": _l("Register date"),
        "acknowledged_at": _l("Acknowledged"),
        "acknowledged_by_label": _l("Acknowledged by"),
    }
    column_formatters = {
        "client_name": _client_link,
        "kind": lambda v, c, m, n: ALERT_KIND.get(m.kind, m.kind.value),
        "details": _details,
    }
    column_sortable_list = (RegistryAlert.seen_at,)
    column_default_sort = [(RegistryAlert.seen_at, True), (RegistryAlert.id, True)]
    column_filters = (
        AlertStateFilter(_l("Status")),
        FilterEqual(RegistryAlert.kind, _l("Alert"), options=choices(ALERT_KIND)),
        FilterLike(RegistryAlert.client_name, _l("Client")),
        FilterEqual(RegistryAlert.org_number, _l("Organisation number")),
    )
    column_extra_row_actions = [TemplateLinkRowAction("alert_actions.acknowledge", _l("Acknowledge"))]

    @action("acknowledge", _l("Acknowledge"), _l("Acknowledge the selected alerts?"))
    def action_acknowledge(self, ids: list[str]) -> None:
        keys = [key for key in map(parse_id, ids) if key is not None]
        count = acknowledge(db.session, current_user.bureau_id, keys, current_user)
        db.session.commit()
        if count:
            flash(_("%(count)s alert(s) acknowledged.", count=count), "success")
        else:
            flash(_("Nothing to acknowledge: the alerts were already acknowledged."), "info")
