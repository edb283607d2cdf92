"""The person and user grids."""

from __future__ import annotations

from datetime import date, timedelta

from flask_admin.contrib.sqla.filters import (
    BaseSQLAFilter,
    DateBetweenFilter,
    DateSmallerFilter,
    FilterEqual,
    FilterLike,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import contains_eager, joinedload
from wtforms import PasswordField
from wtforms.validators import Length, Optional

from admin_views.base import SecureModelView, TenantAjaxLoader, UserAjaxLoader, per_request
from admin_views.labels import (
    PERSON_KIND,
    RESELLER_ROLE,
    STAFF_ROLE,
    USER_STATUS,
    choices,
    formatter,
)
from extensions import db
from forms.validators import EmailAddress
from models import (
    Client,
    Package,
    PackageAssignment,
    Permission,
    Person,
    PersonKind,
    StaffRole,
    User,
)
from services.errors import DomainError
from services.people import check_person, check_user

PERSON_LABELS = {
    "client": _l("Client"),
    "client.name": _l("Client"),
    "kind": _l("Kind"),
    "first_name": _l("First name"),
    "last_name": _l("Last name"),
    "email": _l("E-mail"),
    "phone": _l("Phone"),
    "user": _l("User"),
    "user.status": _l("User status"),
    "created_at": _l("Created"),
}


class PersonView(SecureModelView):
    column_list = (
        "client.name",
        Person.kind,
        Person.first_name,
        Person.last_name,
        Person.email,
        Person.phone,
        "user.status",
    )
    column_labels = PERSON_LABELS
    column_formatters = {
        "kind": formatter("kind", PERSON_KIND),
        "user.status": lambda v, c, m, n: USER_STATUS.get(m.user.status, "") if m.user else "",
    }
    column_formatters_detail = {"kind": formatter("kind", PERSON_KIND)}
    column_searchable_list = (Person.first_name, Person.last_name, Person.email, "client.name")
    column_sortable_list = (
        ("client.name", "client.name"),
        Person.kind,
        Person.first_name,
        Person.last_name,
        Person.email,
    )
    column_default_sort = (Person.last_name, False)
    column_filters = (
        FilterEqual(Person.kind, _l("Kind"), options=choices(PERSON_KIND)),
        FilterLike(Client.name, _l("Client")),
        Person.email,
    )
    column_details_exclude_list = ("version", "bureau", "user")
    form_columns = ("client", "kind", "first_name", "last_name", "email", "phone")
    form_selects = {"kind": PERSON_KIND}
    form_args = {"email": {"validators": [Optional(), EmailAddress()]}}
    form_ajax_refs = {
        "client": TenantAjaxLoader("client", Client, fields=["name", "org_number"]),
    }

    def get_query(self):
        return self.tenant_filter(
            db.session.query(Person).join(Person.client).options(contains_eager(Person.client), joinedload(Person.user))
        )

    def get_count_query(self):
        return self.tenant_filter(super(SecureModelView, self).get_count_query())

    def on_model_change(self, form, model: Person, is_created: bool) -> None:
        check_person(db.session, model)

    def on_model_delete(self, model: Person) -> None:
        from services.people import check_person_deletable

        check_person_deletable(db.session, model)


class ExpiresWithinFilter(BaseSQLAFilter):
    """Users whose end date falls within the next N days (default 30)."""

    def apply(self, query, value, alias=None):
        days = int(value)
        today = date.today()
        column = self.get_column(alias)
        return query.filter(column.is_not(None), column >= today, column <= today + timedelta(days=days))

    def clean(self, value):
        return int(value)

    def operation(self):
        return _l("within (days)")


class HoldsPackageFilter(BaseSQLAFilter):
    """Users that hold the chosen package today."""

    def apply(self, query, value, alias=None):
        today = date.today()
        return query.filter(
            exists().where(
                PackageAssignment.user_id == User.id,
                PackageAssignment.package_id == int(value),
                PackageAssignment.valid_from <= today,
                or_(PackageAssignment.valid_to.is_(None), PackageAssignment.valid_to >= today),
            )
        )

    def clean(self, value):
        return int(value)

    def operation(self):
        return _l("holds")


def _package_options():
    return [
        (str(p.id), f"{p.name} ({p.code})")
        for p in db.session.scalars(
            select(Package).where(Package.bureau_id == current_user.bureau_id).order_by(Package.code)
        )
    ]


class UserView(SecureModelView):
    column_list = (
        "person.first_name",
        "person.last_name",
        "person.email",
        "person.client.name",
        User.person_kind,
        User.status,
        User.end_date,
        User.reseller_role,
        User.staff_role,
    )
    column_labels = {
        "person": _l("Person"),
        "person.first_name": _l("First name"),
        "person.last_name": _l("Last name"),
        "person.email": _l("E-mail"),
        "person.client.name": _l("Client"),
        "person_kind": _l("Kind"),
        "status": _l("Status"),
        "end_date": _l("End date"),
        "reseller_role": _l("Bureau role"),
        "employee": _l("Employee"),
        "bank_access": _l("Bank access"),
        "user_admin": _l("User administration"),
        "staff_role": _l("Staff role"),
        "permissions": _l("Single permissions"),
        "assignments": _l("Package assignments"),
        "last_login_at": _l("Last login"),
        "created_at": _l("Created"),
        "new_password": _l("New password"),
    }
    column_formatters = {
        "person_kind": formatter("person_kind", PERSON_KIND),
        "status": formatter("status", USER_STATUS),
        "reseller_role": formatter("reseller_role", RESELLER_ROLE),
        "staff_role": formatter("staff_role", STAFF_ROLE),
    }
    column_formatters_detail = column_formatters
    column_searchable_list = ("person.first_name", "person.last_name", "person.email")
    column_sortable_list = (
        ("person.first_name", "person.first_name"),
        ("person.last_name", "person.last_name"),
        ("person.email", "person.email"),
        User.person_kind,
        User.status,
        User.end_date,
    )
    column_default_sort = (User.id, True)
    column_filters = (
        FilterEqual(User.status, _l("Status"), options=choices(USER_STATUS)),
        FilterEqual(User.person_kind, _l("Kind"), options=choices(PERSON_KIND)),
        HoldsPackageFilter(User.id, _l("Package"), options=per_request(_package_options)),
        ExpiresWithinFilter(
            User.end_date, _l("Expires"), options=[("30", _l("within 30 days")), ("7", _l("within 7 days"))]
        ),
        DateBetweenFilter(User.end_date, _l("End date")),
        DateSmallerFilter(User.end_date, _l("End date")),
        FilterEqual(User.reseller_role, _l("Bureau role"), options=choices(RESELLER_ROLE)),
    )
    column_details_exclude_list = ("version", "bureau", "password_hash", "assignments")
    form_columns = (
        "person",
        "status",
        "end_date",
        "reseller_role",
        "employee",
        "bank_access",
        "user_admin",
        "permissions",
        "staff_role",
    )
    form_selects = {"status": USER_STATUS, "reseller_role": RESELLER_ROLE, "staff_role": STAFF_ROLE}
    form_extra_fields = {
        "new_password": PasswordField(_l("New password"), validators=[Optional(), Length(min=10, max=200)])
    }
    form_ajax_refs = {
        "person": TenantAjaxLoader(
            "person",
            Person,
            fields=["first_name", "last_name", "email"],
            criteria=[Person.kind != PersonKind.PERSON],
        ),
        "employee": UserAjaxLoader(
            "employee",
            User,
            fields=["id"],
            criteria=[User.staff_role.is_not(None)],
        ),
        "permissions": TenantAjaxLoader("permissions", Permission, fields=["code", "name"]),
    }

    def get_query(self):
        return self.tenant_filter(
            db.session.query(User)
            .join(User.person)
            .join(Person.client)
            .options(contains_eager(User.person).contains_eager(Person.client))
        )

    def get_count_query(self):
        return self.tenant_filter(super(SecureModelView, self).get_count_query())

    populate_skip = SecureModelView.populate_skip | {"new_password"}

    def populate(self, form, model) -> None:
        super().populate(form, model)
        password = form.new_password.data if "new_password" in form else None
        if password:
            if not current_user.is_bureau_admin:
                raise DomainError(_("Only a bureau administrator can set passwords."))
            model.set_password(password)

    def on_model_change(self, form, model: User, is_created: bool) -> None:
        if (
            model.staff_role is not None
            and not current_user.is_bureau_admin
            and (is_created or form.staff_role.object_data != model.staff_role)
        ):
            raise DomainError(_("Only a bureau administrator can manage staff."))
        check_user(db.session, model, today=date.today())
        if model.id == current_user.id and model.staff_role != StaffRole.ADMIN and current_user.is_bureau_admin:
            raise DomainError(_("You cannot take the administrator role from yourself."))
