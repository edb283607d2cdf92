"""The cross-client event log: every recorded change in the bureau, read-only."""

from __future__ import annotations

from flask_admin.contrib.sqla.filters import FilterEqual, IntEqualFilter
from flask_babel import lazy_gettext as _l

from admin_views.base import SearchFilter, SecureModelView
from models import AuditEntry
from services import search

ACTIONS = [("create", _l("Created")), ("update", _l("Changed")), ("delete", _l("Deleted"))]
ENTITIES = [
    ("clients", _l("Clients")),
    ("persons", _l("People")),
    ("users", _l("Users")),
    ("packages", _l("Packages")),
    ("package_assignments", _l("Package assignments")),
    ("customer_templates", _l("Customer templates")),
    ("permissions", _l("Permissions")),
    ("billing_months", _l("Closed billing months")),
]


def _changes(view, context, model, name):
    return ", ".join(sorted(model.changes))


class AuditLogView(SecureModelView):
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("at", "actor_label", "action", "entity", "entity_id", "changes")
    column_labels = {
        "at": _l("When"),
        "actor_label": _l("Who"),
        "action": _l("What"),
        "entity": _l("Record type"),
        "entity_id": _l("Record id"),
        "changes": _l("Changed fields"),
        "actor": _l("Who"),
    }
    column_formatters = {
        "changes": _changes,
        "action": lambda v, c, m, n: dict(ACTIONS).get(m.action, m.action),
        "entity": lambda v, c, m, n: dict(ENTITIES).get(m.entity, m.entity),
    }
    column_sortable_list = ("at", "actor_label", "action", "entity")
    column_default_sort = ("at", True)
    column_searchable_list = ("actor_label",)
    search_in = search.AUDIT_BY_ACTOR
    column_filters = (
        FilterEqual(AuditEntry.entity, _l("Record type"), options=ENTITIES),
        FilterEqual(AuditEntry.action, _l("What"), options=ACTIONS),
        IntEqualFilter(AuditEntry.entity_id, _l("Record id")),
        SearchFilter(AuditEntry.actor_label, search.AUDIT_BY_ACTOR, _l("Who")),
        AuditEntry.at,
    )
    details_template = "admin/model/details.html"
