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


# What the Oversikt tab's company card edits (the demo flag, the switches and the contact have their own ways).
COMPANY_FIELDS = ("name", "org_number", "organisation_form", "template_id", *ADDRESS_FIELDS, "email", "phone")


def _text(value: object) -> object:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def company_changes(client: Client, data: dict[str, object]) -> dict[str, object]:
    """The fields of ``data`` whose value differs from the client's (values normalised as they would be stored)."""
    unknown = set(data) - set(COMPANY_FIELDS)
    if unknown:
        raise DomainError(_("This field cannot be changed here: %(fields)s.", fields=", ".join(sorted(unknown))))
    values = {name: _text(value) for name, value in data.items()}
    if "org_number" in values:
        values["org_number"] = normalise(values["org_number"])
    for name in ("business_country_code", "postal_country_code"):
        if isinstance(values.get(name), str):
            values[name] = values[name].upper()
    return {name: value for name, value in values.items() if getattr(client, name) != value}


def update_company(session: Session, client: Client, data: dict[str, object]) -> list[str]:
    """Change the client's company data (the company card); the changed field names.

    The same rules as "+ Ny kunde": a name, a valid and unused org number, real country codes, the bureau's own
    customer template. An archived client refuses every change (``services.archive``'s flush hook).
    """
    from services import countries

    changes = company_changes(client, data)
    if "name" in changes and not changes["name"]:
        raise DomainError(_("Give the company's name."))
    org_number = changes.get("org_number")
    if org_number is not None:
        if not orgnr.is_valid(org_number):
            raise DomainError(
                _(
                    "%(value)s is not a valid organisation number (9 digits with a correct check digit).",
                    value=org_number,
                )
            )
        existing = find_duplicate_org_number(session, client.bureau_id, org_number, exclude_id=client.id)
        if existing is not None:
            raise DuplicateOrgNumber(existing)
    for name in ("business_country_code", "postal_country_code"):
        if changes.get(name) is not None and not countries.is_country(changes[name]):
            raise DomainError(_("%(value)s is not a country code.", value=changes[name]))
    if changes.get("template_id") is not None:
        template = session.get(CustomerTemplate, changes["template_id"])
        if template is None or template.bureau_id != client.bureau_id:
            raise DomainError(_("Choose one of the bureau's customer templates."))
    for name, value in changes.items():
        setattr(client, name, value)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        existing = find_duplicate_org_number(session, client.bureau_id, org_number) if org_number else None
        if existing is None:
            raise
        raise DuplicateOrgNumber(existing) from None
    return sorted(changes)


def set_contact_person(
    session: Session, client: Client, person_id: int, role: ContactRole | None, *, actor: object
) -> None:
    """Make another of the client's (live) people its contact person, in ``role``."""
    person = session.get(Person, person_id)
    if person is None or person.client_id != client.id or person.archived_at is not None:
        raise DomainError(_("The contact person must be one of this client's people."))
    client.contact_person = person
    client.contact_role = role
    session.flush()


def contact_changes(
    client: Client, person_id: int | None, details: dict[str, object], role: ContactRole | None
) -> bool:
    """Whether the contact card's values differ from what is stored (a repeat of the same save changes nothing)."""
    person = client.contact_person
    if person_id is not None and (person is None or person.id != person_id):
        return True
    if client.contact_role != role or person is None:
        return True
    stored = {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email": person.email,
        "phone": person.phone,
    }
    wanted = {name: _text(value) for name, value in details.items()}
    if wanted.get("email"):
        wanted["email"] = str(wanted["email"]).lower()
    return any(stored.get(name) != value for name, value in wanted.items())


def update_contact(
    session: Session, client: Client, details: dict[str, object], role: ContactRole | None, *, actor: object
) -> Person:
    """Change the contact person's details (as the policy allows, ``services.users``) and role; a client without a
    contact gets a new person (no login) as its contact."""
    from services.users import update_person

    person = client.contact_person
    if person is None:
        if not _text(details.get("first_name")) or not _text(details.get("last_name")):
            raise DomainError(_("Give the person's first and last name."))
        person = Person(
            bureau_id=client.bureau_id,
            client=client,
            kind=PersonKind.PERSON,
            first_name=_text(details["first_name"]),
            last_name=_text(details["last_name"]),
            email=(_text(details.get("email")) or "").lower() or None,
            phone=_text(details.get("phone")),
        )
        check_person(session, person)
        session.add(person)
        session.flush()
        client.contact_person = person
    else:
        update_person(session, person, details, actor=actor)
    client.contact_role = role
    session.flush()
    return person
