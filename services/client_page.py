"""The client page's view-models: what each tab shows and offers, so its template holds no rule and no label.

``overview(...)`` and ``people(...)`` read the client (and ask the policy for the acting user); the view turns the
operations they name into URLs. Dates stay dates: the template formats them in the user's locale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from admin_views.labels import (
    ALERT_KIND,
    CONSENT_STATUS,
    CONTACT_ROLE,
    PERSON_KIND,
    REGISTRY_STATUS,
    RESELLER_ROLE,
    USER_STATUS,
    alert_details,
)
from models import STATUS_KINDS, Client, ConsentStatus, PackageKind, Person, PersonKind, RegistryAlert, User, UserStatus
from services import countries, policy
from services.clients import SWITCHES
from services.people import current_assignments
from services.policy import Verb

SWITCH_LABELS = {
    "company_lookup_enabled": _("Company lookup"),
    "custom_invoice_email_enabled": _("Custom invoice e-mail"),
}
# The Personer tab's groups, in the order the help centre lists them.
KIND_ORDER = (
    PersonKind.RESELLER_USER,
    PersonKind.USER,
    PersonKind.EXTERNAL_USER,
    PersonKind.USER_WITHOUT_PACKAGES,
    PersonKind.PERSON,
)
# The verb each row action needs; a row offers an action only when the policy allows it.
OPERATION_VERBS = {
    "change_access": Verb.USER_CHANGE_ACCESS,
    "remove_access": Verb.USER_CHANGE_ACCESS,
    "invite": Verb.USER_INVITE,
    "deactivate": Verb.USER_CHANGE_STATUS,
    "reactivate": Verb.USER_CHANGE_STATUS,
    "archive": Verb.PERSON_ARCHIVE,
}
# Kinds whose access is packages and single rights (the others have none, or the employee's bureau role).
PACKAGE_KINDS = (PersonKind.USER, PersonKind.EXTERNAL_USER)


# --- Oversikt ---------------------------------------------------------------------------------------------------------
@dataclass
class Fact:
    label: Any
    lines: list[str]


@dataclass
class Switch:
    name: str
    label: Any
    on: bool
    state: Any
    button: Any


@dataclass
class Consent:
    status: str  # "given", "declined", "pending", "none": the badge's colour
    label: Any
    answered_at: datetime | None
    source: Any | None  # "from <address>" of a given consent
    asked_at: datetime | None  # when a pending request was sent
    can_send: bool
    send_label: Any


@dataclass
class Contact:
    name: str
    role: Any | None
    email: str | None
    phone: str | None


@dataclass
class Overview:
    company: list[Fact]
    contact: Contact | None
    consent: Consent
    switches: list[Switch]
    can_edit: bool
    can_refresh: bool
    registry_checked_at: datetime | None
    show_invoice_texts: bool


def _address(client: Client, prefix: str) -> list[str]:
    lines = [line for line in (getattr(client, f"{prefix}_address_lines") or "").splitlines() if line.strip()]
    place = " ".join(filter(None, [getattr(client, f"{prefix}_postal_code"), getattr(client, f"{prefix}_city")]))
    if place:
        lines.append(place)
    country = getattr(client, f"{prefix}_country_code")
    if country and country != "NO":
        lines.append(countries.name(country))
    return lines or ["–"]


def overview(client: Client) -> Overview:
    """The Oversikt tab: the company's facts, the contact, consent, the switches and what may be done."""
    archived = client.archived_at is not None
    company = [
        Fact(_("Organisation number"), [client.org_number or "–"]),
        Fact(_("Organisation form"), [client.organisation_form or "–"]),
        Fact(_("Customer template"), [client.template.name if client.template else "–"]),
        Fact(_("Business address"), _address(client, "business")),
        Fact(_("Postal address"), _address(client, "postal")),
        Fact(_("E-mail"), [client.email or "–"]),
        Fact(_("Phone"), [client.phone or "–"]),
    ]
    person = client.contact_person
    contact = (
        Contact(
            name=person.full_name,
            role=CONTACT_ROLE.get(client.contact_role) if client.contact_role else None,
            email=person.email,
            phone=person.phone,
        )
        if person is not None
        else None
    )
    status = client.consent_status
    answered = status in (ConsentStatus.GIVEN, ConsentStatus.DECLINED)
    consent = Consent(
        status=status.value if status is not None else "none",
        label=CONSENT_STATUS[status] if status is not None else _("Not asked"),
        answered_at=client.consent_at if answered else None,
        source=(
            _("from %(address)s", address=client.consent_from)
            if status is ConsentStatus.GIVEN and client.consent_from
            else None
        ),
        asked_at=client.consent_requested_at if status is ConsentStatus.PENDING else None,
        can_send=not archived and person is not None and bool(person.email),
        send_label=_("Send consent request again") if status is not None else _("Send consent request"),
    )
    switches = [
        Switch(
            name=name,
            label=SWITCH_LABELS[name],
            on=bool(getattr(client, name)),
            state=_("On") if getattr(client, name) else _("Off"),
            button=_("Turn off") if getattr(client, name) else _("Turn on"),
        )
        for name in SWITCHES
    ]
    return Overview(
        company=company,
        contact=contact,
        consent=consent,
        switches=switches,
        can_edit=not archived,
        can_refresh=not archived and bool(client.org_number),
        registry_checked_at=client.registry_checked_at,
        show_invoice_texts=client.custom_invoice_email_enabled,
    )


@dataclass
class Header:
    """What every tab shows above itself."""

    name: str
    badges: list[tuple[Any, str]]
    registry_warning: Any | None
    # The client's open register alerts about data not applied (name, address, form): "Oppdater fra Brønnøysund".
    register_changes: list[str] = field(default_factory=list)


def header(client: Client, *, archived: bool) -> Header:
    badges = []
    if client.is_demo:
        badges.append((_("Demo"), "badge-demo"))
    if client.is_internal:
        badges.append((_("Internal"), "badge-info"))
    if archived:
        badges.append((_("archived"), "badge-secondary"))
    warning = None
    if client.registry_status and client.registry_status != "active":
        warning = REGISTRY_STATUS.get(client.registry_status, client.registry_status)
    return Header(name=client.name, badges=badges, registry_warning=warning, register_changes=register_changes(client))


def register_changes(client: Client) -> list[str]:
    """The client's open alerts the register watch raised about its name, address or form, as lines to show."""
    session = object_session(client)
    if session is None or client.id is None:
        return []
    alerts = session.scalars(
        select(RegistryAlert)
        .where(
            RegistryAlert.bureau_id == client.bureau_id,
            RegistryAlert.client_id == client.id,
            RegistryAlert.acknowledged_at.is_(None),
            RegistryAlert.kind.not_in(list(STATUS_KINDS)),
        )
        .order_by(RegistryAlert.seen_at.desc(), RegistryAlert.id.desc())
        .limit(10)
    )
    return [
        f"{ALERT_KIND.get(alert.kind, alert.kind.value)}: {alert_details(alert.kind, alert.details)}"
        for alert in alerts
    ]


# --- Personer ---------------------------------------------------------------------------------------------------------
@dataclass
class Badge:
    label: str
    css: str


@dataclass
class RowAction:
    operation: str  # "change_access" is a link to its form; the others are POSTs to the row action
    label: Any
    confirm: Any | None = None
    danger: bool = False


@dataclass
class PersonRow:
    id: int
    name: str
    email: str | None
    status: Any | None
    end_date: date | None
    ended: bool
    badges: list[Badge] = field(default_factory=list)
    role: str | None = None
    actions: list[RowAction] = field(default_factory=list)


@dataclass
class Group:
    kind: str
    label: Any
    rows: list[PersonRow]


def _allowed(session: Session, actor: User, person: Person) -> dict[str, bool]:
    target = person.user if person.user is not None else person
    return {
        operation: (person.user is not None or operation == "archive") and policy.can(session, actor, verb, target)
        for operation, verb in OPERATION_VERBS.items()
    }


def _actions(person: Person, allowed: dict[str, bool]) -> list[RowAction]:
    user = person.user
    name = person.full_name
    actions = []
    if user is not None and person.kind in PACKAGE_KINDS and allowed["change_access"]:
        actions.append(RowAction("change_access", _("Change access")))
        actions.append(
            RowAction(
                "remove_access",
                _("Remove access"),
                confirm=_("Remove all packages and permissions of %(name)s?") % {"name": name},
            )
        )
    if allowed["invite"]:
        actions.append(RowAction("invite", _("Send invitation again") if user.invitation_sent_at else _("Invite")))
    if user is not None and user.status is UserStatus.BLOCKED:
        if allowed["reactivate"]:
            actions.append(RowAction("reactivate", _("Reactivate")))
    elif allowed["deactivate"]:
        actions.append(
            RowAction(
                "deactivate",
                _("Deactivate"),
                confirm=_("Deactivate %(name)s? They can no longer log in.") % {"name": name},
            )
        )
    if allowed["archive"]:
        actions.append(
            RowAction(
                "archive",
                _("Archive"),
                confirm=_("Archive %(name)s? Their user is blocked; the history is kept.") % {"name": name},
                danger=True,
            )
        )
    return actions


def _row(session: Session, actor: User, person: Person, today: date) -> PersonRow:
    user = person.user
    row = PersonRow(
        id=person.id,
        name=person.full_name,
        email=person.email,
        status=USER_STATUS[user.status] if user is not None else None,
        end_date=user.end_date if user is not None else None,
        ended=bool(user is not None and user.end_date is not None and user.end_date < today),
    )
    if user is not None:
        for assignment in current_assignments(user, today):
            package = assignment.package
            css = "primary" if package.kind is PackageKind.MAIN else "secondary"
            row.badges.append(Badge(package.name, css))
        row.badges += [Badge(permission.name, "light border") for permission in user.permissions]
        if user.reseller_role:
            extras = [str(RESELLER_ROLE[user.reseller_role])]
            if user.bank_access:
                extras.append(str(_("Bank access")))
            if user.user_admin:
                extras.append(str(_("User administration")))
            row.role = " · ".join(extras)
    row.actions = _actions(person, _allowed(session, actor, person))
    return row


def people(session: Session, client: Client, *, actor: User, today: date) -> list[Group]:
    """The Personer tab: one group per kind (archived people are left to the persons grid's filter)."""
    live = sorted(
        (p for p in client.persons if p.archived_at is None),
        key=lambda p: (p.last_name.lower(), p.first_name.lower(), p.id),
    )
    return [
        Group(
            kind=kind.value,
            label=PERSON_KIND[kind],
            rows=[_row(session, actor, person, today) for person in live if person.kind is kind],
        )
        for kind in KIND_ORDER
    ]
