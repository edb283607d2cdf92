"""The client page ("Behandle klient") and "+ Ny kunde": one module per tab, all under /admin/clients/."""

from admin_views.client_page.page import ClientPageMixin
from admin_views.client_page.people import PeopleTabMixin

__all__ = ["ClientPageMixin", "PeopleTabMixin"]
