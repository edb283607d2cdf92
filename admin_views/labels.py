"""Display labels for the model's coded values, in the user's language."""

import enum

from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms.fields.choices import SelectChoice

from models import (
    AlertKind,
    ConsentStatus,
    ContactRole,
    InvitationState,
    PackageKind,
    PersonKind,
    ResellerRole,
    StaffRole,
    UserStatus,
)

PERSON_KIND = {
    PersonKind.RESELLER_USER: _l("Bureau user"),
    PersonKind.USER: _l("User with access packages"),
    PersonKind.EXTERNAL_USER: _l("External user with access packages"),
    PersonKind.USER_WITHOUT_PACKAGES: _l("User without access packages"),
    PersonKind.PERSON: _l("Person without user"),
}
USER_STATUS = {
    UserStatus.INVITED: _l("Invited"),
    UserStatus.ACTIVE: _l("Active"),
    UserStatus.BLOCKED: _l("Blocked"),
}
INVITATION_STATE = {
    InvitationState.NOT_SENT: _l("Not sent"),
    InvitationState.SENT: _l("Sent"),
    InvitationState.DELIVERED: _l("Delivered"),
    InvitationState.ACCEPTED: _l("Accepted"),
    InvitationState.EXPIRED: _l("Expired"),
}
RESELLER_ROLE = {
    ResellerRole.ACCOUNTANT: _l("Accountant"),
    ResellerRole.AUDITOR: _l("Auditor"),
    ResellerRole.INTEGRATION: _l("Integration user"),
}
STAFF_ROLE = {StaffRole.ADMIN: _l("Bureau administrator"), StaffRole.STAFF: _l("Staff")}
PACKAGE_KIND = {PackageKind.MAIN: _l("Main package"), PackageKind.ADDON: _l("Add-on package")}
CONSENT_STATUS = {
    ConsentStatus.PENDING: _l("Consent pending"),
    ConsentStatus.GIVEN: _l("Consent given"),
    ConsentStatus.DECLINED: _l("Consent declined"),
}
CONTACT_ROLE = {
    ContactRole.CEO: _l("General manager (daglig leder)"),
    ContactRole.CHAIR: _l("Chair of the board (styreleder)"),
}
REGISTRY_STATUS = {
    "active": _l("active"),
    "bankrupt": _l("bankrupt (konkurs)"),
    "winding_up": _l("being wound up (under avvikling)"),
    "forced_dissolution": _l("under forced dissolution"),
    "reconstruction": _l("in reconstruction negotiations"),
    "deleted": _l("deleted"),
    "removed": _l("removed from the register"),
}
# What the register watch found (``RegistryAlert.kind``).
ALERT_KIND = {
    AlertKind.BANKRUPT: _l("Bankrupt (konkurs)"),
    AlertKind.WINDING_UP: _l("Being wound up (under avvikling)"),
    AlertKind.FORCED_DISSOLUTION: _l("Under forced dissolution"),
    AlertKind.RECONSTRUCTION: _l("In reconstruction negotiations"),
    AlertKind.DELETED: _l("Deleted from the register"),
    AlertKind.REMOVED: _l("Removed from the register"),
    AlertKind.NAME_CHANGED: _l("New name"),
    AlertKind.ADDRESS_CHANGED: _l("New address"),
    AlertKind.ORGANISATION_FORM_CHANGED: _l("New organisation form"),
}
ALERT_ADDRESS = {"business": _l("Business address"), "postal": _l("Postal address")}
LANGUAGE = {"nb": _l("Norwegian"), "sv": _l("Swedish"), "en": _l("English")}
COUNTRY = {"NO": _l("Norway"), "SE": _l("Sweden"), "DK": _l("Denmark")}


# Every coded value's label by its enum: what a grid or detail page shows for a value no column formatter names.
ENUM_LABELS: dict[type, dict] = {
    PersonKind: PERSON_KIND,
    UserStatus: USER_STATUS,
    InvitationState: INVITATION_STATE,
    ResellerRole: RESELLER_ROLE,
    StaffRole: STAFF_ROLE,
    PackageKind: PACKAGE_KIND,
    ConsentStatus: CONSENT_STATUS,
    ContactRole: CONTACT_ROLE,
}


def alert_details(kind: AlertKind, details: dict | None) -> str:
    """What an alert says changed, as one line: "old → new" (with which address), or the status it had before."""
    details = details if isinstance(details, dict) else {}
    if "old" in details or "new" in details:
        change = f"{details.get('old') or '–'} → {details.get('new') or '–'}"
        address = ALERT_ADDRESS.get(details.get("address"))
        return f"{address}: {change}" if address else change
    previous = details.get("previous")
    if previous:
        return str(_l("Before: %(status)s", status=REGISTRY_STATUS.get(previous, previous)))
    return ""


def yes_no(view, value, name) -> Markup:
    """A boolean as Flask-Admin's icon, told in words to the tooltip and screen readers ("Ja"/"Nei")."""
    label = _l("Yes") if value else _l("No")
    icon = "fa-check-circle" if value else "fa-minus-circle"
    return Markup('<span class="fa {}" title="{}" aria-label="{}"></span>').format(icon, label, label)


def enum_label(view, value: enum.Enum, name) -> str:
    """A coded value by its label (Flask-Admin would show the member's English name)."""
    return str(ENUM_LABELS.get(type(value), {}).get(value, value.value))


def choices(labels: dict) -> list[tuple[str, object]]:
    """Filter options from a label mapping: stored value → label."""
    return [(str(value), label) for value, label in labels.items()]


def _optional_value(value: object) -> str | None:
    return None if value in (None, "", "None") else str(value)


def select_field(labels: dict, *, optional: bool = False) -> dict:
    """``form_args`` for a coded column shown as a plain select of translated labels.

    Used with ``form_overrides = {name: SelectField}``: WTForms 3.3 wants SelectChoice objects,
    which Flask-Admin's own Select2Field cannot render.
    """
    options = [SelectChoice(str(value), label) for value, label in labels.items()]
    if optional:
        options.insert(0, SelectChoice("", "–"))
    return {"choices": options, "coerce": _optional_value if optional else str}


def formatter(field: str, labels: dict):
    """A Flask-Admin column formatter that shows the label of a coded value."""

    def format_value(view, context, model, name):
        value = getattr(model, field)
        return labels.get(value, value) if value is not None else ""

    return format_value


# The kinds of record the change history names (``AuditEntry.entity``), as the grids and menus call them.
RECORD_TYPE = {
    "clients": _l("Clients"),
    "persons": _l("People"),
    "users": _l("Users"),
    "packages": _l("Packages"),
    "package_assignments": _l("Package assignments"),
    "customer_templates": _l("Customer templates"),
    "permissions": _l("Permissions"),
    "billing_months": _l("Closed billing months"),
    "bureaus": _l("Bureau"),
}
HISTORY_ACTION = {"create": _l("Created"), "update": _l("Changed"), "delete": _l("Deleted")}

# Every recorded field by record type, labelled as the grids and forms label it. A field left out here and named in
# ``HIDDEN_FIELDS`` is internal and never shown in the history.
FIELD_LABELS = {
    "clients": {
        "name": _l("Company name"),
        "org_number": _l("Organisation number"),
        "organisation_form": _l("Organisation form"),
        "is_internal": _l("Internal client"),
        "is_demo": _l("Demo"),
        "template_id": _l("Customer template"),
        "business_address_lines": _l("Business address"),
        "business_postal_code": _l("Postcode"),
        "business_city": _l("City"),
        "business_country_code": _l("Country code"),
        "postal_address_lines": _l("Postal address"),
        "postal_postal_code": _l("Postal address postcode"),
        "postal_city": _l("Postal address city"),
        "postal_country_code": _l("Postal address country code"),
        "email": _l("E-mail"),
        "phone": _l("Phone"),
        "country_code": _l("Country"),
        "language": _l("Language"),
        "currency": _l("Currency"),
        "company_lookup_enabled": _l("Company lookup"),
        "custom_invoice_email_enabled": _l("Custom invoice e-mail"),
        "invoice_email_texts": _l("Invoice e-mail texts"),
        "contact_person_id": _l("Contact person"),
        "contact_role": _l("Contact person's role"),
        "consent_status": _l("GDPR consent"),
        "consent_at": _l("Consent answered"),
        "consent_from": _l("Consent answered from"),
        "consent_requested_at": _l("Consent requested"),
        "consent_nonce": _l("Consent link"),
        "registry_status": _l("Register status"),
        "registry_checked_at": _l("Last checked against the company register"),
        "archived_at": _l("Archived at"),
    },
    "persons": {
        "client_id": _l("Client"),
        "kind": _l("Kind"),
        "first_name": _l("First name"),
        "last_name": _l("Last name"),
        "email": _l("E-mail"),
        "phone": _l("Phone"),
        "archived_at": _l("Archived at"),
    },
    "users": {
        "person_id": _l("Person"),
        "status": _l("Status"),
        "end_date": _l("End date"),
        "reseller_role": _l("Bureau role"),
        "employee_id": _l("Employee"),
        "bank_access": _l("Bank access"),
        "user_admin": _l("User administration"),
        "staff_role": _l("Staff role"),
        "password_hash": _l("Password"),
        "invitation_sent_at": _l("Invitation sent"),
        "invitation_nonce": _l("Invitation link"),
        "accepted_at": _l("Invitation accepted"),
        "blocked_at": _l("Blocked at"),
        "archived_at": _l("Archived at"),
        "permissions": _l("Single permissions"),
    },
    "packages": {
        "code": _l("Code"),
        "name": _l("Name"),
        "kind": _l("Kind"),
        "rank": _l("Rank"),
        "price": _l("Monthly price per user"),
        "requires_main": _l("Requires a main package"),
        "active": _l("Active"),
        "permissions": _l("Included permissions"),
    },
    "package_assignments": {
        "user_id": _l("User"),
        "package_id": _l("Package"),
        "valid_from": _l("From"),
        "valid_to": _l("To (inclusive)"),
    },
    "customer_templates": {
        "name": _l("Name"),
        "country_code": _l("Country"),
        "language": _l("Language"),
        "currency": _l("Currency"),
        "packages": _l("Packages a new client starts with"),
    },
    "permissions": {"code": _l("Code"), "name": _l("Name")},
    "billing_months": {
        "period": _l("Period"),
        "clients": _l("Clients"),
        "users": _l("Users"),
        "rows": _l("Rows"),
        "amount": _l("Amount"),
    },
    "bureaus": {"name": _l("Name"), "org_number": _l("Organisation number")},
}
# Internal columns: ids, tenancy and copies kept for the database's rules.
HIDDEN_FIELDS = frozenset(
    {
        "id",
        "bureau_id",
        "version",
        "created_at",
        "updated_at",
        "person_kind",
        "package_kind",
        "invitation_message_id",
        "session_token",
        "login_email",
        "last_login_at",
    }
)
