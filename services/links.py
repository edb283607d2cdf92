"""How long the links we e-mail keep working: the one home of their lifetimes, read from the app's config."""

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
