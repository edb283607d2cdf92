"""The links we e-mail: how long they keep working (read from the app's config) and in which language they speak."""

from __future__ import annotations

import enum
from datetime import timedelta

from flask import current_app, has_app_context


class LinkKind(enum.StrEnum):
    INVITATION = "invitation"  # the invitation to create a login: INVITATION_DAYS
    CONSENT = "consent"  # the GDPR consent request to a client's contact person: CONSENT_LINK_DAYS


SETTINGS = {LinkKind.INVITATION: ("INVITATION_DAYS", 14), LinkKind.CONSENT: ("CONSENT_LINK_DAYS", 30)}


def link_lifetime(kind: LinkKind) -> timedelta:
    """How long a link of this kind works (the setting of the current app, its default outside one)."""
    name, default = SETTINGS[kind]
    days = current_app.config.get(name, default) if has_app_context() else default
    return timedelta(days=int(days if days is not None else default))


# What a client's own people read (the consent and invitation e-mails, and the public pages their links open) is in
# the client's language, set by its customer template. The staff UI stays Norwegian or English (app.SUPPORTED_LOCALES):
# the Swedish catalogue (translations/sv) holds only these texts.
CLIENT_LOCALES = {"nb": "no", "en": "en", "sv": "sv"}


def client_locale(language: str | None) -> str:
    """The locale for the e-mails and link pages of a client with this language (Norwegian when unknown)."""
    return CLIENT_LOCALES.get(language or "", "no")
