"""Display labels for the model's coded values, in the user's language."""

import enum

from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms.fields.choices import SelectChoice

from models import (
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
