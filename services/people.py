"""Rules for people and their users, shared by the admin forms, imports and commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    KINDS_WITH_LOGIN,
    KINDS_WITH_PACKAGES,
    Client,
    Package,
    PackageAssignment,
    PackageKind,
    Person,
    PersonKind,
    ResellerRole,
    User,
    UserStatus,
)
from services.access import NOT_AN_EMPLOYEE, check_employee, is_employee
from services.errors import DomainError
from services.packages import held_on
from services.races import refused_as_domain_error

LOGIN_KINDS_NEEDING_EMAIL = {
    PersonKind.USER,
    PersonKind.EXTERNAL_USER,
    PersonKind.USER_WITHOUT_PACKAGES,
}


def check_person(session: Session, person: Person) -> None:
    """Raise DomainError when the person breaks a rule; normalises the e-mail."""
    if person.client is None:
        raise DomainError(_("Choose the client the person belongs to."))
    if person.client.bureau_id != person.bureau_id:
        raise DomainError(_("The client belongs to another bureau."))
    if person.email:
        try:
            person.email = validate_email(person.email.strip(), check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            raise DomainError(_("%(value)s is not a valid e-mail address.", value=person.email)) from None
    if person.kind in LOGIN_KINDS_NEEDING_EMAIL and not person.email:
        raise DomainError(_("A person with a login needs an e-mail address."))
    if person.email:
        with session.no_autoflush:
            clash = session.scalar(
                select(Person.id).where(
                    Person.client_id == person.client.id,
                    func.lower(Person.email) == person.email,
                    Person.id != (person.id or 0),
                )
            )
        if clash is not None:
            raise DomainError(_("Another person on this client already has this e-mail address."))
    if person.user is not None and person.kind is PersonKind.PERSON:
        raise DomainError(_("This person has a user: remove the user before making them a person without user."))
    if person.user is not None and person.kind is PersonKind.EXTERNAL_USER and person.user.end_date is None:
        raise DomainError(_("An external user needs an end date: set it on the user first."))


def check_person_deletable(session: Session, person: Person) -> None:
    """A person still used as a client's contact person cannot be deleted."""
    with session.no_autoflush:
        client = session.scalar(select(Client).where(Client.contact_person_id == person.id))
    if client is not None:
        raise DomainError(
            _(
                "%(name)s is the contact person of %(client)s: choose another contact person first.",
                name=person.full_name,
                client=client.name,
            )
        )


def is_staff_candidate(user: User) -> bool:
    """Only an employee (``services.access.is_employee``) can have a staff role."""
    return is_employee(user)


def check_user(session: Session, user: User, *, today: date) -> None:
    """Raise DomainError when the user breaks a rule of its person's kind."""
    person = user.person
    if person is None:
        raise DomainError(_("Choose the person the user belongs to."))
    if person.bureau_id != user.bureau_id:
        raise DomainError(_("The person belongs to another bureau."))
    if person.kind is PersonKind.PERSON:
        raise DomainError(_("A person without user cannot have a login: change the person's kind first."))
    with session.no_autoflush:
        other = session.scalar(select(User.id).where(User.person_id == person.id, User.id != (user.id or 0)))
    if other is not None:
        raise DomainError(_("This person already has a user."))
    if person.kind is PersonKind.EXTERNAL_USER:
        if user.end_date is None:
            raise DomainError(_("An external user needs an end date."))
        if user.id is None and user.end_date < today:
            raise DomainError(_("The end date of a new external user cannot be in the past."))
    if person.kind is PersonKind.RESELLER_USER:
        if user.reseller_role is None:
            raise DomainError(_("Choose the bureau user's role: accountant, auditor or integration user."))
        employee = user.employee
        if employee is None:
            raise DomainError(_("Choose the bureau employee this user is for."))
        if not is_employee(employee, user.bureau_id):
            raise DomainError(NOT_AN_EMPLOYEE)
    else:
        if user.reseller_role is not None or user.employee is not None:
            raise DomainError(_("Only bureau users have a bureau role and an employee."))
        if user.bank_access or user.user_admin:
            raise DomainError(_("Bank access and user administration are only for bureau users."))
    if user.staff_role is not None and not is_staff_candidate(user):
        raise DomainError(_("Only users of the bureau's internal client can be staff."))


# --- adding people and changing their access -------------------------------------------------


@dataclass
class NewPerson:
    """One person to add to a client from the Personer tab or an import row."""

    kind: PersonKind
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    phone: str | None = None
    main_package_id: int | None = None
    addon_package_ids: list[int] = field(default_factory=list)
    permission_ids: list[int] = field(default_factory=list)
    end_date: date | None = None
    employee_id: int | None = None
    reseller_role: ResellerRole | None = None
    bank_access: bool = False
    user_admin: bool = False


def _packages(session: Session, bureau_id: int, ids: list[int]) -> list[Package]:
    if not ids:
        return []
    found = session.scalars(select(Package).where(Package.id.in_(ids), Package.bureau_id == bureau_id)).all()
    if len(found) != len(set(ids)):
        raise DomainError(_("A chosen package does not belong to this bureau."))
    inactive = [p.code for p in found if not p.active]
    if inactive:
        raise DomainError(_("The package %(code)s is no longer sold.", code=", ".join(inactive)))
    return list(found)


def check_access(session: Session, bureau_id: int, data: NewPerson) -> tuple[Package | None, list[Package], list]:
    """The packages and permissions a person of this kind may get, or a DomainError saying why not."""
    from models import Permission

    main = _packages(session, bureau_id, [data.main_package_id] if data.main_package_id else [])
    addons = _packages(session, bureau_id, data.addon_package_ids)
    if main and main[0].kind is not PackageKind.MAIN:
        raise DomainError(_("%(code)s is not a main package.", code=main[0].code))
    if any(p.kind is not PackageKind.ADDON for p in addons):
        raise DomainError(_("Only add-on packages can be chosen as add-ons."))
    permissions = []
    if data.permission_ids:
        permissions = session.scalars(
            select(Permission).where(Permission.id.in_(data.permission_ids), Permission.bureau_id == bureau_id)
        ).all()
        if len(permissions) != len(set(data.permission_ids)):
            raise DomainError(_("A chosen permission does not belong to this bureau."))
    if data.kind not in KINDS_WITH_PACKAGES and (main or addons or permissions):
        raise DomainError(_("This kind of person cannot hold access packages or permissions."))
    if not main and any(p.requires_main for p in addons):
        names = ", ".join(p.code for p in addons if p.requires_main)
        raise DomainError(_("The add-on %(codes)s requires a main package.", codes=names))
    if (main or addons) and permissions:
        raise DomainError(_("Choose packages or single permissions, not both."))
    return (main[0] if main else None), addons, list(permissions)


def add_person(session: Session, client: Client, data: NewPerson, *, today: date) -> Person:
    """Create the person, their user (for kinds with a login) and their packages, or refuse all of it."""
    if client.is_internal and data.kind is PersonKind.RESELLER_USER:
        raise DomainError(_("Bureau users are added to customer clients, not to the internal client."))
    employee = None
    if data.kind is PersonKind.RESELLER_USER:
        employee = session.get(User, data.employee_id) if data.employee_id else None
        if not is_employee(employee, client.bureau_id):
            raise DomainError(NOT_AN_EMPLOYEE)
        check_employee(employee, client.bureau_id, today)
        data.first_name, data.last_name = employee.person.first_name, employee.person.last_name
        data.email = employee.person.email
    if data.kind is PersonKind.EXTERNAL_USER:
        if data.end_date is None:
            raise DomainError(_("An external user needs an end date."))
        if data.end_date < today:
            raise DomainError(_("The end date of a new external user cannot be in the past."))
    elif data.end_date is not None and data.kind is not PersonKind.RESELLER_USER:
        raise DomainError(_("Only external users have an end date."))
    if not (data.first_name or "").strip() or not (data.last_name or "").strip():
        raise DomainError(_("Give the person's first and last name."))
    main, addons, permissions = check_access(session, client.bureau_id, data)

    # In a savepoint (begun before the person joins the client's collection): a refusal leaves nothing of the person
    # behind, and a unique violation (another request added the same e-mail after the check) becomes the check's
    # own message.
    with refused_as_domain_error(), session.begin_nested():
        person = Person(
            bureau_id=client.bureau_id,
            client=client,
            kind=data.kind,
            first_name=data.first_name.strip(),
            last_name=data.last_name.strip(),
            email=(data.email or "").strip() or None,
            phone=(data.phone or "").strip() or None,
        )
        check_person(session, person)
        session.add(person)
        if data.kind in KINDS_WITH_LOGIN:
            user = User(
                bureau_id=client.bureau_id,
                person=person,
                status=UserStatus.ACTIVE if data.kind is PersonKind.RESELLER_USER else UserStatus.INVITED,
                end_date=data.end_date,
                reseller_role=data.reseller_role,
                employee=employee,
                bank_access=data.bank_access,
                user_admin=data.user_admin,
                permissions=permissions,
            )
            session.add(user)
            check_user(session, user, today=today)
            for package in [main, *addons] if main else addons:
                session.add(PackageAssignment(bureau_id=client.bureau_id, user=user, package=package, valid_from=today))
        session.flush()
    return person


def current_assignments(user: User, today: date) -> list[PackageAssignment]:
    """The user's assignments held today (``services.packages.held_on``)."""
    return held_on(user.assignments, today)


def change_access(
    session: Session,
    user: User,
    *,
    main_package_id: int | None,
    addon_package_ids: list[int],
    permission_ids: list[int],
    today: date,
) -> None:
    """Give the user exactly these packages from today (ending the others yesterday) and these permissions."""
    data = NewPerson(
        kind=user.person.kind,
        main_package_id=main_package_id,
        addon_package_ids=addon_package_ids,
        permission_ids=permission_ids,
    )
    main, addons, permissions = check_access(session, user.bureau_id, data)
    wanted = {p.id: p for p in ([main] if main else []) + addons}
    yesterday = today - timedelta(days=1)
    for assignment in current_assignments(user, today):
        if assignment.package_id in wanted:
            del wanted[assignment.package_id]
        elif assignment.valid_from >= today:
            session.delete(assignment)  # started today: never held, so no trace to keep
        else:
            assignment.valid_to = yesterday
    session.flush()  # end the old main package before the new one starts
    for package in wanted.values():
        session.add(PackageAssignment(bureau_id=user.bureau_id, user=user, package=package, valid_from=today))
    user.permissions = permissions
    session.flush()


def remove_access(session: Session, user: User, *, today: date) -> None:
    """Take every package and single permission away from today; the user and its history stay."""
    change_access(session, user, main_package_id=None, addon_package_ids=[], permission_ids=[], today=today)


def delete_person(session: Session, person: Person) -> None:
    """Delete a person (and their user) unless something still refers to them."""
    check_person_deletable(session, person)
    if person.user is not None:
        if person.user.staff_role is not None:
            raise DomainError(_("Staff cannot be deleted here: take away their staff role first."))
        referenced = session.scalar(select(User.id).where(User.employee_id == person.user.id).limit(1))
        if referenced is not None:
            raise DomainError(
                _("%(name)s is linked to clients as a bureau user: remove those first.", name=person.full_name)
            )
    session.delete(person)
    session.flush()
