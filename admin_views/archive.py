"""Archive, restore and delete for good: one mixin for the client, person and user grids.

Flask-Admin's generic delete is off on these grids (no trash icon, no bulk "Slett", POST .../delete/ does nothing):
a record with history is archived; a record without it is deleted for good only by an administrator, after a page
that names exactly what goes.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from admin_views.unit_of_work import unit_of_work
from extensions import db
from forms.base import TranslatedForm
from models import Client, User
from services import archive, policy

YES, NO = "yes", "no"


class ArchivedFilter(BaseSQLAFilter):
    """The filter "Archived: yes / no"; a grid without this filter shows "no" (see ``ArchiveMixin.get_list``)."""

    def __init__(self, model: type, name: str) -> None:
        super().__init__(model.archived_at, name, options=((NO, _l("No")), (YES, _l("Yes"))))
        self.model = model

    def apply(self, query, value, alias=None):
        return query.filter(archive.is_archived(self.model) if value == YES else archive.is_live(self.model))

    def validate(self, value) -> bool:
        return value in (YES, NO)

    def clean(self, value):
        return value

    def operation(self):
        return _l("equals")


def describe(record: Any) -> dict[str, Any]:
    """What the confirmation page names: the record, its org number or e-mail, and the people that go with it."""
    if isinstance(record, Client):
        return {
            "name": record.name,
            "detail": record.org_number or "–",
            "people": sorted(p.full_name for p in record.persons),
        }
    person = record.person if isinstance(record, User) else record
    return {"name": person.full_name, "detail": f"{person.email or '–'} · {person.client.name}", "people": []}


class ArchiveMixin:
    """Mixed into ClientView, PersonView and UserView before SecureModelView."""

    can_delete = False

    def __init__(self, model: type, *args: Any, **kwargs: Any) -> None:
        self.column_filters = (*(self.column_filters or ()), ArchivedFilter(model, _l("Archived")))
        super().__init__(model, *args, **kwargs)

    def _actor(self) -> User:
        return current_user._get_current_object()

    def _verbs(self):
        return archive.verbs_for(self.model)

    # --- the grid shows live rows unless "Archived" is chosen ---------------------------------
    def get_list(self, page, sort_column, sort_desc, search, filters, *args: Any, **kwargs: Any):
        chosen = any(isinstance(self._filters[index], ArchivedFilter) for index, _name, _value in filters or ())
        if not chosen:
            index = next(i for i, flt in enumerate(self._filters) if isinstance(flt, ArchivedFilter))
            filters = [*(filters or ()), (index, self._filters[index].name, NO)]
        return super().get_list(page, sort_column, sort_desc, search, filters, *args, **kwargs)

    def is_action_allowed(self, name: str) -> bool:
        _archive, restore, delete = self._verbs()
        if name == "restore":
            return policy.can(db.session, self._actor(), restore)
        if name == "delete_permanently":
            return policy.can(db.session, self._actor(), delete)
        return super().is_action_allowed(name)

    def archive_flags(self, record: Any) -> dict[str, bool]:
        """What the record's page may offer, as the policy and the archive rules say."""
        actor = self._actor()
        _archive, restore, delete = self._verbs()
        archived = record.archived_at is not None
        return {
            "is_archived": archived,
            "can_archive": not archived and archive.archive_refusal(db.session, record, actor=actor) is None,
            "can_restore": archived and policy.can(db.session, actor, restore, record),
            "can_delete_permanently": policy.can(db.session, actor, delete, record),
        }

    # --- bulk actions ---------------------------------------------------------------------------
    @action(
        "archive",
        _l("Archive"),
        _l("Archive the selected records? They leave the lists and their users are blocked; the history is kept."),
    )
    def action_archive(self, ids: list[str]) -> None:
        with unit_of_work() as work:
            count, blocked = archive.archive_many(db.session, self.selected(ids), actor=self._actor())
        if work.done:
            flash(
                _("%(count)s record(s) archived, %(blocked)s user(s) blocked.", count=count, blocked=blocked), "success"
            )

    @action("restore", _l("Restore"), _l("Restore the selected archived records?"))
    def action_restore(self, ids: list[str]) -> None:
        with unit_of_work() as work:
            count = archive.restore_many(db.session, self.selected(ids), actor=self._actor())
        if work.done:
            flash(restored_message(count), "success")

    @action("delete_permanently", _l("Delete permanently"))
    def action_delete_permanently(self, ids: list[str]):
        """Deleting for good needs a page that names what goes."""
        keys = [record.id for record in self.selected(ids)]
        return redirect(self.get_url(".delete_permanently_view", id=keys))

    # --- pages ----------------------------------------------------------------------------------
    @expose("/delete-permanently/", methods=("GET", "POST"))
    def delete_permanently_view(self):
        """Name every record (and the people that go with it) before deleting for good; refuse what has history."""
        records = self.selected(request.values.getlist("id"))
        back = redirect(self.get_url(".index_view"))
        if not records:
            flash(_("Choose the records to delete."), "error")
            return back
        actor = self._actor()
        refusal = policy.refusal(db.session, actor, self._verbs()[2])
        if refusal is not None:
            flash(refusal, "error")
            return back
        form = TranslatedForm()
        if request.method == "POST":
            if not form.validate_on_submit():
                abort(400)
            names = [describe(record)["name"] for record in records]
            with unit_of_work() as work:
                for record in records:
                    archive.delete_permanently(db.session, record, actor=actor)
            if work.done:
                flash(_("Deleted for good: %(names)s.", names=", ".join(names)), "success")
            return back
        rows = [
            {**describe(record), "id": record.id, "history": archive.history_of(db.session, record)}
            for record in records
        ]
        return self.render(
            "admin/archive/confirm_delete.html",
            rows=rows,
            form=form,
            blocked=any(row["history"] for row in rows),
        )

    @expose("/archive/<int:record_id>/<operation>/", methods=("POST",))
    def archive_one_view(self, record_id: int, operation: str):
        """The page buttons "Archive" and "Restore" of one record."""
        if operation not in ("archive", "restore"):
            abort(404)
        record = self.get_one(record_id)
        if not TranslatedForm().validate_on_submit():  # the CSRF check
            abort(400)
        with unit_of_work() as work:
            if operation == "archive":
                _count, blocked = archive.archive_many(db.session, [record], actor=self._actor())
                message = _("Archived; %(blocked)s user(s) blocked.", blocked=blocked)
            else:
                archive.restore_many(db.session, [record], actor=self._actor())
                message = restored_message(1)
        if work.done:
            flash(message, "success")
        return redirect(self.archive_return_url(record))

    def archive_return_url(self, record: Any) -> str:
        if hasattr(self, "manage_view"):
            return self.get_url(".manage_view", id=record.id)
        return self.get_url(".details_view", id=record.id)


def restored_message(count: int) -> str:
    return _(
        "%(count)s record(s) restored. Their users stay blocked: reactivate those who should log in again.",
        count=count,
    )
