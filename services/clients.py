"""Client operations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask_babel import lazy_gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from stdnum.no import orgnr

from models import Client, ContactRole, CustomerTemplate, Person, PersonKind
from services.errors import DomainError
from services.orgnumbers import normalise
from services.people import check_person


def find_duplicate_org_number(
    session: Session, bureau_id: int, org_number: str, *, exclude_id: int | None = None
) -> Client | None:
    """The bureau's other client with this org number, if any."""
    query = select(Client).where(Client.bureau_id == bureau_id, Client.org_number == org_number)
    if exclude_id is not None:
        query = query.where(Client.id != exclude_id)
    with session.no_autoflush:
        return session.scalars(query.limit(1)).first()


def mark_demo(session: Session, clients: Iterable[Client]) -> int:
    """Mark clients as demo (one-way). Returns how many changed; internal clients are refused."""
    changed = 0
    for client in clients:
        if client.is_internal:
            raise DomainError(_("The internal client cannot be a demo client."))
        if not client.is_demo:
            client.is_demo = True
            changed += 1
    session.flush()
    return changed


# The per-client access switches on the Oversikt tab ("Bedriftsoppslag", "Egendefinert fakturaepost").
SWITCHES = ("company_lookup_enabled", "custom_invoice_email_enabled")
INVOICE_TEXT_LANGUAGES = ("nb", "sv", "en")


def set_switch(session: Session, client: Client, switch: str, on: bool) -> None:
    """Turn one of the client's access switches on or off (the history records it)."""
    if switch not in SWITCHES:
        raise DomainError(_("There is no such setting."))
    setattr(client, switch, bool(on))
    session.flush()


def set_invoice_email_texts(session: Session, client: Client, texts: dict[str, dict[str, str]]) -> None:
    """Store the client's invoice e-mail texts per language; only while custom invoice e-mail is on."""
    if not client.custom_invoice_email_enabled:
        raise DomainError(_("Turn on custom invoice e-mail first."))
    unknown = set(texts) - set(INVOICE_TEXT_LANGUAGES)
    if unknown:
        raise DomainError(_("There is no such setting."))
    client.invoice_email_texts = texts
    session.flush()


class DuplicateOrgNumber(DomainError):
    """The bureau already has a client with this org number; ``existing`` is that client."""

    def __init__(self, existing: Client) -> None:
        if existing.archived_at is not None:  # an archived client keeps its number reserved
            super().__init__(
                _("An archived client in this bureau has this organisation number (restore it to use it again):")
            )
        else:
            super().__init__(_("Another client in this bureau already has this organisation number:"))
        self.existing = existing


@dataclass
class NewClient:
    """What "+ Ny kunde" (or an import row) asks for."""

    name: str
    org_number: str | None = None
    organisation_form: str | None = None
    is_demo: bool = False
    template_id: int | None = None
    business_address_lines: str | None = None
    business_postal_code: str | None = None
    business_city: str | None = None
    business_country_code: str | None = None
    postal_address_lines: str | None = None
    postal_postal_code: str | None = None
    postal_city: str | None = None
    postal_country_code: str | None = None
    contact_first_name: str | None = None
    contact_last_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    contact_role: ContactRole | None = None
    email: str | None = None
    phone: str | None = None


ADDRESS_FIELDS = (
    "business_address_lines",
    "business_postal_code",
    "business_city",
    "business_country_code",
    "postal_address_lines",
    "postal_postal_code",
    "postal_city",
    "postal_country_code",
)


def create_client(session: Session, bureau_id: int, data: NewClient, *, ask_consent: bool = True) -> Client:
    """Create the client, its contact person and (when there is a contact) the consent e-mail, in one flush."""
    from services.consent import request_consent

    org_number = normalise(data.org_number)
    if org_number is not None:
        if not orgnr.is_valid(org_number):
            raise DomainError(
                _(
                    "%(value)s is not a valid organisation number (9 digits with a correct check digit).",
                    value=org_number,
                )
            )
        existing = find_duplicate_org_number(session, bureau_id, org_number)
        if existing is not None:
            raise DuplicateOrgNumber(existing)
    template = None
    if data.template_id is not None:
        template = session.get(CustomerTemplate, data.template_id)
        if template is None or template.bureau_id != bureau_id:
            raise DomainError(_("Choose one of the bureau's customer templates."))
    try:
        # A savepoint, begun before the client joins its template's collection: a lost race leaves nothing behind.
        with session.begin_nested():
            client = Client(
                bureau_id=bureau_id,
                name=data.name.strip(),
                org_number=org_number,
                organisation_form=data.organisation_form or None,
                is_demo=bool(data.is_demo),
                template=template,
                email=data.email or None,
                phone=data.phone or None,
                **{name: getattr(data, name) or None for name in ADDRESS_FIELDS},
            )
            if template is not None:
                client.country_code, client.language, client.currency = (
                    template.country_code,
                    template.language,
                    template.currency,
                )
            session.add(client)
            session.flush()
    except IntegrityError:
        # Another request gave a client this org number after the check above (PostgreSQL waited for it to
        # commit): the same refusal as the check's.
        existing = find_duplicate_org_number(session, bureau_id, org_number) if org_number else None
        if existing is None:
            raise
        raise DuplicateOrgNumber(existing) from None
    if data.contact_email or data.contact_first_name:
        contact = Person(
            bureau_id=bureau_id,
            client=client,
            kind=PersonKind.PERSON,
            first_name=(data.contact_first_name or "").strip(),
            last_name=(data.contact_last_name or "").strip(),
            email=(data.contact_email or "").strip().lower() or None,
            phone=data.contact_phone or None,
        )
        check_person(session, contact)
        session.add(contact)
        session.flush()
        client.contact_person = contact
        client.contact_role = data.contact_role
        session.flush()
        if ask_consent and contact.email:
            request_consent(session, client)
    return client
