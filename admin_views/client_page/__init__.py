"""The client page ("Behandle klient") and "+ Ny kunde", all under /admin/clients/: one module per tab.

Each part is a class of its own routes and names (``tests/test_client_page.py`` checks that no two share one), so the
order they are combined in does not matter; ``ClientView`` mixes in ``ClientPageMixin``.
"""

from admin_views.client_page.new_client import NewClientPages
from admin_views.client_page.overview import OverviewTab
from admin_views.client_page.packages import PackagesTab
from admin_views.client_page.page import ClientPageShell
from admin_views.client_page.people import PeopleTab

PARTS = (ClientPageShell, NewClientPages, OverviewTab, PeopleTab, PackagesTab)


class ClientPageMixin(*PARTS):
    """Every page of a client, mixed into ClientView."""


__all__ = ["PARTS", "ClientPageMixin"]
