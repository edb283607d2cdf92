"""The data model; importing this package registers every table."""

from sqlalchemy import event

from extensions import db
from models.audit import AuditEntry
from models.base import utcnow
from models.bureau import Bureau
from models.client import Client, ConsentStatus, ContactRole
from models.outbox import OutboxMessage, OutboxStatus
from models.package import Package, PackageAssignment, PackageKind, Permission
from models.person import (
    KINDS_WITH_LOGIN,
    KINDS_WITH_PACKAGES,
    Person,
    PersonKind,
    ResellerRole,
    StaffRole,
    User,
    UserStatus,
)
from models.rules import attach_to_metadata
from models.template import CustomerTemplate

attach_to_metadata(db.metadata)


@event.listens_for(User, "before_insert")
@event.listens_for(User, "before_update")
def _user_copies_person_kind(mapper, connection, user: User) -> None:
    if user.person is not None:
        user.person_kind = user.person.kind
        user.bureau_id = user.person.bureau_id


@event.listens_for(PackageAssignment, "before_insert")
@event.listens_for(PackageAssignment, "before_update")
def _assignment_copies_package_kind(mapper, connection, assignment: PackageAssignment) -> None:
    if assignment.package is not None:
        assignment.package_kind = assignment.package.kind


__all__ = [
    "KINDS_WITH_LOGIN",
    "KINDS_WITH_PACKAGES",
    "AuditEntry",
    "Bureau",
    "Client",
    "ConsentStatus",
    "ContactRole",
    "CustomerTemplate",
    "OutboxMessage",
    "OutboxStatus",
    "Package",
    "PackageAssignment",
    "PackageKind",
    "Permission",
    "Person",
    "PersonKind",
    "ResellerRole",
    "StaffRole",
    "User",
    "UserStatus",
    "utcnow",
]
