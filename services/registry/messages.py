"""What a person in the UI is told when the register cannot answer (the exceptions' own texts are for logs)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _

from services.registry.base import (
    BadRegistryAnswer,
    CompanyNotFound,
    InvalidOrgNumber,
    RegistryError,
    RegistryUnavailable,
)


def user_message(exc: RegistryError) -> str:
    if isinstance(exc, InvalidOrgNumber):
        return str(_("%(value)s is not a valid organisation number.", value=getattr(exc, "org_number", "")))
    if isinstance(exc, CompanyNotFound):
        return str(_("%(value)s is not in the company register.", value=getattr(exc, "org_number", "")))
    if isinstance(exc, RegistryUnavailable):
        return str(
            _(
                "The company register is not answering right now. Fill in the company by hand; "
                "you can add the organisation number later."
            )
        )
    if isinstance(exc, BadRegistryAnswer):
        return str(_("The company register gave an answer that could not be read. Try again later."))
    return str(_("The company register could not answer."))
