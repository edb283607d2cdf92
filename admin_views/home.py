"""Hjem: the landing page after login — the bureau's to-do list, its numbers and a year of billing.

The view-model comes from services/home.py; this module turns each item into a link to the grid and filter that
show exactly its rows. A link is offered only when the user may open that grid (its view's ``is_accessible``):
otherwise Hjem shows the count without a link. Today every grid Hjem links to is open to all staff (the Utboks
grid too: only an e-mail's text is for administrators, and Hjem shows no text).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_babel import gettext as _
from flask_login import current_user

from admin_views.base import deny_access, parse_id, staff_can_use_admin
from admin_views.labels import ALERT_KIND, alert_details
from extensions import db
from models import STATUS_KINDS, OutboxStatus, utcnow
from services import alerts, home
from services.formats import format_day, format_money, format_month, format_number


def _view(endpoint: str) -> Any:
    for admin in current_app.extensions.get("admin", []):
        for view in admin._views:
            if view.endpoint == endpoint:
                return view
    return None


def grid_link(endpoint: str, *filters: tuple[type, str, str], **args: Any) -> str | None:
    """The grid's URL with its filters set, or None when the grid is missing or the user may not open it.

    A filter is named by its class and column (``(EffectiveStatusFilter, "status", "active")``), so the link finds
    the filter's place in the grid rather than hard-coding Flask-Admin's ``flt0_<index>``.
    """
    view = _view(endpoint)
    if view is None or not view.is_accessible():
        return None
    for number, (kind, column, value) in enumerate(filters):
        index = next(
            (
                i
                for i, flt in enumerate(getattr(view, "_filters", None) or [])
                if type(flt) is kind and getattr(flt.column, "key", None) == column
            ),
            None,
        )
        if index is None:
            return None
        args[f"flt{number}_{index}"] = value
    return url_for(f"{endpoint}.index_view" if hasattr(view, "index_view") else f"{endpoint}.index", **args)


def _count_text(count: home.Count) -> str:
    return format_number(count.value) + ("+" if count.more else "")


def _days_since(moment, now) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((now - moment).days, 0)


def _todo_links() -> dict[str, str | None]:
    from flask_admin.contrib.sqla.filters import BooleanEqualFilter, FilterEqual

    from admin_views.alerts import AlertStateFilter
    from admin_views.people import EffectiveStatusFilter, ExpiresWithinFilter, InvitationFilter

    return {
        "consent_pending": grid_link("clients", (FilterEqual, "consent_status", "pending")),
        "consent_declined": grid_link("clients", (FilterEqual, "consent_status", "declined")),
        "expiring": grid_link(
            "users",
            (EffectiveStatusFilter, "status", "active"),
            (ExpiresWithinFilter, "end_date", str(home.EXPIRING_DAYS)),
        ),
        "invitations_waiting": grid_link("users", (InvitationFilter, "invitation_sent_at", InvitationFilter.WAITING)),
        "invitations_expired": grid_link("users", (InvitationFilter, "invitation_sent_at", InvitationFilter.EXPIRED)),
        "outbox_failed": grid_link("outbox", (FilterEqual, "status", OutboxStatus.FAILED.value)),
        "outbox_held": grid_link("outbox", (FilterEqual, "status", OutboxStatus.HELD.value)),
        "jobs_running": grid_link("jobs", status="running"),
        "jobs_failed": grid_link("jobs", status="failed", days=home.failed_job_days()),
        "clients": grid_link("clients"),
        "demo_clients": grid_link("clients", (BooleanEqualFilter, "is_demo", "1")),
        "active_users": grid_link("users", (EffectiveStatusFilter, "status", "active")),
        "billing": grid_link("billing"),
        "alerts": grid_link("alerts", (AlertStateFilter, "acknowledged_at", "open")),
    }


def home_view_model() -> dict[str, Any]:
    now = utcnow()
    page = home.build_home(db.session, db.engine, current_user.bureau_id, now=now)
    links = _todo_links()
    days, job_days = page.invitation_days, page.failed_job_days
    labels = {
        "consent_pending": _("Clients waiting for GDPR consent"),
        "consent_declined": _("Clients that declined GDPR consent"),
        "expiring": _("Users whose end date is within %(days)s days", days=home.EXPIRING_DAYS),
        "invitations_waiting": _("Invitations not accepted after %(days)s days", days=days),
        "invitations_expired": _("Invitations expired"),
        "outbox_failed": _("E-mails that failed"),
        "outbox_held": _("E-mails held (no mail server)"),
        "jobs_running": _("Jobs running"),
        "jobs_failed": _("Jobs failed in the last %(days)s days", days=job_days),
    }
    todos = []
    for key, todo in page.todos.items():
        rows = []
        for row in todo.rows:
            if key == "consent_pending":
                age = _days_since(row.consent_requested_at, now)
                rows.append(
                    {
                        "label": row.name,
                        "url": url_for("clients.manage_view", id=row.id),
                        "note": _("asked %(days)s day(s) ago", days=age) if age is not None else "",
                    }
                )
            elif key == "expiring":
                rows.append(
                    {
                        "label": f"{row.person.full_name} ({row.person.client.name})",
                        "url": url_for("users.details_view", id=row.id),
                        "note": _("ends %(day)s", day=format_day(row.end_date)),
                    }
                )
            elif key == "invitations_waiting":
                age = _days_since(row.invitation_sent_at, now)
                rows.append(
                    {
                        "label": f"{row.person.full_name} ({row.person.client.name})",
                        "url": url_for("users.details_view", id=row.id),
                        "note": _("sent %(days)s day(s) ago", days=age),
                    }
                )
        todos.append(
            {
                "key": key,
                "label": labels[key],
                "count": todo.count.value,
                "count_text": _count_text(todo.count),
                "url": links[key],
                "rows": rows,
            }
        )
    totals = page.month_totals
    summary = totals.summary
    numbers = [
        {"key": "clients", "label": _("Clients"), "value": format_number(page.counters.clients)},
        {"key": "demo_clients", "label": _("of which demo"), "value": format_number(page.counters.demo_clients)},
        {"key": "active_users", "label": _("Active users"), "value": format_number(page.counters.active_users)},
        {
            "key": "billable_users",
            "label": _("Billable users this month"),
            "value": format_number(summary.users) if summary else "…",
        },
        {
            "key": "billing_amount",
            "label": _("Billing so far this month"),
            "value": format_money(summary.amount) if summary else "…",
        },
    ]
    for number in numbers:
        number["url"] = links.get(number["key"]) or (
            links["billing"] if number["key"] in ("billable_users", "billing_amount") else None
        )
    state_labels = {
        "closed": _("closed"),
        "open": _("not closed"),
        "running": _("so far"),
        "none": _("no figures"),
    }
    geometry = home.chart_geometry(page.chart)
    months = [
        {
            **shape,
            "month": format_month(shape["bar"].period),
            "short": format_month(shape["bar"].period, short=True),
            "users": "–" if shape["bar"].users is None else format_number(shape["bar"].users),
            "amount": "–" if shape["bar"].amount is None else format_money(shape["bar"].amount),
            "state": shape["bar"].state,
            "state_label": state_labels[shape["bar"].state],
        }
        for shape in geometry["shapes"]
    ]
    alert_rows = [
        {
            "id": alert.id,
            "client": alert.client_name,
            "org_number": alert.org_number or "",
            "kind": str(ALERT_KIND.get(alert.kind, alert.kind.value)),
            "status_kind": alert.kind in STATUS_KINDS,
            "details": alert_details(alert.kind, alert.details),
            "seen": format_day(alert.seen_at),
            "client_url": url_for("clients.manage_view", id=alert.client_id),
        }
        for alert in page.alerts
    ]
    return {
        "alerts": alert_rows,
        "alert_count": _count_text(page.alert_count),
        "alerts_more": page.alert_count.value > len(alert_rows),
        "alerts_url": links["alerts"],
        "todos": todos,
        "numbers": numbers,
        "month": format_month(page.month),
        "billing_waiting": totals.waiting,
        "billing_url": links["billing"],
        "chart": geometry,
        "months": months,
        "top_amount": format_money(geometry["top_amount"]),
        "top_users": format_number(geometry["top_users"]),
    }


class HomeView(AdminIndexView):
    """The start page; like every admin page it needs a logged-in staff member."""

    def is_accessible(self) -> bool:
        return staff_can_use_admin()

    def inaccessible_callback(self, name, **kwargs):
        return deny_access()

    @expose()
    def index(self):
        return self.render("admin/index.html", home=home_view_model())

    @expose("/alerts/acknowledge/", methods=("POST",))
    def acknowledge(self):
        """ "Kvitter ut" from Hjem: one open alert of the user's own bureau; a second submit, an alert of another
        bureau or a bad id changes nothing (services/alerts.acknowledge passes them over)."""
        key = parse_id(request.form.get("alert_id"))
        if key is None:
            flash(_("That is not a register alert."), "error")
            return redirect(url_for(".index"))
        done = alerts.acknowledge(db.session, current_user.bureau_id, [key], current_user._get_current_object())
        db.session.commit()
        if done:
            flash(_("The alert is acknowledged."), "success")
        else:
            flash(_("The alert was already acknowledged, or is not one of this bureau's."), "info")
        return redirect(url_for(".index"))
