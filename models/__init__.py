"""The data model; importing this package registers every table."""

from datetime import date

from sqlalchemy import event, inspect, select

from extensions import db
from models.alert import STATUS_KINDS, AlertKind, RegistryAlert, RegistryWatchState
from models.audit import AuditEntry
from models.base import utcnow
from models.billing import (
    BillingChange,
    BillingClientTotal,
    BillingMonth,
    BillingSnapshotDetail,
    BillingSnapshotRow,
    BillingTotal,
    PackageHolderCount,
)
from models.billing import attach_to_metadata as attach_billing_rules
from models.bureau import Bureau
from models.client import Client, ConsentStatus, ContactRole
from models.counters import BureauCounter
from models.counters import attach_to_metadata as attach_counters
from models.job import Job, JobKind, JobRow, JobStatus
from models.login_attempt import LoginFailure
from models.outbox import OutboxMessage, OutboxStatus
from models.package import Package, PackageAssignment, PackageKind, PackagePrice, Permission
from models.person import (
    KINDS_WITH_LOGIN,
    KINDS_WITH_PACKAGES,
    InvitationState,
    Person,
    PersonKind,
    ResellerRole,
    StaffRole,
    User,
    UserStatus,
)
from models.rules import attach_to_metadata
from models.saved_view import SavedView, SavedViewDefault
from models.search import attach_to_metadata as attach_search_indexes
from models.submission import SubmissionToken
from models.template import CustomerTemplate

attach_to_metadata(db.metadata)
attach_billing_rules(db.metadata)
attach_search_indexes(db.metadata)
attach_counters(db.metadata)


@event.listens_for(User, "before_insert")
@event.listens_for(User, "before_update")
def _user_copies_person_kind(mapper, connection, user: User) -> None:
    if user.person is not None:
        user.person_kind = user.person.kind
        user.bureau_id = user.person.bureau_id


def _record_price(connection, package: Package) -> None:
    """Record the package's price from today on (one row a day: the day's last change wins)."""
    table, today = PackagePrice.__table__, date.today()
    same_day = connection.execute(
        select(table.c.id).where(table.c.package_id == package.id, table.c.valid_from == today)
    ).first()
    if same_day is not None:
        connection.execute(table.update().where(table.c.id == same_day.id).values(price=package.price))
        return
    connection.execute(
        table.insert().values(
            bureau_id=package.bureau_id, package_id=package.id, valid_from=today, price=package.price, version=1
        )
    )


@event.listens_for(Package, "after_insert")
def _package_price_from_the_start(mapper, connection, package: Package) -> None:
    _record_price(connection, package)


@event.listens_for(Package, "after_update")
def _package_price_history(mapper, connection, package: Package) -> None:
    """Past periods keep the price they had: a new price is recorded from today on."""
    if inspect(package).attrs.price.history.has_changes():
        _record_price(connection, package)


@event.listens_for(PackageAssignment, "before_insert")
@event.listens_for(PackageAssignment, "before_update")
def _assignment_copies_package_kind(mapper, connection, assignment: PackageAssignment) -> None:
    if assignment.package is not None:
        assignment.package_kind = assignment.package.kind


__all__ = [
    "BureauCounter",
    "STATUS_KINDS",
    "AlertKind",
    "RegistryAlert",
    "RegistryWatchState",
    "KINDS_WITH_LOGIN",
    "KINDS_WITH_PACKAGES",
    "AuditEntry",
    "BillingChange",
    "BillingClientTotal",
    "BillingMonth",
    "BillingSnapshotDetail",
    "BillingSnapshotRow",
    "BillingTotal",
    "Bureau",
    "Client",
    "ConsentStatus",
    "ContactRole",
    "CustomerTemplate",
    "InvitationState",
    "Job",
    "JobKind",
    "JobRow",
    "JobStatus",
    "LoginFailure",
    "OutboxMessage",
    "OutboxStatus",
    "Package",
    "PackageAssignment",
    "PackageKind",
    "PackageHolderCount",
    "PackagePrice",
    "Permission",
    "Person",
    "PersonKind",
    "ResellerRole",
    "SavedView",
    "SavedViewDefault",
    "StaffRole",
    "SubmissionToken",
    "User",
    "UserStatus",
    "utcnow",
]
