"""The Personer tab of the client page: the five kinds of people, adding them, and their row actions."""

from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from admin_views.labels import PERSON_KIND, RESELLER_ROLE
from admin_views.submissions import OneTimeSubmission
from admin_views.unit_of_work import unit_of_work
from extensions import db
from forms.base import TranslatedForm
from forms.people import AccessForm, AddPeopleForm
from models import Client, Package, PackageKind, Permission, Person, PersonKind, User
from services import client_page, policy
from services.access import employee_candidates
from services.archive import archive
from services.errors import DomainError
from services.inputs import cleaned
from services.people import NewPerson, add_person, change_access, current_assignments, remove_access
from services.policy import Verb

ROW_OPERATIONS = ("remove_access", "deactivate", "reactivate", "archive", "invite")


def _actor() -> User:
    return current_user._get_current_object()


def _catalogue(bureau_id: int) -> tuple[list[Package], list[Package], list[Permission]]:
    packages = db.session.scalars(
        select(Package)
        .where(Package.bureau_id == bureau_id, Package.active.is_(True))
        .order_by(Package.rank, Package.code)
    ).all()
    permissions = db.session.scalars(
        select(Permission).where(Permission.bureau_id == bureau_id).order_by(Permission.code)
    ).all()
    mains = [p for p in packages if p.kind is PackageKind.MAIN]
    addons = [p for p in packages if p.kind is PackageKind.ADDON]
    return mains, addons, list(permissions)


def _with_access_choices(form: AccessForm, bureau_id: int) -> dict:
    """Fill the package and permission choices; returns what the page needs to show the hierarchy."""
    mains, addons, permissions = _catalogue(bureau_id)
    form.main_package.choices = [SelectChoice("", _("No main package"))] + [
        SelectChoice(str(p.id), f"{p.name} ({p.code})") for p in mains
    ]
    form.addon_packages.choices = [SelectChoice(str(p.id), f"{p.name} ({p.code})") for p in addons]
    form.permissions.choices = [SelectChoice(str(p.id), p.name) for p in permissions]
    # A higher main package includes every lower one: show what each includes, and the rights it gives.
    includes = {p.id: [lower.name for lower in mains if lower.rank < p.rank] for p in mains}
    rights = {
        p.id: sorted({perm.name for lower in mains if lower.rank <= p.rank for perm in lower.permissions})
        for p in mains
    }
    rights |= {p.id: sorted(perm.name for perm in p.permissions) for p in addons}
    return {"includes": includes, "rights": rights, "permission_names": {p.id: p.name for p in permissions}}


# The people rows of the add form are list fields outside WTForms: each is checked against its column here.
ROW_COLUMNS = {
    "first_name": (Person.__table__.c.first_name, _l("First name")),
    "last_name": (Person.__table__.c.last_name, _l("Last name")),
    "email": (Person.__table__.c.email, _l("E-mail")),
    "phone": (Person.__table__.c.phone, _l("Phone")),
}


def _checked_row(row: dict) -> dict:
    """The row with one-line values, or ``InvalidInput`` naming the field (a NUL, a value longer than its column)."""
    return {
        name: cleaned(value, *ROW_COLUMNS[name]) if name in ROW_COLUMNS and value else value
        for name, value in row.items()
    }


class PeopleTab:
    """The Personer tab's context, the add form per kind, the access form, and the row actions."""

    def people_context(self, client: Client) -> dict:
        return {"groups": client_page.people(db.session, client, actor=_actor(), today=date.today())}

    def _person(self, client: Client, person_id: int) -> Person:
        person = db.session.get(Person, person_id)
        if person is None or person.client_id != client.id:
            abort(404)
        return person

    @expose("/people/add/<kind>/", methods=("GET", "POST"))
    def add_people_view(self, kind: str):
        """One "+" per kind; several people can be added, and invited, in one go."""
        client = self.get_one(request.args.get("id"))
        try:
            person_kind = PersonKind(kind)
        except ValueError:
            abort(404)
        form = AddPeopleForm()
        hierarchy = _with_access_choices(form, client.bureau_id)
        employees = employee_candidates(db.session, client.bureau_id, date.today())
        form.employee.choices = [SelectChoice("", "–")] + [SelectChoice(str(u.id), str(u)) for u in employees]
        form.reseller_role.choices = [SelectChoice("", "–")] + [
            SelectChoice(str(value), label) for value, label in RESELLER_ROLE.items()
        ]
        rows = self._rows()
        once = OneTimeSubmission(form)
        replay = once.replay()
        if replay is not None:
            return replay
        if form.validate_on_submit():
            with unit_of_work(once) as work:
                work.claim()
                policy.check(db.session, _actor(), Verb.CLIENT_ADD_PEOPLE, client)
                people = self._add_all(client, person_kind, form, rows)
                invited = self._invite_new(people) if form.invite.data else 0
                work.leads_to(self.get_url(".manage_view", id=client.id, tab="people"))
            if work.replay:
                return work.replay
            if work.done:
                flash(
                    _("%(count)s person(s) added, %(invited)s invited.", count=len(people), invited=invited), "success"
                )
                return redirect(self.get_url(".manage_view", id=client.id, tab="people"))
        return self.render(
            "admin/clients/add_people.html",
            client=client,
            kind=person_kind,
            kind_label=PERSON_KIND[person_kind],
            form=form,
            rows=rows or [{}],
            employees=employees,
            hierarchy=hierarchy,
        )

    def _rows(self) -> list[dict]:
        """The people rows of the add form (list fields), without the empty ones."""
        names = ("first_name", "last_name", "email", "phone")
        columns = {name: request.form.getlist(name) for name in names}
        count = max((len(values) for values in columns.values()), default=0)
        rows = []
        for index in range(count):
            row = {name: (columns[name][index] if index < len(columns[name]) else "").strip() for name in names}
            if any(row.values()):
                rows.append(row)
        return rows

    def _add_all(self, client: Client, kind: PersonKind, form: AddPeopleForm, rows: list[dict]) -> list[Person]:
        today = date.today()
        if kind is PersonKind.RESELLER_USER:
            rows = [{}]  # the employee brings name and e-mail
        if not rows:
            raise DomainError(_("Add at least one person."))
        people = []
        for number, row in enumerate(rows, start=1):
            row = _checked_row(row)
            data = NewPerson(
                kind=kind,
                first_name=row.get("first_name", ""),
                last_name=row.get("last_name", ""),
                email=row.get("email") or None,
                phone=row.get("phone") or None,
                main_package_id=form.main_package.data,
                addon_package_ids=list(form.addon_packages.data or []),
                permission_ids=list(form.permissions.data or []),
                end_date=form.end_date.data,
                employee_id=form.employee.data,
                reseller_role=form.reseller_role.data or None,
                bank_access=bool(form.bank_access.data),
                user_admin=bool(form.user_admin.data),
            )
            try:
                people.append(add_person(db.session, client, data, today=today))
            except DomainError as exc:
                if len(rows) == 1:
                    raise  # one person: the reason alone, no "1: " in front
                label = " ".join(filter(None, [row.get("first_name"), row.get("last_name")])) or str(number)
                raise DomainError(_("%(person)s: %(reason)s", person=label, reason=str(exc))) from exc
        return people

    def _invite_new(self, people: list[Person]) -> int:
        from services.invitations import invite_user

        invited = 0
        for person in people:
            user = person.user
            if user is not None and person.kind is not PersonKind.RESELLER_USER and person.email:
                invite_user(db.session, user, actor=_actor())
                invited += 1
        return invited

    @expose("/people/<int:person_id>/access/", methods=("GET", "POST"))
    def change_access_view(self, person_id: int):
        """Change a user's packages (from today) or single permissions."""
        client = self.get_one(request.args.get("id"))
        person = self._person(client, person_id)
        if person.user is None:
            abort(404)
        user = person.user
        form = AccessForm()
        hierarchy = _with_access_choices(form, client.bureau_id)
        today = date.today()
        if request.method == "GET":
            held = current_assignments(user, today)
            form.main_package.data = next((a.package_id for a in held if a.package_kind is PackageKind.MAIN), None)
            form.addon_packages.data = [a.package_id for a in held if a.package_kind is PackageKind.ADDON]
            form.permissions.data = [p.id for p in user.permissions]
        elif form.validate_on_submit():
            with unit_of_work() as work:
                policy.check(db.session, _actor(), Verb.USER_CHANGE_ACCESS, user)
                change_access(
                    db.session,
                    user,
                    main_package_id=form.main_package.data,
                    addon_package_ids=list(form.addon_packages.data or []),
                    permission_ids=list(form.permissions.data or []),
                    today=today,
                )
            if work.done:
                flash(_("The access of %(name)s is changed.", name=person.full_name), "success")
                return redirect(self.get_url(".manage_view", id=client.id, tab="people"))
        return self.render(
            "admin/clients/change_access.html", client=client, person=person, form=form, hierarchy=hierarchy
        )

    @expose("/people/<int:person_id>/<operation>/", methods=("POST",))
    def person_operation_view(self, person_id: int, operation: str):
        """Row actions: remove access, deactivate, reactivate, delete, (re-)send the invitation."""
        if operation not in ROW_OPERATIONS:
            abort(404)
        client = self.get_one(request.args.get("id"))
        person = self._person(client, person_id)
        if not TranslatedForm().validate_on_submit():  # the CSRF check
            abort(400)
        name = person.full_name
        with unit_of_work() as work:
            message = self._run_operation(person, operation)
        if work.done:
            flash(message % {"name": name}, "success")
        return redirect(self.get_url(".manage_view", id=client.id, tab="people"))

    def _run_operation(self, person: Person, operation: str) -> str:
        user = person.user
        policy.check(db.session, _actor(), client_page.OPERATION_VERBS[operation], user if user is not None else person)
        if operation == "archive":  # deleting for good only through the persons grid's confirmation page
            archive(db.session, person, actor=_actor())
            return _("%(name)s is archived; the history is kept.")
        if user is None:
            raise DomainError(_("%(name)s has no user.", name=person.full_name))
        if operation == "remove_access":
            remove_access(db.session, user, today=date.today())
            return _("The packages and permissions of %(name)s are removed.")
        from services import invitations

        if operation == "deactivate":
            invitations.deactivate(db.session, [user], actor=_actor())
            return _("%(name)s is deactivated.")
        if operation == "reactivate":
            invitations.reactivate(db.session, [user], actor=_actor())
            return _("%(name)s is no longer deactivated.")
        invitations.invite_user(db.session, user, actor=_actor())
        return _("The invitation to %(name)s is on its way; older links no longer work.")
