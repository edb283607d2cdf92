"""GDPR consent: the contact person accepts (or declines) that the company's books are kept in the suite."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from models import Client, ConsentStatus, utcnow
from models.outbox import OutboxMessage
from services.errors import DomainError
from services.links import LinkKind, client_locale, link_lifetime
from services.outbox import enqueue_email

SALT = "gdpr-consent"


class LinkState(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"  # tampered or not a link of ours
    EXPIRED = "expired"
    USED = "used"  # answered already, or replaced by a newer request


@dataclass(frozen=True)
class ResolvedLink:
    state: LinkState
    client: Client | None = None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def link_lifetime_seconds() -> int:
    """The consent link's lifetime (``services.links``) in seconds, as the signer wants it."""
    return int(link_lifetime(LinkKind.CONSENT).total_seconds())


def consent_url(client: Client) -> str:
    """The public link in the consent e-mail, built from PUBLIC_BASE_URL (same from web, worker and CLI)."""
    token = _serializer().dumps({"c": client.id, "n": client.consent_nonce})
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/samtykke/{token}"


def request_consent(session: Session, client: Client) -> OutboxMessage:
    """Ask the contact person for consent by e-mail; a new request makes older links stop working."""
    contact = client.contact_person
    if contact is None or not contact.email:
        raise DomainError(_("The client needs a contact person with an e-mail address before consent can be asked."))
    client.consent_nonce = secrets.token_urlsafe(24)
    client.consent_status = ConsentStatus.PENDING
    client.consent_requested_at = utcnow()
    client.consent_at = None
    client.consent_from = None
    session.flush()
    with force_locale(client_locale(client.language)):
        context = {
            "client": client,
            "contact": contact,
            "bureau": client.bureau,
            "url": consent_url(client),
            "days": link_lifetime_seconds() // 86400,
        }
        subject = str(_("Consent to keeping the accounts of %(company)s", company=client.name))
        text = render_template("email/consent.txt", **context)
    return enqueue_email(
        session,
        bureau_id=client.bureau_id,
        to=contact.email,
        subject=subject,
        text=text,
        kind="consent",
        client_id=client.id,
    )


def resolve_link(session: Session, token: str) -> ResolvedLink:
    """What a consent link points at, and whether it can still be used."""
    try:
        data = _serializer().loads(token, max_age=link_lifetime_seconds())
    except SignatureExpired:
        return ResolvedLink(LinkState.EXPIRED)
    except BadSignature:
        return ResolvedLink(LinkState.INVALID)
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        return ResolvedLink(LinkState.INVALID)
    client = session.get(Client, data["c"])
    if client is None:
        return ResolvedLink(LinkState.INVALID)
    if not client.consent_nonce or not secrets.compare_digest(str(data.get("n")), client.consent_nonce):
        return ResolvedLink(LinkState.USED, client)
    return ResolvedLink(LinkState.VALID, client)


def answer_consent(session: Session, token: str, *, accept: bool, remote_addr: str | None) -> ResolvedLink:
    """Record the contact person's answer once; the link cannot be used again."""
    link = resolve_link(session, token)
    if link.state is not LinkState.VALID:
        return link
    client = link.client
    client.consent_status = ConsentStatus.GIVEN if accept else ConsentStatus.DECLINED
    client.consent_at = utcnow()
    client.consent_from = (remote_addr or "")[:64] or None
    client.consent_nonce = None
    session.flush()
    return link
