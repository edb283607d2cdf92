"""Bulk grants that need a choice first: a package for the selected users, an employee's access to selected clients.

``GrantPackageMixin`` gives UserView its ``/grant-package/`` page (the ``grant_package`` action redirects there);
``grant_access_action`` is the whole of ClientView's ``grant_access`` action: the first POST from the grid shows the
choice of employee and role, the second (from that page, to the same action URL) grants.
"""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import DateField, SelectField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired

from admin_views.labels import RESELLER_ROLE
from admin_views.submissions import OneTimeSubmission
from admin_views.unit_of_work import unit_of_work
from extensions import db
from forms.base import TranslatedForm
from forms.one_time import OneTimeForm
from models import Package, ResellerRole, User
from services.access import employee_candidates, grant_employee_access
from services.packages import grant_package


def _optional_int(value: object) -> int | None:
    return int(value) if value not in (None, "", "None") else None


class GrantPackageForm(OneTimeForm, TranslatedForm):
    # Choices are only what is offered: the service refuses another bureau's package with the reason.
    package = SelectField(_l("Package"), coerce=_optional_int, validate_choice=False, validators=[InputRequired()])
    valid_from = DateField(_l("Start date"), validators=[DataRequired()], default=date.today)
    grant = SubmitField(_l("Grant the package"))


class GrantAccessForm(OneTimeForm, TranslatedForm):
    employee = SelectField(_l("Employee"), coerce=_optional_int, validate_choice=False, validators=[InputRequired()])
    role = SelectField(
        _l("Role"),
        # Every bureau role the Personer tab offers: accountant, auditor and integration user (DOMAIN.md).
        choices=[SelectChoice(role.value, RESELLER_ROLE[role]) for role in ResellerRole],
    )
    grant = SubmitField(_l("Give access"))


class GrantPackageMixin:
    """Mixed into UserView: choose a package and a start date for the users the action was given."""

    @expose("/grant-package/", methods=("GET", "POST"))
    def grant_package_view(self):
        users = self.selected(request.args.getlist("id"))
        if not users:
            flash(_("Select the users first."), "error")
            return redirect(self.get_url(".index_view"))
        form = GrantPackageForm()
        packages = db.session.scalars(
            select(Package)
            .where(Package.bureau_id == current_user.bureau_id, Package.active.is_(True))
            .order_by(Package.kind.desc(), Package.rank, Package.code)
        )
        form.package.choices = [SelectChoice(str(p.id), str(p)) for p in packages]
        outcomes = None
        once = OneTimeSubmission(form)
        replay = once.replay(self.get_url(".index_view"))
        if replay is not None:
            return replay
        if form.validate_on_submit():
            package = db.session.get(Package, form.package.data)
            with unit_of_work(once, fallback=self.get_url(".index_view")) as work:
                work.claim()
                outcomes = grant_package(
                    db.session,
                    current_user.bureau_id,
                    users,
                    package,
                    form.valid_from.data,
                    actor=current_user._get_current_object(),
                )
                work.leads_to(self.get_url(".index_view"))
            if work.replay:
                return work.replay
            if work.done:
                granted = sum(1 for outcome in outcomes if outcome.granted)
                flash(
                    _(
                        "%(package)s granted to %(granted)s of %(total)s user(s).",
                        package=str(package),
                        granted=granted,
                        total=len(outcomes),
                    ),
                    "success" if granted == len(outcomes) else "warning",
                )
        elif request.method == "POST":
            flash(_("Check the fields marked in red; nothing was saved."), "error")
        return self.render("admin/grant_package.html", form=form, users=users, outcomes=outcomes)


def grant_access_action(view, ids: list[str]):
    """ClientView's ``grant_access`` action: choose the employee and role, then create the bureau users."""
    clients = view.selected(ids)
    if not clients:
        flash(_("Select the clients first."), "error")
        return None
    form = GrantAccessForm()
    form.employee.choices = [
        SelectChoice(str(u.id), f"{u.person.full_name} <{u.person.email or '-'}>")
        for u in employee_candidates(db.session, current_user.bureau_id, date.today())
    ]
    once = OneTimeSubmission(form)
    if "grant" in request.form:
        replay = once.replay(view.get_url(".index_view"))
        if replay is not None:
            return replay
        if form.validate():
            employee = db.session.get(User, form.employee.data)
            with unit_of_work(once, fallback=view.get_url(".index_view")) as work:
                work.claim()
                report = grant_employee_access(
                    db.session,
                    current_user.bureau_id,
                    employee,
                    clients,
                    ResellerRole(form.role.data),
                    actor=current_user._get_current_object(),
                )
                work.leads_to(view.get_url(".index_view"))
            if work.replay:
                return work.replay
            if work.done:
                flash(
                    _(
                        "Access given on %(created)s client(s); %(already)s already had it; %(refused)s refused.",
                        created=len(report.created),
                        already=len(report.already),
                        refused=len(report.refused),
                    ),
                    "success" if not report.refused else "warning",
                )
                for client, reason in report.refused:
                    flash(f"{client.name}: {reason}", "error")
                return redirect(view.get_url(".index_view"))
        else:
            flash(_("Check the fields marked in red; nothing was saved."), "error")
    return view.render("admin/grant_access.html", form=form, clients=clients)
