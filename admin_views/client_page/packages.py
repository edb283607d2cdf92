"""The Pakker tab: the packages on the client, who holds them now, and this month's billing basis."""

from __future__ import annotations

from admin_views.billing import packages_context
from models import Client


class PackagesTab:
    def packages_context(self, client: Client) -> dict:
        return packages_context(client)
