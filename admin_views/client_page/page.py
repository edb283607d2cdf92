"""The client page ("Behandle klient"): the shell that picks the tab, and what every tab's changes share."""

from __future__ import annotations

from flask import abort, redirect, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from forms.clients import VersionedActionForm
from models import Client
from services import client_page
from services.errors import StaleEditError
from services.registry import NonsenseAnswer, RegistryError, RegistryUnavailable
from services.registry.messages import user_message

TABS = ("overview", "people", "packages", "history")
TAB_LABELS = {"overview": _l("Overview"), "people": _l("People"), "packages": _l("Packages"), "history": _l("History")}


def registry_failure(exc: RegistryError, advice: str) -> str:
    """The reason the register gave no answer, with ``advice`` when the register (not the input) failed."""
    if isinstance(exc, RegistryUnavailable | NonsenseAnswer):
        return f"{user_message(exc)} {advice}"
    return user_message(exc)


def stale_message() -> str:
    return _(
        "Someone else saved this record while you were editing it. "
        "Reload the page to see their changes, then make yours again."
    )


class ClientPageShell:
    """``/admin/clients/manage/?id=…&tab=…``: the page, and the checks a change made from it goes through."""

    @expose("/manage/")
    def manage_view(self):
        client = self.get_one(request.args.get("id"))
        tab = request.args.get("tab", "overview")
        if tab not in TABS:
            abort(404)
        return self._render_page(client, tab)

    def _render_page(self, client: Client, tab: str, **tab_overrides):
        """The page with ``tab`` open: what every tab shows, plus the tab's own ``<tab>_context``."""
        tab_context = getattr(self, f"{tab}_context")(client, **tab_overrides)
        archive_flags = self.archive_flags(client)
        return self.render(
            "admin/clients/page.html",
            client=client,
            tab=tab,
            tabs=[(key, TAB_LABELS[key]) for key in TABS],
            header=client_page.header(client, archived=archive_flags["is_archived"]),
            action_form=VersionedActionForm(data={"version_check": client.version}),
            **archive_flags,
            **tab_context,
        )

    def _load_for_change(self) -> Client:
        """The client a POST on its page changes, refused when the page was stale."""
        client = self.get_one(request.args.get("id"))
        form = VersionedActionForm()
        if not form.validate_on_submit():
            abort(400)
        if form.version_check.data and form.version_check.data != str(client.version):
            raise StaleEditError(stale_message())
        return client

    def _back(self, client: Client, tab: str = "overview"):
        return redirect(self.get_url(".manage_view", id=client.id, tab=tab))
