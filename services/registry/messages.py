"""What a person in the UI is told when the register cannot answer (the exceptions' own texts are for logs)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _

from services.registry.base import (
    BadRegistryAnswer,
    CompanyNotFound,
    InvalidOrgNumber,
    NonsenseAnswer,
    RegistryError,
    RegistryTooSlow,
    RegistryUnavailable,
)

# Said after a message on "+ Ny kunde", where the person can always go on without the register.
MANUAL_ENTRY_HINT = _("Fill in the company by hand; you can add the organisation number later.")
# Said after a message on pages that would have changed something.
NOTHING_CHANGED = _("Nothing was changed; try again in a little while.")


def user_message(exc: RegistryError) -> str:
    """What happened, in one or two sentences, without advice on what to do next (the page adds that)."""
    if isinstance(exc, InvalidOrgNumber):
        return str(_("%(value)s is not a valid organisation number.", value=getattr(exc, "org_number", "")))
    if isinstance(exc, CompanyNotFound):
        return str(_("%(value)s is not in the company register.", value=getattr(exc, "org_number", "")))
    if isinstance(exc, RegistryTooSlow):
        return str(
            _(
                "The company register is slow right now: it did not answer within %(seconds)s seconds.",
                seconds=f"{exc.seconds:g}",
            )
        )
    if isinstance(exc, RegistryUnavailable):
        return str(_("The company register is not answering right now."))
    if isinstance(exc, NonsenseAnswer):
        return str(
            _(
                "The company register answered nonsense (not the company data it should send), "
                "so the answer was not used."
            )
        )
    if isinstance(exc, BadRegistryAnswer):
        return str(_("The company register gave an answer that could not be read. Try again later."))
    return str(_("The company register could not answer."))


def error_kind(exc: RegistryError) -> str:
    """A stable word for the JSON answers and the page: invalid, not_found, slow, unavailable, nonsense, refused."""
    if isinstance(exc, InvalidOrgNumber):
        return "invalid"
    if isinstance(exc, CompanyNotFound):
        return "not_found"
    if isinstance(exc, RegistryTooSlow):
        return "slow"
    if isinstance(exc, RegistryUnavailable):
        return "unavailable"
    if isinstance(exc, NonsenseAnswer):
        return "nonsense"
    return "refused"
