"""Domain errors, and turning database refusals into messages a person can act on."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from models.rules import DEMO_PERMANENT, MAIN_PACKAGE_OVERLAP


class DomainError(Exception):
    """A rule of the product refused the change; ``str(exc)`` is the user-facing reason."""

    def __init__(self, message: object) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


class StaleEditError(DomainError):
    """Someone saved the record after this form was opened."""


# Fragments of constraint names (or raised texts) → what the user is told.
CONSTRAINT_MESSAGES = [
    (DEMO_PERMANENT, _l("A demo client can never become a real client: the demo flag cannot be cleared.")),
    (MAIN_PACKAGE_OVERLAP, _l("A user can hold at most one main package at a time.")),
    ("uq_clients_bureau_id_org_number", _l("Another client in this bureau already has this organisation number.")),
    ("org_number_valid", _l("The organisation number is not valid (9 digits with a correct check digit).")),
    ("internal_not_demo", _l("The internal client cannot be a demo client.")),
    ("one_internal_per_bureau", _l("The bureau already has an internal client.")),
    ("uq_persons_client_id_email", _l("Another person on this client already has this e-mail address.")),
    ("login_needs_email", _l("A person with a login needs an e-mail address.")),
    ("external_has_end_date", _l("An external user needs an end date.")),
    ("reseller_fields", _l("A bureau user needs an employee and a role (accountant, auditor or integration).")),
    ("reseller_extras", _l("Bank access and user administration are only for bureau users.")),
    ("person_kind_has_login", _l("A person without a user cannot have a login.")),
    ("uq_users_person_id", _l("This person already has a user.")),
    # Logins are global: the message must not tell which bureau has the address.
    ("ix_users_login_email", _l("This e-mail address is already used for a staff login. Use another address.")),
    ("uq_packages_bureau_id_code", _l("Another package already has this code.")),
    ("main_has_rank", _l("A main package needs a rank in the hierarchy.")),
    ("price_not_negative", _l("The price cannot be negative.")),
    ("uq_permissions_bureau_id_code", _l("Another permission already has this code.")),
    ("uq_customer_templates_bureau_id_name", _l("Another customer template already has this name.")),
    ("dates_ordered", _l("The end date cannot be before the start date.")),
    ("uq_bureaus_org_number", _l("Another bureau already has this organisation number.")),
]

# SQLite reports unique violations by column, not by constraint name.
SQLITE_UNIQUE_COLUMNS = {
    "clients.bureau_id, clients.org_number": "uq_clients_bureau_id_org_number",
    "persons.client_id, persons.email": "uq_persons_client_id_email",
    "users.person_id": "uq_users_person_id",
    "users.login_email": "ix_users_login_email",
    "packages.bureau_id, packages.code": "uq_packages_bureau_id_code",
    "permissions.bureau_id, permissions.code": "uq_permissions_bureau_id_code",
    "customer_templates.bureau_id, customer_templates.name": "uq_customer_templates_bureau_id_name",
    "bureaus.org_number": "uq_bureaus_org_number",
    "clients.bureau_id": "one_internal_per_bureau",
}


def integrity_message(exc: IntegrityError) -> str | None:
    """The user-facing reason for a database refusal, or None when it is not one we know."""
    text = str(exc.orig)
    for columns, name in SQLITE_UNIQUE_COLUMNS.items():
        if f"UNIQUE constraint failed: {columns}" == text.strip():
            text = name
            break
    for fragment, message in CONSTRAINT_MESSAGES:
        if fragment in text:
            return str(message)
    return None
