"""Package catalogue, permissions, customer templates and package assignments."""

from __future__ import annotations

from datetime import date

from flask import g
from flask_admin.contrib.sqla.filters import BooleanEqualFilter, FilterEqual
from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import contains_eager
from wtforms.validators import NumberRange, Optional

from admin_views.base import JoinedLikeFilter, SecureModelView, TenantAjaxLoader, UserAjaxLoader
from admin_views.labels import COUNTRY, LANGUAGE, PACKAGE_KIND, choices, formatter
from extensions import db
from models import KINDS_WITH_PACKAGES, Package, PackageAssignment, Permission, User
from services import policy
from services.billing_totals import holder_counts
from services.formats import format_money
from services.packages import check_assignment, check_package, check_package_deletable


class AdminEditsView(SecureModelView):
    """Every staff member may look; only bureau administrators may change."""

    @property
    def can_create(self) -> bool:
        return current_user.is_authenticated and policy.can(db.session, current_user, policy.Verb.CATALOGUE_EDIT)

    can_edit = can_create
    can_delete = can_create


class PackageView(AdminEditsView):
    column_list = (
        Package.code,
        Package.name,
        Package.kind,
        Package.rank,
        Package.price,
        Package.requires_main,
        Package.active,
        "clients",
        "users",
    )
    column_labels = {
        "code": _l("Code"),
        "name": _l("Name"),
        "kind": _l("Kind"),
        "rank": _l("Rank"),
        "price": _l("Monthly price per user"),
        "requires_main": _l("Requires a main package"),
        "active": _l("Active"),
        "permissions": _l("Included permissions"),
        "clients": _l("Clients now"),
        "users": _l("Users now"),
    }
    column_formatters = {
        "kind": formatter("kind", PACKAGE_KIND),
        "price": lambda v, c, m, n: format_money(m.price),
        "clients": lambda v, c, m, n: g.get("package_holders", {}).get(m.id, (0, 0))[0],
        "users": lambda v, c, m, n: g.get("package_holders", {}).get(m.id, (0, 0))[1],
    }
    column_formatters_detail = {"kind": formatter("kind", PACKAGE_KIND), "price": column_formatters["price"]}
    column_searchable_list = (Package.code, Package.name)
    column_sortable_list = (Package.code, Package.name, Package.kind, Package.rank, Package.price, Package.active)
    column_default_sort = [(Package.kind, False), (Package.rank, False), (Package.code, False)]
    column_filters = (
        FilterEqual(Package.kind, _l("Kind"), options=choices(PACKAGE_KIND)),
        BooleanEqualFilter(Package.active, _l("Active")),
    )
    form_columns = ("code", "name", "kind", "rank", "price", "requires_main", "active", "permissions")
    form_selects = {"kind": PACKAGE_KIND}
    form_args = {
        "rank": {"validators": [Optional(), NumberRange(min=1, max=1000)]},
        "price": {"validators": [NumberRange(min=0, max=99999999)]},
    }
    form_ajax_refs = {"permissions": TenantAjaxLoader("permissions", Permission, fields=["code", "name"])}

    def on_model_change(self, form, model: Package, is_created: bool) -> None:
        check_package(db.session, model)

    def on_model_delete(self, model: Package) -> None:
        check_package_deletable(db.session, model)

    list_template = "admin/package_list.html"

    def get_list(self, *args, **kwargs):
        """The page's packages, with how many clients and users hold each today (counts kept by the worker)."""
        count, packages = super().get_list(*args, **kwargs)
        kept = holder_counts(db.session, current_user.bureau_id, [p.id for p in packages], date.today())
        g.package_holders = kept.counts
        g.package_holders_note = {
            "at": format_datetime(kept.computed_at, "HH:mm") if kept.computed_at else "",
            "stale": kept.stale,
        }
        return count, packages


class PermissionView(SecureModelView):
    admin_only = True
    column_list = (Permission.code, Permission.name)
    column_labels = {"code": _l("Code"), "name": _l("Name")}
    column_searchable_list = (Permission.code, Permission.name)
    column_sortable_list = (Permission.code, Permission.name)
    column_default_sort = (Permission.code, False)
    form_columns = ("code", "name")


class CustomerTemplateView(SecureModelView):
    admin_only = True
    column_list = ("name", "country_code", "language", "currency")
    column_labels = {
        "name": _l("Name"),
        "country_code": _l("Country code"),
        "language": _l("Language"),
        "currency": _l("Currency"),
        "packages": _l("Packages a new client starts with"),
    }
    column_formatters = {
        "language": formatter("language", LANGUAGE),
        "country_code": formatter("country_code", COUNTRY),
    }
    column_searchable_list = ("name",)
    column_sortable_list = ("name", "country_code", "language", "currency")
    column_default_sort = ("name", False)
    form_columns = ("name", "country_code", "language", "currency", "packages")
    form_selects = {
        "language": LANGUAGE,
        "currency": {"NOK": "NOK", "SEK": "SEK", "DKK": "DKK", "EUR": "EUR"},
        "country_code": COUNTRY,
    }
    form_ajax_refs = {"packages": TenantAjaxLoader("packages", Package, fields=["code", "name"])}


class PackageAssignmentView(SecureModelView):
    admin_only = True
    column_list = (
        "user.person.first_name",
        "user.person.last_name",
        "package.code",
        "package_kind",
        "valid_from",
        "valid_to",
    )
    column_labels = {
        "user": _l("User"),
        "user.person.first_name": _l("First name"),
        "user.person.last_name": _l("Last name"),
        "package": _l("Package"),
        "package.code": _l("Package"),
        "package_kind": _l("Kind"),
        "valid_from": _l("From"),
        "valid_to": _l("To (inclusive)"),
        "created_at": _l("Created"),
    }
    column_formatters = {"package_kind": formatter("package_kind", PACKAGE_KIND)}
    # Not by package: the order of a joined table's column cannot come from an index of the assignments (1–4 s at
    # 1M clients); the Tilgangspakke filter picks a package's assignments instead.
    column_sortable_list = ("valid_from", "valid_to")
    column_default_sort = ("valid_from", True)
    query_joins = (PackageAssignment.package, PackageAssignment.user)
    column_filters = (
        JoinedLikeFilter(PackageAssignment.package_id, Package.code, _l("Package")),
        FilterEqual(PackageAssignment.package_kind, _l("Kind"), options=choices(PACKAGE_KIND)),
        PackageAssignment.valid_from,
        PackageAssignment.valid_to,
    )
    form_columns = ("user", "package", "valid_from", "valid_to")
    form_ajax_refs = {
        "user": UserAjaxLoader("user", User, fields=["id"], criteria=[User.person_kind.in_(KINDS_WITH_PACKAGES)]),
        "package": TenantAjaxLoader("package", Package, fields=["code", "name"]),
    }

    def get_query(self):
        return self.tenant_filter(
            db.session.query(PackageAssignment)
            .join(PackageAssignment.package)
            .join(PackageAssignment.user)
            .join(User.person)
            .options(
                contains_eager(PackageAssignment.package),
                contains_eager(PackageAssignment.user).contains_eager(User.person),
            )
        )

    def get_count_query(self):
        return self.tenant_filter(super(SecureModelView, self).get_count_query())

    def on_model_change(self, form, model: PackageAssignment, is_created: bool) -> None:
        if model.valid_from is None:
            model.valid_from = date.today()
        check_assignment(db.session, model)
