"""The cross-client event log (Hendelseslogg): every recorded change in the bureau, read-only, filterable, exported."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta

from flask import Response, flash, g, redirect, request
from flask_admin import expose
from flask_admin.babel import lazy_gettext as admin_lazy_gettext
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual, IntEqualFilter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import to_utc
from flask_login import current_user
from markupsafe import Markup

from admin_views.base import SearchFilter, SecureModelView, rows_are_few
from admin_views.labels import HISTORY_ACTION, RECORD_TYPE, choices
from extensions import db
from models import AuditEntry
from services import search
from services.billing import Dialect
from services.history_format import HistoryRow, format_history, history_csv

ACTIONS = choices(HISTORY_ACTION)
ENTITIES = [(key, label) for key, label in choices(RECORD_TYPE) if key != "bureaus"]
# The most rows one export holds; a longer selection is refused with a request to narrow it, never cut silently.
EXPORT_MAX_ROWS = 10_000


def _oslo_midnight_utc(day: date) -> datetime:
    """The start of ``day`` in the user's time zone (Europe/Oslo), in UTC as the entries are stored."""
    return to_utc(datetime.combine(day, time.min)).replace(tzinfo=UTC)


class ClientFilter(BaseSQLAFilter):
    """ "Client contains": the entries about the clients whose name or organisation number matches, found through
    the clients' search index (services/search.py) and then by the entries' client column."""

    def apply(self, query, value, alias=None):
        words = search.search_words(value)
        if not words:
            return query.filter(AuditEntry.id.is_(None))
        ids = search.matching_ids(db.session, search.CLIENTS_BY_NAME, words, bureau_id=current_user.bureau_id)
        rows_are_few()
        return query.filter(AuditEntry.client_id.in_(ids) if ids else AuditEntry.id.is_(None))

    def operation(self):
        return _l("contains")


class PeriodFilter(sqla_filters.DateBetweenFilter):
    """ "Period between two days", the days in the user's time zone (Europe/Oslo), both included."""

    def apply(self, query, value, alias=None):
        start, end = value
        return query.filter(
            AuditEntry.at >= _oslo_midnight_utc(start), AuditEntry.at < _oslo_midnight_utc(end + timedelta(days=1))
        )

    def operation(self):
        return admin_lazy_gettext("between")


class PeriodFromFilter(sqla_filters.DateGreaterFilter):
    def apply(self, query, value, alias=None):
        return query.filter(AuditEntry.at >= _oslo_midnight_utc(value))

    def operation(self):
        return _l("from (inclusive)")


class PeriodToFilter(sqla_filters.DateSmallerFilter):
    def apply(self, query, value, alias=None):
        return query.filter(AuditEntry.at < _oslo_midnight_utc(value + timedelta(days=1)))

    def operation(self):
        return _l("to (inclusive)")


def _row(model: AuditEntry) -> HistoryRow:
    """The page's formatted row for an entry (formatted for the whole page at once in ``get_list``)."""
    rows = g.get("history_rows") or {}
    if model.id not in rows:
        rows.update({row.id: row for row in format_history(db.session, [model], bureau_id=current_user.bureau_id)})
        g.history_rows = rows
    return rows[model.id]


def _changes(view, context, model, name):
    row = _row(model)
    items = Markup("").join(Markup("<li>{}</li>").format(change.text(row.action)) for change in row.changes)
    return Markup('<ul class="list-unstyled mb-0 small history-changes">{}</ul>').format(items) if items else ""


class AuditLogView(SecureModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = False
    column_list = ("at", "actor_label", "action", "entity", "record_label", "client_label", "changes")
    column_labels = {
        "at": _l("When"),
        "actor_label": _l("Who"),
        "action": _l("What"),
        "entity": _l("Record type"),
        "record_label": _l("Record"),
        "client_label": _l("Client"),
        "changes": _l("Changes"),
        "actor": _l("Who"),
        "entity_id": _l("Record id"),
    }
    column_formatters = {
        "at": lambda v, c, m, n: _row(m).at,
        "actor_label": lambda v, c, m, n: _row(m).actor,
        "action": lambda v, c, m, n: _row(m).action_label,
        "entity": lambda v, c, m, n: _row(m).record_type,
        "record_label": lambda v, c, m, n: _row(m).record,
        "client_label": lambda v, c, m, n: _row(m).client,
        "changes": _changes,
    }
    column_sortable_list = ("at", "actor_label", "action", "entity")
    column_default_sort = ("at", True)
    column_searchable_list = ("actor_label",)
    search_in = search.AUDIT_BY_ACTOR
    column_filters = (
        SearchFilter(AuditEntry.actor_label, search.AUDIT_BY_ACTOR, _l("Who")),
        FilterEqual(AuditEntry.action, _l("What"), options=ACTIONS),
        FilterEqual(AuditEntry.entity, _l("Record type"), options=ENTITIES),
        ClientFilter(AuditEntry.client_id, _l("Client")),
        PeriodFilter(AuditEntry.at, _l("Period")),
        PeriodFromFilter(AuditEntry.at, _l("Period")),
        PeriodToFilter(AuditEntry.at, _l("Period")),
        IntEqualFilter(AuditEntry.entity_id, _l("Record id")),
    )

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """The page's entries, formatted together: the names their ids stand for are read once per page."""
        count, entries = super().get_list(
            page, sort_column, sort_desc, search, filters, execute=execute, page_size=page_size
        )
        if execute and entries:
            rows = format_history(db.session, list(entries), bureau_id=current_user.bureau_id)
            g.history_rows = {row.id: row for row in rows}
        return count, entries

    def export_url(self, dialect: Dialect) -> str:
        """The export of what the grid shows now: its search, filters and sort, in ``dialect``."""
        args = request.args.to_dict(flat=True)
        args.pop("page", None)
        args["dialect"] = dialect.value
        return self.get_url(".export_view", **args)

    def list_header_buttons(self) -> list[dict]:
        return [
            {
                "label": _("Export (Excel, Norwegian)"),
                "url": self.export_url(Dialect.EXCEL_NO),
                "css": "btn-outline-secondary",
            },
            {"label": _("Export (CSV)"), "url": self.export_url(Dialect.STANDARD), "css": "btn-outline-secondary"},
        ]

    @expose("/export/")
    def export_view(self):
        """CSV of the entries the grid shows (every page of them), with the grid's Norwegian headers."""
        try:
            dialect = Dialect(request.args.get("dialect", Dialect.EXCEL_NO.value))
        except ValueError:
            dialect = Dialect.EXCEL_NO
        view_args = self._get_list_extra_args()
        sort_column = self._get_column_by_idx(view_args.sort)
        if sort_column is not None:
            sort_column = sort_column[0]
        _count, entries = self.get_list(
            0, sort_column, view_args.sort_desc, view_args.search, view_args.filters, page_size=EXPORT_MAX_ROWS + 1
        )
        entries = list(entries)
        if len(entries) > EXPORT_MAX_ROWS:
            flash(
                _(
                    "The export holds at most %(rows)s entries; narrow the filters (a shorter period) and export again.",
                    rows=EXPORT_MAX_ROWS,
                ),
                "error",
            )
            args = request.args.to_dict(flat=True)
            args.pop("dialect", None)
            return redirect(self.get_url(".index_view", **args))
        rows = format_history(db.session, entries, bureau_id=current_user.bureau_id)
        out = io.StringIO()
        history_csv(out, rows, dialect)
        data = out.getvalue().encode("utf-8")
        suffix = "-excel" if dialect is Dialect.EXCEL_NO else ""
        return Response(
            data,
            mimetype="text/csv",
            headers={
                "Content-Disposition": f"attachment; filename=hendelseslogg{suffix}.csv",
                "Content-Length": str(len(data)),
            },
        )
