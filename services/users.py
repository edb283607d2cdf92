"""Changing a user or a person's identity from a form: every changed field asks the policy, from the stored state.

Decisions:

- The generic forms (Brukere, Personer) hand over only the fields they show; each field is compared with the value
  the database holds (a column query), not with the form's own idea of the old value, and the verb the field needs
  is checked with ``services.policy`` before anything is set.
- Changing the e-mail of someone who has logged in (accepted an invitation, has a password or a login time) puts the
  user back to *invited*: the password, the acceptance and any open invitation link are cleared, so the new address
  gets a login only through a new invitation. ``change_email`` is the one place that does this.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Person, PersonKind, User, UserStatus
from services.errors import DomainError
from services.policy import Verb, check

# The Brukere form's fields and the verb each needs.
USER_FIELD_VERBS = {
    "end_date": Verb.USER_SET_END_DATE,
    "reseller_role": Verb.USER_CHANGE_ACCESS,
    "bank_access": Verb.USER_CHANGE_ACCESS,
    "user_admin": Verb.USER_CHANGE_ACCESS,
    "staff_role": Verb.USER_SET_STAFF_ROLE,
}
PERSON_IDENTITY_FIELDS = ("first_name", "last_name", "email")
PERSON_FIELDS = (*PERSON_IDENTITY_FIELDS, "phone")


def _stored_row(session: Session, model: type, key: int, names: tuple[str, ...]) -> Mapping[str, Any]:
    with session.no_autoflush:
        row = session.execute(select(*(getattr(model, n) for n in names)).where(model.id == key)).one()
    return row._mapping


def _normalised(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def update_user(session: Session, user: User, changes: Mapping[str, Any], *, actor: User | None) -> list[str]:
    """Apply the form's ``changes`` to ``user`` field by field as the policy allows; the changed field names.

    A field the form does not offer is refused rather than ignored, so a crafted post cannot slip one in.
    """
    unknown = set(changes) - set(USER_FIELD_VERBS)
    if unknown:
        raise DomainError(_l("This field cannot be changed here: %(fields)s.", fields=", ".join(sorted(unknown))))
    before = _stored_row(session, User, user.id, tuple(changes)) if changes else {}
    changed = []
    for name, value in changes.items():
        value = _normalised(value)
        if value == before[name]:
            continue
        check(session, actor, USER_FIELD_VERBS[name], user)
        setattr(user, name, value)
        changed.append(name)
    from services.people import check_user

    check_user(session, user, today=date.today())
    session.flush()
    return changed


def has_had_login(user: User) -> bool:
    """Whether the user got as far as a login of their own (bureau users are the employee's, not their own)."""
    if user.person_kind is PersonKind.RESELLER_USER:
        return False
    return bool(user.accepted_at or user.last_login_at or user.password_hash)


def change_email(session: Session, person: Person, email: str | None, *, actor: User | None) -> bool:
    """Give the person a new e-mail address; whether it changed. A user who has logged in must accept a new
    invitation at the new address: back to invited, password and acceptance cleared. Only flushes."""
    stored_email = _stored_row(session, Person, person.id, ("email",))["email"] if person.id else None
    email = _normalised(email)
    if (email or "").lower() == (stored_email or "").lower():
        person.email = email if email is not None else stored_email
        return False
    check(session, actor, Verb.USER_EDIT_IDENTITY, person)
    person.email = email
    user = person.user
    if user is not None and has_had_login(user):
        if user.status != UserStatus.BLOCKED:  # a blocked user stays blocked; reactivating then means inviting
            user.status = UserStatus.INVITED
        user.password_hash = None
        user.accepted_at = None
        user.invitation_nonce = None
        user.invitation_sent_at = None
    elif user is not None:
        user.invitation_nonce = None  # an open link was sent to the old address
    return True


def update_person(session: Session, person: Person, changes: Mapping[str, Any], *, actor: User | None) -> list[str]:
    """Apply the Personer form's ``changes`` (names, e-mail, phone) as the policy allows; the changed field names."""
    unknown = set(changes) - set(PERSON_FIELDS)
    if unknown:
        raise DomainError(_l("This field cannot be changed here: %(fields)s.", fields=", ".join(sorted(unknown))))
    before = _stored_row(session, Person, person.id, PERSON_FIELDS)
    changed = []
    for name in ("first_name", "last_name", "phone"):
        if name not in changes:
            continue
        value = _normalised(changes[name])
        if value == before[name]:
            continue
        if name != "phone":
            check(session, actor, Verb.USER_EDIT_IDENTITY, person)
            if value is None:
                raise DomainError(_l("Give the person's first and last name."))
        setattr(person, name, value)
        changed.append(name)
    if "email" in changes and change_email(session, person, changes["email"], actor=actor):
        changed.append("email")
    from services.people import check_person

    check_person(session, person)
    session.flush()
    return changed
