"""The one base every model view uses: access rules, tenancy, locking, history, messages."""

from __future__ import annotations

import enum
import logging
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

from flask import abort, current_app, flash, g, has_app_context, has_request_context, redirect, request, url_for
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView, typefmt
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_admin.form import BaseForm
from flask_admin.model import template
from flask_admin.model.typefmt import DETAIL_FORMATTERS
from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup
from sqlalchemy import false, func, literal, literal_column, or_, select, union_all
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from wtforms import HiddenField, SelectField
from wtforms.validators import ValidationError

from admin_views.labels import enum_label, select_field, yes_no
from admin_views.saved_views import SavedViewsMixin
from admin_views.submissions import OneTimeCreateMixin
from extensions import db
from forms.base import TranslatedForm
from services import policy, search
from services.errors import DomainError, StaleEditError, integrity_message
from services.formats import format_day, format_moment
from services.history_format import HISTORY_LIMIT, HistoryRow, record_history

log = logging.getLogger(__name__)

# The id a memoised link is built with (``SecureModelView.get_url``): no row has it, and it is found once in the link.
_URL_MARKER = 8_642_097_531_864_209


class AdminForm(TranslatedForm, BaseForm):
    """Flask-Admin's form with Flask-WTF's CSRF token, so the global CSRFProtect accepts it."""

    class Meta(TranslatedForm.Meta):
        pass


def model_columns(model: type) -> dict[str, Any]:
    """A model's columns by attribute name: what a generic form's field of that name fills."""
    return {attr.key: attr.columns[0] for attr in sa_inspect(model).column_attrs if len(attr.columns) == 1}


def per_request(options_factory):
    """Filter options read from the database when a page is shown (Flask-Admin caches at start)."""

    def options():
        if not has_request_context() or not current_user.is_authenticated:
            return []
        return options_factory()

    options.per_request = True
    return options


BIGGEST_INTEGER = 2**63 - 1  # both databases' widest integer
# How deep a grid pages. A page is LIMIT/OFFSET, and the database reads every row it skips, so a page beyond this
# many rows would take longer the more data there is; nobody reads a list that far, they narrow the search.
MAX_LIST_ROWS = 5_000


def parse_id(value: Any) -> int | None:
    """A row id from a request (ASCII digits, within 64 bits), or None for anything else."""
    text = str(value) if value is not None else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    key = int(text)
    return key if key <= BIGGEST_INTEGER else None


def filter_value_ok(flt: Any, value: str) -> bool:
    """Whether a grid filter can take ``value`` (see ``SecureModelView._get_list_filter_args``)."""
    if "\x00" in value or len(value) > 1000:
        return False
    options = flt.options
    if options is not None and not callable(options):
        return value in {str(key) for key, _label in options}
    try:
        cleaned = flt.clean(value)
    except (ValueError, TypeError, LookupError, ArithmeticError):
        return False
    values = cleaned if isinstance(cleaned, list | tuple) else [cleaned]
    return all(not isinstance(item, int) or abs(item) <= BIGGEST_INTEGER for item in values)


class JoinedLikeFilter(BaseSQLAFilter):
    """ "Contains" on a column of a small table the view's query already joins (an assignment's package code).
    Flask-Admin would join that table again for a filter on its column, ambiguously, so the filter is registered on
    the view's own foreign key column and filters on the joined one. ``%`` and ``_`` are matched as themselves."""

    def __init__(self, own_column: Any, joined_column: Any, name: str) -> None:
        super().__init__(own_column, name)
        self.joined_column = joined_column

    def apply(self, query, value, alias=None):
        return query.filter(func.lower(self.joined_column).contains(value.strip().lower(), autoescape=True))

    def operation(self):
        return _l("contains")


class SearchFilter(BaseSQLAFilter):
    """ "Contains" on text of a big table (a person's client's name, the event log's "who"): the same rules and the
    same indexes as the search box (services/search.py), so the filter neither scans the bureau's rows nor finds
    something the search box would not. A value without a searchable word (one character) matches nothing."""

    def __init__(self, own_column: Any, searchable: search.Searchable, name: str) -> None:
        super().__init__(own_column, name)
        self.searchable = searchable

    def apply(self, query, value, alias=None):
        criterion = search.search_criterion(db.session, self.searchable, value, bureau_id=current_user.bureau_id)
        rows_are_few()
        return query.filter(false() if criterion is None else criterion)

    def operation(self):
        return _l("contains")


PROBE_ROWS = 2000


def _bureau_index_leads_with(column: Any) -> bool:
    """Whether the column's table has an index on (bureau_id, column, …): the probe below reads only that index."""
    table = getattr(column, "table", None)
    if table is None or "bureau_id" not in table.c:
        return False
    for index in table.indexes:
        names = [part.name for part in index.columns]
        if names[:2] == ["bureau_id", column.name]:
            return True
    return False


def weighed_by_probe(column: Any, criterion: Any, outside: tuple[Any, Any] | None = None) -> Any:
    """A date filter's criterion, after asking the column's index how many of the bureau's rows it keeps (reading at
    most ``PROBE_ROWS`` index entries, well under a millisecond).

    Few: the grid then sorts those rows (``rows_are_few``) instead of walking its order's index through the whole
    bureau in search of them — 8 to 10 s on SQLite at 1M clients for an end date that no assignment has. Many: on
    SQLite, the criterion is marked as keeping most rows (``likelihood``), so the planner walks the grid's order and
    stops at the page instead of sorting them all (SQLite keeps no histogram and guesses that any range is
    selective: 6 to 9 s for "Til og med mellom" a year). PostgreSQL's statistics choose well on their own."""
    expression = getattr(column, "expression", column)
    if not (has_request_context() and current_user.is_authenticated and _bureau_index_leads_with(expression)):
        return criterion
    table = expression.table
    kept = select(literal(1)).select_from(table).where(table.c.bureau_id == current_user.bureau_id, criterion)
    probe = select(func.count()).select_from(kept.limit(PROBE_ROWS).subquery())
    if db.session.execute(probe).scalar_one() < PROBE_ROWS:
        rows_are_few()
        return criterion
    if outside is not None and _is_grid_order(column):
        return _first_rows_outside(column, *outside)
    if db.session.get_bind().dialect.name == "sqlite":
        return func.likelihood(criterion, literal_column("0.9"))  # untyped: "= 1" after it would hide the hint
    return criterion


def _table_column(column: Any) -> tuple[Any, Any]:
    expression = getattr(column, "expression", column)
    return getattr(expression, "table", None), getattr(expression, "name", None)


def _is_grid_order(column: Any) -> bool:
    order = g.get("grid_order")
    return order is not None and _table_column(order[0]) == _table_column(column)


def _first_rows_outside(column: Any, start: Any, end: Any) -> Any:
    """Many rows outside a range of the column the grid is sorted by: the rows in that order are the first rows above
    the range followed by the first rows below it (or the other way round), so each side's first rows down to the
    page's last row (``grid_depth``) are read from the column's index and the grid sorts those. Walking the
    order's index instead reads the whole range in between (7 s on PostgreSQL at 1M clients for "Fra ikke mellom"
    this year, when most assignments started this year)."""
    table, _name = _table_column(column)
    column, descending = getattr(column, "expression", column), g.grid_order[1]

    def first(side: Any) -> Any:
        ordered = (
            select(table.c.id)
            .where(table.c.bureau_id == current_user.bureau_id, side)
            .order_by(column.desc() if descending else column)
        )
        return select(ordered.limit(min(g.get("grid_depth") or MAX_LIST_ROWS, MAX_LIST_ROWS)).subquery().c.id)

    candidates = union_all(first(column > end), first(column < start)).subquery()
    rows_are_few()
    return table.c.id.in_(select(candidates.c.id))


class _ProbedDate:
    """Flask-Admin's date and datetime filters with the same rows, weighed by ``weighed_by_probe``."""

    def criterion(self, column: Any, value: Any) -> Any:
        raise NotImplementedError

    def apply(self, query, value, alias=None):
        column = self.get_column(alias)
        criterion = self.criterion(column, value)
        return query.filter(weighed_by_probe(column, criterion) if alias is None else criterion)


class _Equal(_ProbedDate):
    def criterion(self, column, value):
        return column == value


class _Greater(_ProbedDate):
    def criterion(self, column, value):
        return column > value


class _Smaller(_ProbedDate):
    def criterion(self, column, value):
        return column < value


class _Between(_ProbedDate):
    def criterion(self, column, value):
        start, end = value
        return column.between(start, end)


class _OutsideRange(_ProbedDate):
    """ "Not between" and "not equal" on a date written as two ranges (``< start OR > end``) rather than ``NOT``: the
    same rows (an empty date is in neither), but each side can be read from the column's index, so a filter that
    keeps few rows finds them instead of walking the whole bureau in the grid's order (3.5 s at 1M clients)."""

    def criterion(self, column, value):
        start, end = self.bounds(value)
        return or_(column < start, column > end)

    @staticmethod
    def bounds(value: Any) -> tuple[Any, Any]:
        return value if isinstance(value, list | tuple) else (value, value)

    def apply(self, query, value, alias=None):
        if alias is not None:
            return super().apply(query, value, alias)
        column = self.get_column(alias)
        return query.filter(weighed_by_probe(column, self.criterion(column, value), outside=self.bounds(value)))


def _probed(kind: type, mixin: type) -> type:
    return type(kind.__name__, (mixin, kind), {"__module__": __name__})


def _outside_ranges(kinds: tuple[type, ...]) -> tuple[type, ...]:
    swap = {
        sqla_filters.DateEqualFilter: _Equal,
        sqla_filters.DateGreaterFilter: _Greater,
        sqla_filters.DateSmallerFilter: _Smaller,
        sqla_filters.DateBetweenFilter: _Between,
        sqla_filters.DateNotBetweenFilter: _OutsideRange,
        sqla_filters.DateNotEqualFilter: _OutsideRange,
        sqla_filters.DateTimeEqualFilter: _Equal,
        sqla_filters.DateTimeGreaterFilter: _Greater,
        sqla_filters.DateTimeSmallerFilter: _Smaller,
        sqla_filters.DateTimeBetweenFilter: _Between,
        sqla_filters.DateTimeNotBetweenFilter: _OutsideRange,
        sqla_filters.DateTimeNotEqualFilter: _OutsideRange,
    }
    return tuple(_probed(kind, swap[kind]) if kind in swap else kind for kind in kinds)


def _plain_id(value: Any) -> bool:
    """A row id as Flask-Admin hands it to row actions and links: an int, or its digits as text."""
    return type(value) is int or (type(value) is str and value.isascii() and value.isdigit() and len(value) < 20)


class RenderedOnce:
    """A row action whose HTML depends on nothing of the row but its id (view, edit, delete, open): rendered once per
    request with a marker id, then the row's id put in its place. A grid of 50 rows rendered the same macros, titles,
    links and CSRF fields 50 times; that was about two fifths of the page's CPU time."""

    def __init__(self, action: template.BaseListRowAction) -> None:
        self.action = action
        self.title = action.title

    @pass_context
    def render_ctx(self, context: Any, row_id: Any, row: Any) -> Any:
        if not (_plain_id(row_id) and has_request_context()):
            return self.action.render(context, row_id, row)
        key = (type(self.action), getattr(self.action, "template_name", None), str(self.title))
        cache = g.setdefault("row_action_html", {})
        if key not in cache:
            html = str(self.action.render(context, _URL_MARKER, SimpleNamespace(id=_URL_MARKER)))
            cache[key] = html if str(_URL_MARKER) in html else None
        html = cache[key]
        if html is None:  # the marker did not come through (it cannot stand in): render this row as it is
            return self.action.render(context, row_id, row)
        return Markup(html.replace(str(_URL_MARKER), str(row_id)))


BY_ID_ONLY = (
    template.ViewRowAction,
    template.ViewPopupRowAction,
    template.EditRowAction,
    template.EditPopupRowAction,
    template.DeleteRowAction,
)


# The same, for views that name a date filter themselves.
DateBetweenFilter = _probed(sqla_filters.DateBetweenFilter, _Between)
DateSmallerFilter = _probed(sqla_filters.DateSmallerFilter, _Smaller)


class GridFilterConverter(sqla_filters.FilterConverter):
    """Flask-Admin's filters for every column kind, with the date filters that exclude a value or a range written so
    that an index can serve them."""

    date_filters = _outside_ranges(sqla_filters.FilterConverter.date_filters)
    datetime_filters = _outside_ranges(sqla_filters.FilterConverter.datetime_filters)


def rows_are_few() -> None:
    """This request's grid lists at most a search's candidates (``search.CANDIDATE_LIMIT`` rows, found by id): its
    sort is then done on those rows (see ``SecureModelView._order_by``) rather than by walking the sort's index over
    the whole bureau in search of them (2 s at 1M people on PostgreSQL)."""
    if has_request_context():
        g.grid_rows_are_few = True


def safe_lookup_args(term: Any, offset: Any, limit: Any) -> tuple[str, int, int]:
    """An ajax picker's search: no NUL (PostgreSQL refuses it), a bounded term, a page within 0..100 rows."""
    term = str(term or "").replace("\x00", "")[: search.MAX_SEARCH_LENGTH]
    offset = offset if isinstance(offset, int) and 0 <= offset <= 10_000 else 0
    limit = limit if isinstance(limit, int) and 0 < limit <= 100 else 10
    return term, offset, limit


def staff_can_use_admin() -> bool:
    return bool(current_user.is_authenticated and current_user.is_staff and current_user.is_active)


def deny_access():
    """Anonymous → the login page (back here afterwards); logged in but not allowed → 403."""
    if current_user.is_authenticated:
        abort(403)
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


class TenantAjaxLoader(QueryAjaxModelLoader):
    """Ajax lookups that only ever offer (or accept) rows of the current bureau, found by services/search.py:
    through ``search`` (a ``Searchable``) for the big tables, else in ``fields`` by the same rules."""

    def __init__(self, name: str, model: type, **options: Any) -> None:
        self.extra_criteria = options.pop("criteria", ())
        self.searchable = options.pop("search", None)
        super().__init__(name, db, model, **options)

    def bureau_query(self, *, by_candidates: bool = False):
        """The bureau's rows (and the loader's own criteria). With ``by_candidates`` the search has already named
        the few rows it may be (``id IN (...)``): the bureau is then compared as "+ 0", so that no index can lead
        with it and the planner fetches the candidates by id instead of walking the bureau's index through every
        row of the kind (SQLite did that for the assignments' user picker: 220 ms at a million clients)."""
        bureau = self.model.bureau_id
        query = super().get_query().filter((bureau + 0 if by_candidates else bureau) == current_user.bureau_id)
        for criterion in self.extra_criteria:
            query = query.filter(criterion)
        return query

    def get_query(self, *, by_candidates: bool = False):
        """What the picker offers: archived rows (and the people of archived clients) are not offered."""
        from services.archive import ARCHIVABLE, is_live

        query = self.bureau_query(by_candidates=by_candidates)
        return query.filter(is_live(self.model)) if self.model in ARCHIVABLE else query

    def ordering(self, query):
        """The picker's order (among at most ``search.CANDIDATE_LIMIT`` matches of a big table)."""
        order = self.order_by if self.order_by is not None else self.model.id
        return query.order_by(*(order if isinstance(order, tuple | list) else [order]))

    def get_list(self, term: str, offset: int = 0, limit: int = 10) -> list[Any]:
        """The picker's matches; the request's term, offset and limit are first made safe for either database."""
        term, offset, limit = safe_lookup_args(term, offset, limit)
        if self.searchable is None:
            criterion = search.columns_criterion(db.session, self._cached_fields, term)
        elif not search.search_words(term):
            return []  # the picker asks once something is typed; listing a big table in full is no answer
        else:
            criterion = search.search_criterion(db.session, self.searchable, term, bureau_id=current_user.bureau_id)
        query = self.get_query(by_candidates=self.searchable is not None)
        if criterion is not None:
            query = query.filter(criterion)
        return self.ordering(query).offset(offset).limit(limit).all()

    def get_one(self, pk: Any) -> Any:
        """A value already stored stays valid even when it was archived since."""
        key = parse_id(pk)
        if key is None:
            return None
        with db.session.no_autoflush:
            return self.bureau_query().filter(self.model.id == key).one_or_none()


class UserAjaxLoader(TenantAjaxLoader):
    """Find users by their person's name or e-mail."""

    def __init__(self, name: str, model: type, **options: Any) -> None:
        options.setdefault("search", search.USERS_BY_NAME)
        super().__init__(name, model, **options)

    def ordering(self, query):
        from models import Person, User

        return query.join(User.person).order_by(Person.last_name, Person.first_name, User.id)


class SecureModelView(SavedViewsMixin, OneTimeCreateMixin, ModelView):
    """Logged-in staff of one bureau see and change only that bureau's rows."""

    admin_only = False
    form_base_class = AdminForm
    can_set_page_size = True
    page_size_options = (20, 50, 100, 200)
    # Never COUNT(*) the whole table for every page: the pager shows next/previous only.
    simple_list_pager = True
    filter_converter = GridFilterConverter()
    can_view_details = True
    details_template = "admin/model/details_history.html"
    edit_template = "admin/model/edit_locked.html"
    list_template = "admin/model/list_ext.html"
    column_type_formatters = {
        **typefmt.DEFAULT_FORMATTERS,
        datetime: lambda view, value, name: format_moment(value),
        date: lambda view, value, name: format_day(value),
        bool: yes_no,
        enum.Enum: enum_label,
    }
    column_type_formatters_detail = {**DETAIL_FORMATTERS, **column_type_formatters}
    form_excluded_columns = ("bureau", "bureau_id", "version", "created_at")
    column_exclude_list = ("version",)
    column_details_exclude_list = ("version", "password_hash")
    action_disallowed_list: list[str] = []

    # Coded columns shown as selects of translated labels: {column name: {value: label}}.
    form_selects: dict[str, dict] = {}
    # What the search box searches in a big table (services/search.py); None: the ``column_searchable_list``
    # columns of the view's own (small) table, by the same rules.
    search_in: search.Searchable | None = None
    # Relationships the view's own ``get_query`` already joins: a sort on one of their columns orders by that join
    # rather than joining the table again under an alias, so the planner can start from the column's index.
    query_joins: tuple = ()

    @property
    def page_size(self) -> int:
        return current_app.config.get("ADMIN_PAGE_SIZE", 50) if has_app_context() else 50

    @page_size.setter
    def page_size(self, value: int) -> None:  # Flask-Admin assigns it at start; the config decides
        pass

    def __init__(self, model: type, *args: Any, **kwargs: Any) -> None:
        if self.form_selects:
            overrides, form_args = dict(self.form_overrides or {}), dict(self.form_args or {})
            for name, labels in self.form_selects.items():
                optional = model.__table__.c[name].nullable
                overrides[name] = SelectField
                form_args[name] = {**form_args.get(name, {}), **select_field(labels, optional=optional)}
            self.form_overrides, self.form_args = overrides, form_args
        super().__init__(model, db, *args, **kwargs)
        if self.search_in is None and any(path for _field, path in self._search_fields or ()):
            raise TypeError(f"{type(self).__name__} searches a joined table: declare search_in (services/search.py)")

    # --- access -----------------------------------------------------------------------------
    def is_accessible(self) -> bool:
        if not staff_can_use_admin():
            return False
        return not self.admin_only or policy.can(db.session, current_user, policy.Verb.CATALOGUE_EDIT)

    def inaccessible_callback(self, name: str, **kwargs: Any):
        return deny_access()

    def is_action_allowed(self, name: str) -> bool:
        if name in self.action_disallowed_list:
            return False
        return super().is_action_allowed(name)

    def _get_list_filter_args(self):
        """Flask-Admin's filter arguments, less the values the filter cannot take: a value outside a filter's fixed
        options, one its ``clean`` refuses, an integer beyond the databases' 64 bits or a NUL character is dropped
        with the invalid-value message instead of reaching the query (where it answered 500)."""
        accepted = []
        for index, name, value in super()._get_list_filter_args() or []:
            flt = self._filters[index]
            if filter_value_ok(flt, value):
                accepted.append((index, name, value))
            else:
                flash(self.get_invalid_value_msg(value[:100], flt), "error")
        return accepted if self._filters else None

    def _get_list_extra_args(self):
        """Flask-Admin's list arguments within what a query can take: a page number beyond 64 bits once it is
        multiplied into an offset, a negative page, and a NUL character or a novel in the search box answered 500."""
        args = super()._get_list_extra_args()
        args.page = min(max(args.page or 0, 0), BIGGEST_INTEGER // (max(self.page_size_options) * 2))
        if args.search:
            args.search = args.search.replace("\x00", "")[: search.MAX_SEARCH_LENGTH] or None
        return args

    def _apply_search(self, query, count_query, joins, count_joins, search_text: str):
        """Every grid search goes through services/search.py: the indexed documents of the big tables (at most
        ``search.CANDIDATE_LIMIT`` matches, then sorted and paged by the grid), the view's columns otherwise."""
        if self.search_in is not None:
            criterion = search.search_criterion(
                db.session, self.search_in, search_text, bureau_id=current_user.bureau_id
            )
            if criterion is not None:
                rows_are_few()
        else:
            columns = [field for field, path in self._search_fields if not path]
            criterion = search.columns_criterion(db.session, columns, search_text)
        if criterion is not None:
            query = query.filter(criterion)
            count_query = count_query.filter(criterion) if count_query is not None else None
        return query, count_query, joins, count_joins

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """Flask-Admin's page of rows, or, beyond the first ``MAX_LIST_ROWS`` rows, none and a message to narrow
        the search (bounded paging: no page reads more than that many rows)."""
        size = page_size or self.page_size
        if execute and page and size and page * size >= MAX_LIST_ROWS:
            flash(
                _(
                    "The list shows only its first %(rows)s rows. Narrow the search or the filters to find the rest.",
                    rows=format_number(MAX_LIST_ROWS),
                ),
                "warning",
            )
            return None, []
        if has_request_context():
            g.grid_rows_are_few = False  # set again by this list's own search or filters (see ``rows_are_few``)
            g.grid_order = self._grid_order(sort_column, sort_desc)
            g.grid_depth = ((page or 0) + 1) * size if size else MAX_LIST_ROWS  # rows up to this page's last
        return super().get_list(page, sort_column, sort_desc, search, filters, execute=execute, page_size=page_size)

    def _grid_order(self, sort_column: Any, sort_desc: bool) -> tuple[Any, bool] | None:
        """The column the page is sorted by first, and whether descending (what the date filters may read)."""
        if sort_column is not None:
            field = self._sortable_columns.get(sort_column)
            return None if field is None or isinstance(field, list) else (field, bool(sort_desc))
        for field, _joins, descending in self._get_default_order():
            return field, bool(descending)
        return None

    def _order_by(self, query, joins, sort_joins, sort_field, sort_desc):
        own_join = bool(sort_joins) and all(self._joined_by_query(item) for item in sort_joins)
        if sort_field is not None and g.get("grid_rows_are_few") and (own_join or not sort_joins):
            # The same order as an expression no index holds: the planner fetches the few candidates by id and
            # sorts them, instead of walking the column's index through the whole bureau until it meets them.
            field = func.coalesce(sort_field, sort_field)
            return query.order_by(field.desc() if sort_desc else field), joins
        if sort_field is not None and own_join:
            return query.order_by(sort_field.desc() if sort_desc else sort_field), joins
        return super()._order_by(query, joins, sort_joins, sort_field, sort_desc)

    def _joined_by_query(self, relationship: Any) -> bool:
        return any(relationship is joined for joined in self.query_joins)  # identity: == would build SQL

    def _get_filter_groups(self):
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:
                options = self._filters[item["index"]].options
                if getattr(options, "per_request", False):
                    item["options"] = [(key, str(label)) for key, label in options()]
        return groups

    # --- tenancy ----------------------------------------------------------------------------
    def selected(self, ids: list[str]):
        """The current bureau's rows among the ids an action was given (junk ids are ignored)."""
        keys = [key for key in map(parse_id, ids) if key is not None]
        return self.get_query().filter(self.model.id.in_(keys)).all()

    def tenant_filter(self, query):
        return query.filter(self.model.bureau_id == current_user.bureau_id)

    def get_query(self):
        return self.tenant_filter(super().get_query())

    def get_count_query(self):
        return self.tenant_filter(super().get_count_query())

    def get_one(self, id: Any) -> Any:
        """Another bureau's id, or a malformed one, is simply not found."""
        key = parse_id(id)
        if key is None:
            abort(404)
        record = self.get_query().filter(self.model.id == key).one_or_none()
        if record is None:
            abort(404)
        return record

    # --- forms: the columns they fill, optimistic locking -------------------------------------
    def scaffold_form(self):
        """Flask-Admin's form for the model, told which column each field fills (forms/columns.py)."""
        form_class = super().scaffold_form()
        form_class.model_columns = model_columns(self.model)
        return form_class

    def get_edit_form(self):
        form_class = super().get_edit_form()

        class LockedEditForm(form_class):
            version_check = HiddenField()

        return LockedEditForm

    def edit_form(self, obj: Any = None):
        form = super().edit_form(obj)
        if obj is not None and not form.version_check.data:
            form.version_check.data = str(obj.version)
        return form

    populate_skip = frozenset({"version_check", "csrf_token", "submission_token"})

    def populate(self, form, model) -> None:
        """Copy form data to the model, leaving out fields that are not model attributes."""
        for name, field in form._fields.items():
            if name in self.populate_skip:
                continue
            field.populate_obj(model, name)

    # --- model handlers ---------------------------------------------------------------------
    def create_model(self, form):
        try:
            model = self.build_new_instance()
            model.bureau_id = current_user.bureau_id
            self.populate(form, model)
            db.session.add(model)
            self._on_model_change(form, model, True)
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, then rollback
            db.session.rollback()
            if not self.handle_view_exception(exc):
                raise
            return False
        self.after_model_change(form, model, True)
        return model

    def update_model(self, form, model) -> bool:
        try:
            expected = form.version_check.data
            if expected and str(model.version) != expected:
                raise StaleEditError(
                    _(
                        "Someone else saved this record while you were editing it. "
                        "Reload the page to see their changes, then make yours again."
                    )
                )
            self.populate(form, model)
            self._on_model_change(form, model, False)
            db.session.commit()
        except Exception as exc:  # noqa: BLE001
            db.session.rollback()
            if not self.handle_view_exception(exc):
                raise
            return False
        self.after_model_change(form, model, False)
        return True

    def delete_model(self, model) -> bool:
        try:
            self.on_model_delete(model)
            db.session.delete(model)
            db.session.commit()
        except Exception as exc:  # noqa: BLE001
            db.session.rollback()
            if not self.handle_view_exception(exc):
                raise
            return False
        self.after_model_delete(model)
        return True

    # --- bulk actions -------------------------------------------------------------------------
    def handle_action(self, return_view: str | None = None):
        """Every bulk action: a failure rolls back and reaches the user as a sentence, never as exception text."""
        try:
            return super().handle_action(return_view)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, then rollback
            db.session.rollback()
            if not self.handle_view_exception(exc):
                raise
            return redirect(self.get_url(".index_view"))

    @action("delete", _l("Delete"), _l("Delete the selected records for good?"))
    def action_delete(self, ids: list[str]) -> None:
        """Flask-Admin's bulk delete, but with integer ids (PostgreSQL refuses integer = varchar), through the ORM
        so the history and the other flush hooks run, all or nothing."""
        records = self.selected(ids)
        try:
            for record in records:
                self.on_model_delete(record)
                db.session.delete(record)
            db.session.commit()
        except IntegrityError as exc:
            db.session.rollback()
            log.warning("Bulk delete in %s refused by the database: %s", type(self).__name__, exc.orig)
            flash(
                integrity_message(exc)
                or _("A selected record is still in use, so it cannot be deleted; nothing was deleted."),
                "error",
            )
            return
        except Exception as exc:  # noqa: BLE001
            db.session.rollback()
            if not self.handle_view_exception(exc):
                raise
            return
        for record in records:
            self.after_model_delete(record)
        flash(_("%(count)s record(s) deleted.", count=len(records)), "success")

    def handle_view_exception(self, exc: Exception) -> bool:
        """Show the real reason in the user's language instead of a generic failure; the detail goes to the log."""
        if isinstance(exc, DomainError | ValidationError):
            flash(str(exc), "error")
            return True
        if isinstance(exc, StaleDataError):
            flash(
                _(
                    "Someone else saved this record while you were editing it. "
                    "Reload the page to see their changes, then make yours again."
                ),
                "error",
            )
            return True
        if isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError):
            return False  # the database failed, not the input: the error page says so (admin_views/errors.py)
        if isinstance(exc, IntegrityError):
            log.warning("Database refusal in %s: %s", type(self).__name__, exc.orig)
            message = integrity_message(exc)
            flash(message or _("The database refused the change; nothing was saved."), "error")
            return True
        if current_app.config.get("FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION"):
            return False
        log.exception("Unexpected error in %s", type(self).__name__)
        flash(_("Something went wrong and nothing was saved. Please try again."), "error")
        return True

    # --- history ----------------------------------------------------------------------------
    def history_for(self, model: Any, limit: int = HISTORY_LIMIT) -> list[HistoryRow]:
        """The record's own history, newest first, as the history template shows it."""
        return record_history(db.session, model, bureau_id=current_user.bureau_id, limit=limit)

    # Extra row actions (``column_extra_row_actions``) whose macros read nothing of the row but its id.
    row_actions_by_id_only: tuple[str, ...] = ()

    def get_list_row_actions(self) -> list:
        """The row actions, each rendered once per request where its HTML depends only on the row's id."""
        return [
            RenderedOnce(action)
            if type(action) in BY_ID_ONLY
            or (type(action) is template.TemplateLinkRowAction and action.template_name in self.row_actions_by_id_only)
            else action
            for action in super().get_list_row_actions()
        ]

    def get_url(self, endpoint: str, **kwargs: Any) -> str:
        """``url_for``, built once per request for each kind of link: a grid of 50 rows asks for the same row action
        links with only the row's id changing, and werkzeug's URL building was a fifth of the page's time. The link
        is built with a marker id and the row's id put in its place."""
        row_id = kwargs.get("id")
        if not has_request_context() or (row_id is not None and not _plain_id(row_id)):
            return super().get_url(endpoint, **kwargs)
        try:
            key = (request.blueprint, endpoint, tuple(sorted((k, v) for k, v in kwargs.items() if k != "id")))
            hash(key)
        except TypeError:  # an argument that cannot be a key (a list): build it as usual
            return super().get_url(endpoint, **kwargs)
        cache = g.setdefault("url_templates", {})
        if (key, row_id is None) not in cache:
            built = super().get_url(endpoint, **{**kwargs, "id": _URL_MARKER} if row_id is not None else kwargs)
            marker_once = row_id is None or built.count(str(_URL_MARKER)) == 1
            cache[key, row_id is None] = built if marker_once else None
        template = cache[key, row_id is None]
        if template is None:
            return super().get_url(endpoint, **kwargs)
        return template if row_id is None else template.replace(str(_URL_MARKER), str(row_id))

    def render(self, template: str, **kwargs: Any) -> str:
        model = kwargs.get("model")
        if model is not None and template in (self.details_template, self.edit_template):
            kwargs["history"] = self.history_for(model)
        return super().render(template, **kwargs)
