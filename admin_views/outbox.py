"""The outbox grid (Utboks): every e-mail the product sent or is about to send, read-only."""

from __future__ import annotations

from flask import flash
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from admin_views.base import SecureModelView, per_request
from admin_views.labels import choices, formatter
from extensions import db
from models import OutboxMessage, OutboxStatus
from services import policy, search
from services.outbox import message_kinds, requeue

OUTBOX_STATUS = {
    OutboxStatus.PENDING: _l("Waiting to be sent"),
    OutboxStatus.SENDING: _l("Sending"),
    OutboxStatus.SENT: _l("Sent"),
    OutboxStatus.DEFERRED: _l("Will be retried"),
    OutboxStatus.FAILED: _l("Failed"),
    OutboxStatus.HELD: _l("Not delivered: no mail server configured"),
}
# Kinds are free text chosen by the feature that sends; unknown ones are shown as stored.
OUTBOX_KIND = {"invitation": _l("Invitation"), "consent": _l("GDPR consent")}


def _kind_options() -> list[tuple[str, object]]:
    return [(kind, OUTBOX_KIND.get(kind, kind)) for kind in message_kinds(db.session, current_user.bureau_id)]


def _short_error(view, context, model: OutboxMessage, name: str) -> str:
    error = model.last_error or ""
    return error if len(error) <= 120 else error[:119] + "…"


def _preformatted(view, context, model: OutboxMessage, name: str) -> Markup:
    return Markup('<pre class="mb-0" style="white-space: pre-wrap">{}</pre>').format(getattr(model, name) or "")


def _body_for_administrators(view, context, model: OutboxMessage, name: str) -> object:
    # The text holds the recipient's personal links (consent, sign-in); a colleague must not be able to use them.
    if not policy.can(db.session, current_user, policy.Verb.OUTBOX_READ_TEXT):
        return _("Only bureau administrators can read the text: it contains the recipient's personal links.")
    return _preformatted(view, context, model, name)


class OutboxView(SecureModelView):
    can_create = False
    can_edit = False
    can_delete = False
    details_template = "admin/model/details.html"  # the outbox keeps no change history
    column_list = (
        OutboxMessage.created_at,
        OutboxMessage.recipient,
        OutboxMessage.subject,
        OutboxMessage.kind,
        OutboxMessage.status,
        OutboxMessage.attempts,
        OutboxMessage.last_error,
        OutboxMessage.sent_at,
    )
    column_details_list = (
        OutboxMessage.message_id,
        OutboxMessage.created_at,
        OutboxMessage.recipient,
        OutboxMessage.subject,
        OutboxMessage.kind,
        "client",
        OutboxMessage.related,
        OutboxMessage.status,
        OutboxMessage.attempts,
        OutboxMessage.next_attempt_at,
        OutboxMessage.last_error,
        OutboxMessage.sent_at,
        OutboxMessage.body_text,
    )
    column_labels = {
        "created_at": _l("Created"),
        "recipient": _l("Recipient"),
        "subject": _l("Subject"),
        "kind": _l("Type"),
        "status": _l("Status"),
        "attempts": _l("Attempts"),
        "last_error": _l("Last error"),
        "sent_at": _l("Sent"),
        "message_id": _l("Message-ID"),
        "client": _l("Client"),
        "related": _l("Related to"),
        "next_attempt_at": _l("Next attempt"),
        "body_text": _l("Text"),
    }
    column_formatters = {
        "status": formatter("status", OUTBOX_STATUS),
        "kind": lambda v, c, m, n: OUTBOX_KIND.get(m.kind, m.kind),
        "last_error": _short_error,
    }
    column_formatters_detail = {
        "status": formatter("status", OUTBOX_STATUS),
        "kind": lambda v, c, m, n: OUTBOX_KIND.get(m.kind, m.kind),
        "last_error": _preformatted,
        "body_text": _body_for_administrators,
    }
    column_sortable_list = (
        OutboxMessage.created_at,
        OutboxMessage.recipient,
        OutboxMessage.kind,
        OutboxMessage.status,
        OutboxMessage.attempts,
        OutboxMessage.sent_at,
    )
    column_default_sort = [(OutboxMessage.created_at, True), (OutboxMessage.id, True)]
    column_searchable_list = (OutboxMessage.recipient, OutboxMessage.subject)
    search_in = search.OUTBOX_BY_RECIPIENT
    column_filters = (
        FilterEqual(OutboxMessage.status, _l("Status"), options=choices(OUTBOX_STATUS)),
        FilterEqual(OutboxMessage.kind, _l("Type"), options=per_request(_kind_options)),
        OutboxMessage.created_at,
    )

    @action("requeue", _l("Send again"), _l("Send the selected e-mails again?"))
    def action_requeue(self, ids: list[str]) -> None:
        try:
            count = requeue(db.session, self.selected(ids), actor=current_user)
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 - e.g. a worker changed a row meanwhile: a message, then rollback
            db.session.rollback()
            if not self.handle_view_exception(exc):
                raise
            return
        flash(_("%(count)s e-mail(s) queued to be sent again.", count=count), "success")
