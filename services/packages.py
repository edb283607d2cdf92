"""Rules for the package catalogue and package assignments."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import KINDS_WITH_PACKAGES, Package, PackageAssignment, PackageKind
from services.errors import DomainError

FAR_FUTURE = date(9999, 12, 31)


def check_package(session: Session, package: Package) -> None:
    if package.code:
        package.code = package.code.strip().upper()
    if package.kind is PackageKind.MAIN and package.rank is None:
        raise DomainError(_("A main package needs a rank in the hierarchy."))
    if package.kind is PackageKind.ADDON:
        package.rank = None
    if package.price is not None and package.price < 0:
        raise DomainError(_("The price cannot be negative."))


def check_assignment(session: Session, assignment: PackageAssignment) -> None:
    """A package only for users with packages, from the same bureau, one main package at a time."""
    user, package = assignment.user, assignment.package
    if user is None or package is None:
        raise DomainError(_("Choose a user and a package."))
    if package.bureau_id != assignment.bureau_id or user.bureau_id != assignment.bureau_id:
        raise DomainError(_("The package or the user belongs to another bureau."))
    if user.person_kind not in KINDS_WITH_PACKAGES:
        raise DomainError(_("Only users with access packages (internal or external) can hold packages."))
    if assignment.valid_to is not None and assignment.valid_to < assignment.valid_from:
        raise DomainError(_("The end date cannot be before the start date."))
    if package.kind is PackageKind.MAIN:
        with session.no_autoflush:
            overlap = session.scalar(
                select(PackageAssignment.id).where(
                    PackageAssignment.user_id == user.id,
                    PackageAssignment.package_kind == PackageKind.MAIN,
                    PackageAssignment.id != (assignment.id or 0),
                    PackageAssignment.valid_from <= (assignment.valid_to or FAR_FUTURE),
                    or_(
                        PackageAssignment.valid_to.is_(None),
                        PackageAssignment.valid_to >= assignment.valid_from,
                    ),
                )
            )
        if overlap is not None:
            raise DomainError(_("A user can hold at most one main package at a time."))
