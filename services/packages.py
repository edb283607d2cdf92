"""Rules for the package catalogue and package assignments."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from flask_babel import lazy_gettext as _
from sqlalchemy import ColumnElement, and_, distinct, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import KINDS_WITH_PACKAGES, Package, PackageAssignment, PackageKind, Person, User, UserStatus
from services.errors import DomainError, integrity_message

FAR_FUTURE = date(9999, 12, 31)


def held_between_clause(first: date, last: date | None = None) -> ColumnElement[bool]:
    """SQL, the one definition of "holds the package on a day between ``first`` and ``last``" (one day when
    ``last`` is omitted): the assignment starts on or before ``last`` and has not ended before ``first``."""
    last = first if last is None else last
    return and_(
        PackageAssignment.valid_from <= last,
        or_(PackageAssignment.valid_to.is_(None), PackageAssignment.valid_to >= first),
    )


# "Holds package P today" (the user grid's filter) starts from the package's holders when fewer than this many hold it,
# and otherwise checks the grid's users in their order, one index probe each: a common package fills a page after a few
# hundred probes, a rare one would have the grid walk every user in the bureau to find its holders.
FEW_HOLDERS = 20_000


def holds_package_clause(session: Session, package_id: int, day: date) -> ColumnElement[bool]:
    """SQL: ``User`` holds the package on ``day``, written so that the planner starts from the selective side: the
    package's holders (a semi-join) when they are few, else each user in the grid's order (an indexed EXISTS). Deciding
    reads at most ``FEW_HOLDERS`` entries of ``ix_package_assignments_package_to``. The caller limits the users to
    the bureau."""
    held = and_(PackageAssignment.package_id == package_id, held_between_clause(day))
    holders = select(PackageAssignment.user_id).where(held)
    counted = session.scalar(select(func.count()).select_from(holders.limit(FEW_HOLDERS).subquery()))
    if counted < FEW_HOLDERS:
        return User.id.in_(holders)
    return exists().where(PackageAssignment.user_id == User.id, held)


def is_held_between(assignment: PackageAssignment, first: date, last: date | None = None) -> bool:
    """Python, the same rule as ``held_between_clause`` for an assignment already loaded."""
    last = first if last is None else last
    return assignment.valid_from <= last and (assignment.valid_to is None or assignment.valid_to >= first)


def held_on(assignments: Iterable[PackageAssignment], day: date) -> list[PackageAssignment]:
    """The assignments of a user that are held on ``day``."""
    return [assignment for assignment in assignments if is_held_between(assignment, day)]


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
                    held_between_clause(assignment.valid_from, assignment.valid_to or FAR_FUTURE),
                )
            )
        if overlap is not None:
            raise DomainError(_("A user can hold at most one main package at a time."))


@dataclass(frozen=True)
class GrantOutcome:
    """One user's result of a bulk package grant: granted, or refused with the reason."""

    user: User
    granted: bool
    message: str = ""


def _holds_package_on(session: Session, user: User, package: Package, valid_from: date) -> bool:
    with session.no_autoflush:
        return (
            session.scalar(
                select(PackageAssignment.id).where(
                    PackageAssignment.user_id == user.id,
                    PackageAssignment.package_id == package.id,
                    held_between_clause(valid_from, FAR_FUTURE),
                )
            )
            is not None
        )


def _grant_one(
    session: Session, bureau_id: int, user: User, package: Package, valid_from: date, actor: User | None
) -> GrantOutcome:
    from services.policy import Verb, refusal

    if user.bureau_id != bureau_id:
        return GrantOutcome(user, False, str(_("The package or the user belongs to another bureau.")))
    if user.person_kind not in KINDS_WITH_PACKAGES:
        return GrantOutcome(
            user, False, str(_("Only users with access packages (internal or external) can hold packages."))
        )
    reason = refusal(session, actor, Verb.USER_CHANGE_ACCESS, user)
    if reason is not None:
        return GrantOutcome(user, False, reason)
    if user.end_date is not None and user.end_date < valid_from:
        return GrantOutcome(user, False, str(_("The user's end date is before the start date.")))
    if _holds_package_on(session, user, package, valid_from):
        return GrantOutcome(user, False, str(_("The user already holds this package on that date.")))
    # The user is set without its backref, so a refused assignment never sits in ``user.assignments``.
    assignment = PackageAssignment(bureau_id=bureau_id, user_id=user.id, package=package, valid_from=valid_from)
    set_committed_value(assignment, "user", user)
    try:
        check_assignment(session, assignment)
        with session.begin_nested():
            session.add(assignment)
            session.flush()
    except (DomainError, IntegrityError) as exc:
        if assignment in session:
            session.expunge(assignment)
        reason = str(exc) if isinstance(exc, DomainError) else integrity_message(exc)
        return GrantOutcome(user, False, reason or str(_("The database refused the change; nothing was saved.")))
    session.expire(user, ["assignments"])
    return GrantOutcome(user, True)


def grant_package(
    session: Session,
    bureau_id: int,
    users: Iterable[User],
    package: Package | None,
    valid_from: date | None,
    *,
    actor: User | None = None,
) -> list[GrantOutcome]:
    """Give ``package`` from ``valid_from`` to each user that may hold it; one outcome per user. Only flushes.

    A package of another bureau, an inactive one or a missing date refuses the whole request (nothing saved);
    otherwise each user is granted or refused on its own (kind without packages, overlapping main package, ...).
    """
    if package is None:
        raise DomainError(_("Choose a package."))
    if package.bureau_id != bureau_id:
        raise DomainError(_("The package belongs to another bureau."))
    if not package.active:
        raise DomainError(_("The package %(package)s is no longer active.", package=str(package)))
    if valid_from is None:
        raise DomainError(_("Choose the start date."))
    return [_grant_one(session, bureau_id, user, package, valid_from, actor) for user in users]


def _held_today(today: date):
    return (
        held_between_clause(today),
        User.status != UserStatus.BLOCKED,
        or_(User.end_date.is_(None), User.end_date >= today),
    )


def client_holders_today(session: Session, client_id: int, today: date | None = None) -> list[tuple[Package, int]]:
    """The packages held on a client today, each with how many (not blocked) users hold it."""

    return list(
        session.execute(
            select(Package, func.count(distinct(User.id)))
            .join(PackageAssignment, PackageAssignment.package_id == Package.id)
            .join(User, User.id == PackageAssignment.user_id)
            .join(Person, Person.id == User.person_id)
            .where(Person.client_id == client_id, *_held_today(today or date.today()))
            .group_by(Package.id)
            .order_by(Package.kind.desc(), Package.rank, Package.code)
        ).all()
    )


def holders_today_query(package_ids: list[int], today: date):
    """SQL: per package, how many clients and users hold it today (users not blocked)."""
    return (
        select(
            PackageAssignment.package_id,
            func.count(distinct(Person.client_id)),
            func.count(distinct(User.id)),
        )
        .join(User, User.id == PackageAssignment.user_id)
        .join(Person, Person.id == User.person_id)
        .where(PackageAssignment.package_id.in_(package_ids), *_held_today(today))
        .group_by(PackageAssignment.package_id)
    )


def holders_today(session: Session, package_ids: list[int], today: date | None = None) -> dict[int, tuple[int, int]]:
    """For each package: how many clients and users hold it today, counted now (the grid reads kept counts)."""

    if not package_ids:
        return {}
    rows = session.execute(holders_today_query(package_ids, today or date.today()))
    return {package_id: (clients, users) for package_id, clients, users in rows}


def check_package_deletable(session: Session, package: Package) -> None:
    """A package that was ever assigned is part of the billing history: it is made inactive, never deleted."""
    with session.no_autoflush:
        used = session.scalar(select(PackageAssignment.id).where(PackageAssignment.package_id == package.id).limit(1))
    if used is not None:
        raise DomainError(
            _(
                "The package %(name)s has been assigned to users: make it inactive instead of deleting it.",
                name=package.name,
            )
        )
