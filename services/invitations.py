"""Invitations (invitasjoner): a signed, single-use, expiring link by e-mail lets a user set a name and password.

Decisions:

- Only a user with status *invited* can be invited (again). An active user has a login already and a blocked one
  must be reactivated first, so both are refused, as is a user past the end date: their link could never be used.
  The status therefore stays *invited* until the link is accepted, which makes the user *active*.
- Every invitation gets a new nonce, so a re-sent invitation makes every older link stop working; accepting,
  deactivating and blocking clear the nonce, so the link works once.
- The e-mail is queued in the caller's transaction (the outbox), so it exists exactly when the invitation does.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from email_validator import EmailNotValidError, validate_email
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OutboxMessage, Person, PersonKind, User, UserStatus, utcnow
from services.errors import DomainError
from services.links import LinkKind, client_locale, link_lifetime
from services.outbox import enqueue_email, public_url
from services.passwords import check_password, password_inputs
from services.policy import PolicyError, Verb, accepting_invitation, check

SALT = "user-invitation"
MAX_NAME_LENGTH = 100


class InvitationLinkState(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"  # tampered, or not a link of ours
    EXPIRED = "expired"  # older than INVITATION_DAYS
    USED = "used"  # accepted already, replaced by a newer invitation, or withdrawn
    USER_EXPIRED = "user_expired"  # the user's end date has passed


@dataclass(frozen=True)
class ResolvedInvitation:
    state: InvitationLinkState
    user: User | None = None


@dataclass
class InvitationReport:
    """What a bulk invitation did: who was invited, and who was refused and why."""

    invited: list[User] = field(default_factory=list)
    refused: list[tuple[User | Person, str]] = field(default_factory=list)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _name(user: User) -> str:
    return user.person.full_name if user.person else f"#{user.id}"


def check_invitable(user: User, today: date) -> None:
    """Raise DomainError with the reason when ``user`` cannot be sent an invitation."""
    person = user.person
    if person is None or person.kind is PersonKind.PERSON:
        raise DomainError(_l("%(name)s is a person without user and cannot be invited.", name=_name(user)))
    if not person.email:
        raise DomainError(_l("%(name)s has no e-mail address to send the invitation to.", name=_name(user)))
    try:
        validate_email(person.email, check_deliverability=False)
    except EmailNotValidError:
        raise DomainError(_l("%(value)s is not a valid e-mail address.", value=person.email)) from None
    if user.status == UserStatus.BLOCKED:
        raise DomainError(_l("%(name)s is deactivated: reactivate the user before inviting.", name=_name(user)))
    if user.is_past_end_date(today):
        raise DomainError(
            _l("The end date of %(name)s has passed: the user can no longer be invited.", name=_name(user))
        )
    if user.status == UserStatus.ACTIVE:
        raise DomainError(_l("%(name)s is already active and needs no invitation.", name=_name(user)))


def check_invitable_target(target: User | Person, today: date) -> None:
    """The one home of "can this be invited": a user, or a person through their user; DomainError says why not."""
    if isinstance(target, Person):
        if target.kind is PersonKind.PERSON:
            raise DomainError(_l("%(name)s is a person without user and cannot be invited.", name=target.full_name))
        if target.user is None:
            raise DomainError(_l("%(name)s has no user yet: create the user first.", name=target.full_name))
        target = target.user
    check_invitable(target, today)


def logs_in_here(user: User) -> bool:
    """Whether the user's login is to this back office (bureau staff) rather than to the accounting suite."""
    person = user.person
    return user.is_staff and person is not None and person.client is not None and person.client.is_internal


def login_url(user: User) -> str | None:
    """Where a user who just accepted the invitation logs in: staff here, everyone else in the suite.

    The suite's login page is ``SUITE_LOGIN_URL``; without it, a client's user is told to log in to the suite and
    gets no link (this back office would refuse them).
    """
    if logs_in_here(user):
        return public_url("auth.login")
    return current_app.config.get("SUITE_LOGIN_URL") or None


def invitation_url(user: User) -> str:
    """The public link in the invitation e-mail, built from PUBLIC_BASE_URL; valid while the nonce is unchanged."""
    if not user.invitation_nonce:
        raise ValueError(f"User {user.id} has no open invitation.")
    token = _serializer().dumps({"u": user.id, "n": user.invitation_nonce})
    return public_url("invitation.accept", token=token)


def invite_user(session: Session, user: User, *, today: date | None = None, actor: User | None = None) -> OutboxMessage:
    """Send (or re-send) the invitation: a new link by e-mail, older links stop working. Only flushes.

    ``actor`` is the staff member sending it (the policy decides), None for the system.
    """
    check(session, actor, Verb.USER_INVITE, user)
    check_invitable(user, today or date.today())
    person = user.person
    client = person.client
    user.invitation_nonce = secrets.token_urlsafe(24)
    user.invitation_sent_at = utcnow()
    user.status = UserStatus.INVITED
    session.flush()
    with force_locale(client_locale(client.language)):
        context = {
            "person": person,
            "client": client,
            "bureau": client.bureau,
            "url": invitation_url(user),
            "days": link_lifetime(LinkKind.INVITATION).days,
        }
        subject = _("Invitation to %(company)s in the accounting suite", company=client.name)
        text = render_template("email/invitation.txt", **context)
    message = enqueue_email(
        session,
        bureau_id=user.bureau_id,
        to=person.email,
        subject=subject,
        text=text,
        kind="invitation",
        client_id=client.id,
        related=f"user:{user.id}",
    )
    user.invitation_message = message
    session.flush()
    return message


def invite_person(
    session: Session, person: Person, *, today: date | None = None, actor: User | None = None
) -> OutboxMessage:
    """Invite the user of a person (the people grid); a person without user is refused with the reason."""
    check_invitable_target(person, today or date.today())
    return invite_user(session, person.user, today=today, actor=actor)


def invite_many(
    session: Session, targets: Iterable[User | Person], *, today: date | None = None, actor: User | None = None
) -> InvitationReport:
    """Invite each user (or person's user) on its own, as the policy allows: one refusal never stops or
    half-saves the others."""
    today = today or date.today()
    report = InvitationReport()
    for target in targets:
        try:
            with session.begin_nested():
                if isinstance(target, Person):
                    invite_person(session, target, today=today, actor=actor)
                else:
                    invite_user(session, target, today=today, actor=actor)
        except DomainError as exc:
            report.refused.append((target, str(exc)))
        else:
            report.invited.append(target.user if isinstance(target, Person) else target)
    return report


def resolve_invitation(session: Session, token: str, *, today: date | None = None) -> ResolvedInvitation:
    """What an invitation link points at, and whether it can still be used."""
    try:
        data = _serializer().loads(token, max_age=int(link_lifetime(LinkKind.INVITATION).total_seconds()))
    except SignatureExpired:
        return ResolvedInvitation(InvitationLinkState.EXPIRED)
    except BadSignature:
        return ResolvedInvitation(InvitationLinkState.INVALID)
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return ResolvedInvitation(InvitationLinkState.INVALID)
    user = session.get(User, data["u"])
    if user is None:
        return ResolvedInvitation(InvitationLinkState.INVALID)
    if user.is_past_end_date(today or date.today()):
        return ResolvedInvitation(InvitationLinkState.USER_EXPIRED, user)
    nonce = user.invitation_nonce
    if not nonce or not secrets.compare_digest(str(data.get("n")), nonce) or user.status != UserStatus.INVITED:
        return ResolvedInvitation(InvitationLinkState.USED, user)
    return ResolvedInvitation(InvitationLinkState.VALID, user)


def accept_invitation(
    session: Session,
    token: str,
    *,
    first_name: str,
    last_name: str,
    password: str,
    today: date | None = None,
) -> ResolvedInvitation:
    """Set the invitee's name and password and make the user active, once; any other link state changes nothing."""
    link = resolve_invitation(session, token, today=today)
    if link.state is not InvitationLinkState.VALID:
        return link
    first_name, last_name = (first_name or "").strip(), (last_name or "").strip()
    if not first_name or not last_name:
        raise DomainError(_l("Enter both your first name and your last name."))
    if len(first_name) > MAX_NAME_LENGTH or len(last_name) > MAX_NAME_LENGTH:
        raise DomainError(_l("A name can be at most %(max)s characters.", max=MAX_NAME_LENGTH))
    user = link.user
    check_password(password, [first_name, last_name, *password_inputs(user)])
    user.person.first_name = first_name
    user.person.last_name = last_name
    user.set_password(password)
    user.status = UserStatus.ACTIVE
    user.accepted_at = utcnow()
    user.blocked_at = None
    user.invitation_nonce = None
    with accepting_invitation():
        session.flush()
    return link


def block_user(user: User) -> bool:
    """Block one user (an open invitation link stops working); False when it was blocked already."""
    if user.status == UserStatus.BLOCKED:
        return False
    user.status = UserStatus.BLOCKED
    user.blocked_at = utcnow()
    user.invitation_nonce = None  # an open invitation link stops working
    return True


def block_expired(session: Session, today: date) -> int:
    """Block, for the record, every user whose end date has passed (all bureaus); how many. Running it again
    changes nothing: such users already count as blocked (``User.is_active``) before this runs."""
    users = session.scalars(
        select(User).where(User.end_date < today, User.status != UserStatus.BLOCKED).order_by(User.id)
    ).all()
    for user in users:
        block_user(user)
    session.flush()
    return len(users)


def _has_login(user: User) -> bool:
    """Whether the user got as far as a login: accepted, has a password, or is a bureau user (the employee's)."""
    return bool(user.accepted_at or user.password_hash or user.person_kind is PersonKind.RESELLER_USER)


def _check_actor(session: Session, users: list[User], actor: User | None) -> None:
    """The policy per user; the first refusal names the user and stops the whole change."""
    for user in users:
        try:
            check(session, actor, Verb.USER_CHANGE_STATUS, user)
        except PolicyError as exc:
            raise PolicyError(_l("%(person)s: %(reason)s", person=_name(user), reason=str(exc))) from None


def deactivate(session: Session, users: Iterable[User], *, actor: User | None = None) -> int:
    """Block the users (their open invitation links stop working); how many changed. All or nothing."""
    users = list(users)
    _check_actor(session, users, actor)
    changed = [user for user in users if user.status != UserStatus.BLOCKED]
    for user in changed:
        block_user(user)
    session.flush()
    return len(changed)


def reactivate(session: Session, users: Iterable[User], *, today: date | None = None, actor: User | None = None) -> int:
    """Lift the block: back to active, or to invited when the user never set a password; how many changed.

    Users past their end date are refused (set a later end date first); then nothing changes.
    """
    users = list(users)
    today = today or date.today()
    _check_actor(session, users, actor)
    expired = [user for user in users if user.is_past_end_date(today)]
    if expired:
        raise DomainError(
            _l(
                "The end date has passed for %(names)s: set a later end date before reactivating.",
                names=", ".join(_name(user) for user in expired),
            )
        )
    changed = [user for user in users if user.status == UserStatus.BLOCKED]
    for user in changed:
        user.status = UserStatus.ACTIVE if _has_login(user) else UserStatus.INVITED
        user.blocked_at = None
    session.flush()
    return len(changed)
