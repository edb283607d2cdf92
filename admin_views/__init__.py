"""Builds a fresh Flask-Admin for every app."""

from __future__ import annotations

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext as _l

from admin_views.admin_texts import consult_app_catalogue
from admin_views.alerts import AlertView
from admin_views.billing import BillingView
from admin_views.catalogue import (
    CustomerTemplateView,
    PackageAssignmentView,
    PackageView,
    PermissionView,
)
from admin_views.clients import ClientView
from admin_views.history import AuditLogView
from admin_views.home import HomeView
from admin_views.jobs import JobsView
from admin_views.outbox import OutboxView
from admin_views.people import PersonView, UserView
from admin_views.security import csp_nonce
from models import (
    AuditEntry,
    Client,
    CustomerTemplate,
    OutboxMessage,
    Package,
    PackageAssignment,
    Permission,
    Person,
    RegistryAlert,
    User,
)


def init_admin(app: Flask) -> Admin:
    consult_app_catalogue(app)
    admin = Admin(
        app,
        name=_l("Client administration"),
        index_view=HomeView(name=_l("Home"), url="/admin"),
        theme=Bootstrap4Theme(base_template="admin/klient_base.html", fluid=True),
        csp_nonce_generator=csp_nonce,
    )
    admin.add_view(ClientView(Client, name=_l("Clients"), endpoint="clients"))
    admin.add_view(PersonView(Person, name=_l("People"), endpoint="persons"))
    admin.add_view(UserView(User, name=_l("Users"), endpoint="users"))
    admin.add_view(JobsView(name=_l("Jobs"), endpoint="jobs"))
    admin.add_view(PackageView(Package, name=_l("Packages"), endpoint="packages", category=_l("Packages")))
    admin.add_view(
        PackageAssignmentView(
            PackageAssignment, name=_l("Package assignments"), endpoint="assignments", category=_l("Packages")
        )
    )
    admin.add_view(PermissionView(Permission, name=_l("Permissions"), endpoint="permissions", category=_l("Packages")))
    admin.add_view(
        CustomerTemplateView(
            CustomerTemplate, name=_l("Customer templates"), endpoint="templates", category=_l("Settings")
        )
    )
    admin.add_view(BillingView(name=_l("Billing basis"), endpoint="billing", category=_l("Packages")))
    admin.add_view(AuditLogView(AuditEntry, name=_l("Event log"), endpoint="auditlog", category=_l("Settings")))
    admin.add_view(OutboxView(OutboxMessage, name=_l("Outbox"), endpoint="outbox", category=_l("Settings")))
    admin.add_view(AlertView(RegistryAlert, name=_l("Register alerts"), endpoint="alerts", category=_l("Settings")))
    return admin
