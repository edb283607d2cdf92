"""Saved views on every grid (``SecureModelView``): the menu, "Lagre visning", apply, rename, delete, default.

The routes are thin: each asks services/saved_views.py, commits once at the edge (``unit_of_work``) and goes back
to the grid with arguments the grid accepts (``GridArguments``), never to an address taken from the request.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlencode

from flask import flash, g, redirect, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from admin_views.unit_of_work import unit_of_work
from extensions import db
from forms.saved_views import RenameViewForm, SavedViewButtonForm, SaveViewForm
from services import saved_views
from services.saved_views import GridArguments, GridFilter, SavedViewError


def filter_name(flt: Any, taken: set[str]) -> str:
    """A name for a grid filter that stays when filters are added or moved: its kind, column and label."""
    label = getattr(flt.name, "_args", (flt.name,))[0]  # a lazy label's English msgid, not today's translation
    column = getattr(getattr(flt, "column", None), "key", None) or ""
    name = "-".join(part for part in (type(flt).__name__, str(column), str(label)) if part)
    name = "".join(char if char.isascii() and char.isalnum() else "-" for char in name).lower()[:80]
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}-{n}"
    taken.add(unique)
    return unique


class SavedViewsMixin:
    """Every list view's saved views; the grid is named by the view's endpoint."""

    def grid_arguments(self) -> GridArguments:
        """What this grid accepts in its links, for saved_views to check a view against (built once per view)."""
        cached = self.__dict__.get("_grid_arguments")
        if cached is not None:
            return cached
        from admin_views.base import filter_value_ok

        taken: set[str] = set()
        filters = tuple(
            GridFilter(url_key=key, name=filter_name(flt, taken), accepts=partial(filter_value_ok, flt))
            for key, (_index, flt) in (self._filter_args or {}).items()
        )
        sorts = {
            str(name): str(position)
            for position, (name, _label) in enumerate(self._list_columns)
            if name in self._sortable_columns
        }
        sizes = tuple(self.page_size_options) if self.can_set_page_size else ()
        spec = GridArguments(
            grid=self.endpoint,
            filters=filters,
            sorts=sorts,
            page_sizes=sizes + (self.page_size,),
            default_page_size=self.page_size,
            searchable=bool(self._search_supported),
        )
        self._grid_arguments = spec  # the filters' checks read their options when called, so this holds
        return spec

    # --- the grid ---------------------------------------------------------------------------
    @expose("/")
    def index_view(self):
        """The grid; opened bare (no arguments at all), it opens the staff member's default view instead."""
        spec = self.grid_arguments()
        menu = saved_views.menu(db.session, current_user, spec.grid)
        if not request.args and menu.default is not None:
            return self._open_saved_view(spec, menu.default.id)
        current = saved_views.check_arguments(spec, request.args.items(multi=True), stored=False)
        back = urlencode(list(current.url_args(spec).items()))
        link = self.get_url(".saved_view_open", view_id="0").rsplit("/0/", 1)[0] + "/{}/"  # one url_for, not 100
        g.saved_views = {
            "menu": menu,
            "links": [(entry, link.format(entry.id)) for entry in menu.entries],
            "current": current.stored,
            "plain_url": self.get_url(".index_view", page_size=spec.default_page_size),
            "manage_url": self.get_url(".saved_view_manage", back=back),
            "save_back": request.query_string.decode("latin-1")[:20000],  # what is saved (dropped args counted)
        }
        return super().index_view()

    def _saved_view_url(self, spec: GridArguments, arguments: saved_views.Arguments) -> str:
        return self.get_url(".index_view", **arguments.url_args(spec))

    @staticmethod
    def _checked_back(spec: GridArguments, back: str | None) -> tuple[saved_views.Arguments, str]:
        """A form's or link's ``back`` (the grid's query string) as the grid takes it, and as a query string."""
        arguments = saved_views.check_arguments(spec, saved_views.parse_query(back or ""), stored=False)
        return arguments, urlencode(list(arguments.url_args(spec).items()))

    def _saved_view_back(self, spec: GridArguments, back: str | None) -> Any:
        """Back to the grid as it was."""
        arguments, _query = self._checked_back(spec, back)
        return redirect(self._saved_view_url(spec, arguments))

    def _saved_view_manage(self, spec: GridArguments, back: str | None) -> Any:
        """To the list's "Behandle visninger" page, which leads back to the grid as it was."""
        _arguments, query = self._checked_back(spec, back)
        return redirect(self.get_url(".saved_view_manage", back=query))

    @expose("/views/manage/")
    def saved_view_manage(self):
        """ "Behandle visninger": the views of this list the staff member sees, with default, rename and delete."""
        spec = self.grid_arguments()
        arguments, back = self._checked_back(spec, request.args.get("back"))
        return self.render(
            "admin/model/saved_views.html",
            menu=saved_views.menu(db.session, current_user, spec.grid),
            back=back,
            grid_url=self._saved_view_url(spec, arguments),
            grid_name=self.name,
        )

    def _open_saved_view(self, spec: GridArguments, view_id: int | None):
        try:
            arguments = saved_views.apply_view(db.session, spec, actor=current_user, view_id=view_id)
        except SavedViewError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(self.get_url(".index_view", page_size=spec.default_page_size))
        if arguments.dropped:
            flash(
                ngettext(
                    "%(num)s setting of this view no longer fits the list and was left out.",
                    "%(num)s settings of this view no longer fit the list and were left out.",
                    arguments.dropped,
                ),
                "warning",
            )
        return redirect(self._saved_view_url(spec, arguments))

    # --- the routes -------------------------------------------------------------------------
    @expose("/views/<view_id>/")
    def saved_view_open(self, view_id: str):
        """Open a saved view: its arguments, checked against the grid as it is now."""
        from admin_views.base import parse_id

        return self._open_saved_view(self.grid_arguments(), parse_id(view_id))

    @expose("/views/", methods=("POST",))
    def saved_view_save(self):
        spec = self.grid_arguments()
        form = SaveViewForm()
        if not form.validate():
            flash(_("The form has expired. Reload the page and try again."), "error")
            return self._saved_view_back(spec, None)
        dropped = 0
        with unit_of_work() as work:
            view, dropped = saved_views.save_view(
                db.session,
                spec,
                actor=current_user,
                name=form.name.data,
                query=form.back.data or "",
                shared=bool(form.shared.data),
                make_default=bool(form.make_default.data),
            )
            name = view.name
        if work.done:
            flash(_("The view “%(name)s” was saved.", name=name), "success")
            if dropped:
                flash(
                    ngettext(
                        "%(num)s setting of the list could not be saved and was left out.",
                        "%(num)s settings of the list could not be saved and were left out.",
                        dropped,
                    ),
                    "warning",
                )
        return self._saved_view_back(spec, form.back.data)

    @expose("/views/<view_id>/rename/", methods=("POST",))
    def saved_view_rename(self, view_id: str):
        from admin_views.base import parse_id

        spec, form = self.grid_arguments(), RenameViewForm()
        if not form.validate():
            flash(_("The form has expired. Reload the page and try again."), "error")
            return self._saved_view_manage(spec, None)
        with unit_of_work() as work:
            view = saved_views.rename_view(
                db.session, actor=current_user, grid=spec.grid, view_id=parse_id(view_id), name=form.name.data
            )
            name = view.name
        if work.done:
            flash(_("The view was renamed to “%(name)s”.", name=name), "success")
        return self._saved_view_manage(spec, form.back.data)

    @expose("/views/<view_id>/delete/", methods=("POST",))
    def saved_view_delete(self, view_id: str):
        from admin_views.base import parse_id

        spec, form = self.grid_arguments(), SavedViewButtonForm()
        if not form.validate():
            flash(_("The form has expired. Reload the page and try again."), "error")
            return self._saved_view_manage(spec, None)
        with unit_of_work() as work:
            saved_views.delete_view(db.session, actor=current_user, grid=spec.grid, view_id=parse_id(view_id))
        if work.done:
            flash(_("The view was deleted."), "success")
        return self._saved_view_manage(spec, form.back.data)

    @expose("/views/<view_id>/default/", methods=("POST",))
    def saved_view_default(self, view_id: str):
        from admin_views.base import parse_id

        spec, form = self.grid_arguments(), SavedViewButtonForm()
        if not form.validate():
            flash(_("The form has expired. Reload the page and try again."), "error")
            return self._saved_view_manage(spec, None)
        with unit_of_work() as work:
            view = saved_views.set_default(db.session, actor=current_user, grid=spec.grid, view_id=parse_id(view_id))
            name = view.name
        if work.done:
            flash(_("“%(name)s” now opens when you open this list.", name=name), "success")
        return self._saved_view_manage(spec, form.back.data)

    @expose("/views/no-default/", methods=("POST",))
    def saved_view_no_default(self):
        spec, form = self.grid_arguments(), SavedViewButtonForm()
        if not form.validate():
            flash(_("The form has expired. Reload the page and try again."), "error")
            return self._saved_view_manage(spec, None)
        with unit_of_work() as work:
            saved_views.clear_default(db.session, actor=current_user, grid=spec.grid)
        if work.done:
            flash(_("This list now opens without a saved view."), "success")
        return self._saved_view_manage(spec, form.back.data)
