"""Bureau users (brukere knyttet til forhandler): one employee given access to many clients at once.

Also the one home of "who counts as an employee": a user of the bureau's internal client (``is_employee``,
``employee_clause``). Only an employee can be staff or be made a bureau user; to be *given access* now the employee
must also be active and not past the end date (``employee_candidates``, ``check_employee``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Client, Person, PersonKind, ResellerRole, User, UserStatus
from services.errors import DomainError, integrity_message


@dataclass
class AccessGrantReport:
    """What a bulk access grant did, per client."""

    created: list[Client] = field(default_factory=list)
    already: list[Client] = field(default_factory=list)  # the employee already has a bureau user there
    refused: list[tuple[Client, str]] = field(default_factory=list)


NOT_AN_EMPLOYEE = _l(
    "Only employees of the bureau can be bureau users. An employee missing from the "
    "list has no user in the internal client yet: add them there first."
)


def employee_clause(bureau_id: int) -> ColumnElement[bool]:
    """SQL: the user is an employee of the bureau (a user of its internal client)."""
    return and_(
        User.bureau_id == bureau_id,
        exists().where(Person.id == User.person_id, Client.id == Person.client_id, Client.is_internal.is_(True)),
    )


def is_employee(user: User | None, bureau_id: int | None = None) -> bool:
    """Python: the user is an employee (of ``bureau_id`` when given): a user of the bureau's internal client."""
    if user is None or user.person is None or user.person.client is None:
        return False
    return user.person.client.is_internal and (bureau_id is None or user.bureau_id == bureau_id)


def employee_candidates(session: Session, bureau_id: int, today: date) -> list[User]:
    """The bureau's employees that can be given access: active users of its internal client, not past the end."""
    users = session.scalars(
        select(User)
        .join(User.person)
        .where(
            employee_clause(bureau_id),
            User.status == UserStatus.ACTIVE,
            or_(User.end_date.is_(None), User.end_date >= today),
        )
        .order_by(Person.last_name, Person.first_name, User.id)
    )
    return list(users)


def check_employee(employee: User | None, bureau_id: int, today: date) -> User:
    """Raise DomainError unless ``employee`` is an active employee (a user of the internal client) of the bureau."""
    if employee is None:
        raise DomainError(_l("Choose the bureau employee to give access."))
    if not is_employee(employee, bureau_id):
        raise DomainError(NOT_AN_EMPLOYEE)
    if not employee.is_effectively_active(today):
        raise DomainError(_l("%(name)s is not an active employee.", name=employee.person.full_name))
    return employee


def _has_bureau_user(session: Session, employee: User, client: Client) -> bool:
    with session.no_autoflush:
        found = session.scalar(
            select(User.id)
            .join(User.person)
            .where(User.employee_id == employee.id, Person.client_id == client.id)
            .limit(1)
        )
    return found is not None


def _email_taken(session: Session, client: Client, email: str | None) -> bool:
    if not email:
        return False
    with session.no_autoflush:
        found = session.scalar(
            select(Person.id).where(Person.client_id == client.id, func.lower(Person.email) == email.lower()).limit(1)
        )
    return found is not None


def grant_employee_access(
    session: Session,
    bureau_id: int,
    employee: User | None,
    clients: Iterable[Client],
    role: ResellerRole,
    *,
    today: date | None = None,
    actor: User | None = None,
) -> AccessGrantReport:
    """Make ``employee`` a bureau user (accountant, auditor, integration user) on each client. Only flushes.

    Per client: a Person of kind reseller_user with the employee's name and e-mail and an active User with the
    role. Clients where the employee already has a bureau user are skipped; the internal client, another bureau's
    client, and a client where someone else already has the employee's e-mail are refused with the reason.
    """
    today = today or date.today()
    employee = check_employee(employee, bureau_id, today)
    if not isinstance(role, ResellerRole):
        raise DomainError(_l("Choose the bureau user's role: accountant, auditor or integration user."))
    source = employee.person
    report = AccessGrantReport()
    from services.policy import Verb, refusal

    for client in clients:
        reason = refusal(session, actor, Verb.CLIENT_ADD_PEOPLE, client)
        if reason is not None:
            report.refused.append((client, reason))
        elif client.bureau_id != bureau_id:
            report.refused.append((client, str(_l("The client belongs to another bureau."))))
        elif client.is_internal:
            report.refused.append(
                (client, str(_l("The internal client holds the employees themselves; no bureau user is needed.")))
            )
        elif _has_bureau_user(session, employee, client):
            report.already.append(client)
        elif _email_taken(session, client, source.email):
            report.refused.append((client, str(_l("Another person on this client already has this e-mail address."))))
        else:
            _add_bureau_user(session, report, client, employee, role)
    session.flush()
    return report


def _add_bureau_user(
    session: Session, report: AccessGrantReport, client: Client, employee: User, role: ResellerRole
) -> None:
    """One client's bureau user, in a savepoint: when another request gave the same access (or the e-mail to someone
    else) after the checks above, the database refuses, and the client is reported as those checks would have."""
    source = employee.person
    try:
        with session.begin_nested():
            person = Person(
                bureau_id=client.bureau_id,
                client=client,
                kind=PersonKind.RESELLER_USER,
                first_name=source.first_name,
                last_name=source.last_name,
                email=source.email,
                phone=source.phone,
            )
            session.add(person)
            session.add(
                User(
                    bureau_id=client.bureau_id,
                    person=person,
                    status=UserStatus.ACTIVE,
                    reseller_role=role,
                    employee=employee,
                )
            )
            session.flush()
    except IntegrityError as exc:
        if _has_bureau_user(session, employee, client):
            report.already.append(client)
            return
        message = integrity_message(exc)
        if message is None:
            raise
        report.refused.append((client, message))
        return
    report.created.append(client)
