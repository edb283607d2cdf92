"""Rules for people and their users, shared by the admin forms, imports and commands."""

from __future__ import annotations

from datetime import date

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Client, Person, PersonKind, User
from services.errors import DomainError

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
    return user.person is not None and user.person.client is not None and user.person.client.is_internal


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
        if employee.bureau_id != user.bureau_id or not is_staff_candidate(employee):
            raise DomainError(
                _(
                    "Only employees of the bureau can be bureau users. An employee missing from the "
                    "list has no user in the internal client yet: add them there first."
                )
            )
    else:
        if user.reseller_role is not None or user.employee is not None:
            raise DomainError(_("Only bureau users have a bureau role and an employee."))
        if user.bank_access or user.user_admin:
            raise DomainError(_("Bank access and user administration are only for bureau users."))
    if user.staff_role is not None and not is_staff_candidate(user):
        raise DomainError(_("Only users of the bureau's internal client can be staff."))
