"""Fakturagrunnlag: the billing basis page, its downloads, and the per-client package overview (Pakker tab)."""

from __future__ import annotations

import io
import logging
import tempfile
from contextlib import closing
from datetime import date
from decimal import Decimal
from itertools import islice

from flask import abort, flash, redirect, request, send_file, url_for
from flask_admin import BaseView, expose
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from admin_views.base import deny_access, parse_id, staff_can_use_admin
from admin_views.jobs import redirect_to_job
from admin_views.labels import PACKAGE_KIND
from extensions import db
from models import BillingMonth, Client, PackageKind
from services import billing, billing_totals, policy
from services.billing_close import can_close, refuse_open_month
from services.errors import DomainError
from services.formats import format_day, format_moment, format_money, format_month, format_number

log = logging.getLogger(__name__)


def parse_period(text: str | None) -> billing.Period:
    if not text:
        return billing.Period.previous_month(date.today())
    try:
        return billing.Period.parse(text)
    except ValueError:
        abort(400)


def selected_clients() -> list[int] | None:
    """The clients chosen in the client grid (?client=ID…), only those of the current bureau."""
    raw = request.args.getlist("client")
    if not raw:
        return None
    ids = [key for key in map(parse_id, raw) if key is not None]
    return list(
        db.session.scalars(select(Client.id).where(Client.id.in_(ids), Client.bureau_id == current_user.bureau_id))
    )


def export_response(
    *, bureau_id: int, period: billing.Period, dialect: billing.Dialect, detail: bool, client_ids, filename: str
):
    """The CSV file of the billing basis in the dialect."""

    def write(spool) -> None:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
        try:
            billing.export(
                db.engine,
                text,
                bureau_id=bureau_id,
                period=period,
                dialect=dialect,
                detail=detail,
                client_ids=client_ids,
            )
            text.flush()
        finally:
            text.detach()  # the spool stays open for sending

    return _file_response(write, mimetype="text/csv", content_type="text/csv; charset=utf-8", filename=filename)


def xlsx_response(*, bureau_id: int, period: billing.Period, detail: bool, client_ids, filename: str):
    """The XLSX workbook of the billing basis."""

    def write(spool) -> None:
        billing.export_xlsx(db.engine, spool, bureau_id=bureau_id, period=period, detail=detail, client_ids=client_ids)

    back = url_for("billing.index", period=str(period), client=client_ids or [])
    return _file_response(write, mimetype=XLSX_MIMETYPE, content_type=XLSX_MIMETYPE, filename=filename, back=back)


XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _file_response(write, *, mimetype: str, content_type: str, filename: str, back: str | None = None):
    """Build the whole file first (on disk past 8 MB), then send it with its length: never a silent half file.

    A refusal (e.g. more lines than an Excel sheet holds) goes back to ``back`` with its reason.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b")
    try:
        write(spool)
        spool.seek(0, io.SEEK_END)
        size = spool.tell()
        spool.seek(0)
    except DomainError as exc:
        spool.close()
        if back is None:
            return str(exc), 422, {"Content-Type": "text/plain; charset=utf-8"}
        flash(str(exc), "error")
        return redirect(back)
    except Exception:
        log.exception("Billing export failed")
        spool.close()
        return (
            _(
                "The export failed and no file was made. Nothing was sent; try again, and tell support if it fails again."
            ),
            500,
            {"Content-Type": "text/plain; charset=utf-8"},
        )
    response = send_file(spool, mimetype=mimetype, as_attachment=True, download_name=filename)
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Type"] = content_type
    return response


def export_filename(period: billing.Period, dialect: billing.Dialect | None, detail: bool, suffix: str = "") -> str:
    """fakturagrunnlag-2026-10.csv, detaljer-2026-10-excel.csv, fakturagrunnlag-2026-10.xlsx (dialect None)."""
    kind = "detaljer" if detail else "fakturagrunnlag"
    if dialect is None:
        return f"{kind}-{period}{suffix}.xlsx"
    return f"{kind}-{period}{suffix}{'-excel' if dialect is billing.Dialect.EXCEL_NO else ''}.csv"


class BillingView(BaseView):
    """Fakturagrunnlag: choose a month, see the summary, download the file."""

    def is_accessible(self) -> bool:
        return staff_can_use_admin()

    def inaccessible_callback(self, name, **kwargs):
        return deny_access()

    @expose("/")
    def index(self):
        period = parse_period(request.args.get("period"))
        client_ids = selected_clients()
        bureau_id = current_user.bureau_id
        kept = None
        if client_ids is None and billing.closed_month(db.session.connection(), bureau_id, period) is None:
            # An open month's totals are kept by the worker (services/billing_totals.py): no scan of the month.
            kept = billing_totals.month_totals(db.session, db.engine, bureau_id, period)
        with billing.snapshot(db.engine) as conn:
            # A closed month comes from its snapshot: the stored totals and its first 200 lines, no live scan.
            month = billing.closed_month(conn, bureau_id, period)
            if month is not None or kept is None:
                # closed: the stored totals; chosen clients: computed for just those clients
                summary = billing.basis_summary(conn, bureau_id, period, client_ids)
            else:
                summary = kept.summary
            if month is not None:
                rows = billing.basis_rows(conn, bureau_id, period, billing.Dialect.STANDARD, client_ids=client_ids)
                with closing(rows):
                    preview = list(islice(rows, 200))  # the page shows 200; the file has them all
            else:
                preview = billing_totals.preview_rows(conn, bureau_id, period, client_ids)
        return self.render(
            "admin/billing.html",
            period=period,
            summary=summary,
            kept=_kept_context(kept) if kept is not None and month is None else None,
            preview=[preview_line(row) for row in preview],
            header=PREVIEW_HEADER,
            numeric=PREVIEW_NUMERIC,
            client_ids=client_ids or [],
            months=_recent_months(),
            closed={"at": format_moment(month.closed_at), "by": month.closed_by_label} if month else None,
            month_states=_month_states(bureau_id),
            may_close=month is None
            and can_close(period, date.today())
            and policy.can(db.session, current_user, policy.Verb.BILLING_CLOSE),
        )

    @expose("/close/", methods=("POST",))
    def close(self):
        """Close the chosen past month for good (administrators; the form asks for a tick to confirm).

        The checks answer at once; the close itself runs as a job (a big bureau's month takes minutes to store),
        and a second submit while one is queued or running finds that job instead of queueing another.
        """
        period = parse_period(request.form.get("period"))
        try:
            policy.check(db.session, current_user, policy.Verb.BILLING_CLOSE)
            if request.form.get("confirm") != "1":
                raise DomainError(_("Tick the box to confirm that %(month)s is to be closed.", month=str(period)))
            refuse_open_month(period, date.today())
            if billing.closed_month(db.session.connection(), current_user.bureau_id, period) is not None:
                flash(_("%(month)s was already closed; nothing changed.", month=str(period)), "info")
                return redirect(url_for(".index", period=str(period)))
            job = queue_billing_close(period)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        except Exception:  # noqa: BLE001 - a database failure becomes a sentence; the detail goes to the log
            db.session.rollback()
            log.exception("Queueing the close of billing month %s failed", period)
            flash(_("Something went wrong and nothing was saved. Please try again."), "error")
        else:
            return redirect_to_job(job)
        return redirect(url_for(".index", period=str(period)))

    @expose("/download/")
    def download(self):
        period = parse_period(request.args.get("period"))
        try:
            dialect = billing.Dialect(request.args.get("dialect", "standard"))
        except ValueError:
            abort(400)
        detail = request.args.get("detail") == "1"
        return export_response(
            bureau_id=current_user.bureau_id,
            period=period,
            dialect=dialect,
            detail=detail,
            client_ids=selected_clients(),
            filename=export_filename(period, dialect, detail),
        )

    @expose("/download/xlsx/")
    def download_xlsx(self):
        """The billing basis (or the details per user) as an Excel workbook with number cells."""
        period = parse_period(request.args.get("period"))
        detail = request.args.get("detail") == "1"
        return xlsx_response(
            bureau_id=current_user.bureau_id,
            period=period,
            detail=detail,
            client_ids=selected_clients(),
            filename=export_filename(period, None, detail),
        )


def queue_billing_close(period: billing.Period):
    """The close as a job of one row (the month), or the job already queued or running for it."""
    from models import JobKind
    from services.jobs import active_job, create_job

    bureau_id = current_user.bureau_id
    job = active_job(db.session, bureau_id, JobKind.BILLING_CLOSE, period=str(period))
    if job is None:
        job = create_job(
            db.session,
            bureau_id=bureau_id,
            kind=JobKind.BILLING_CLOSE,
            actor=current_user._get_current_object(),
            title=_("Close %(month)s", month=str(period)),
            rows=[{"period": str(period)}],
            columns=("period",),
            parameters={"period": str(period)},
        )
        db.session.commit()
    return job


# The preview's columns: the summary file's, in the user's language (the file keeps its code names).
PREVIEW_HEADER = (
    _l("Month"),
    _l("Organisation number"),
    _l("Client"),
    _l("Package code"),
    _l("Package"),
    _l("Kind"),
    _l("Users"),
    _l("Unit price"),
    _l("Amount"),
)
PREVIEW_NUMERIC = (False, False, False, False, False, False, True, True, True)


def kind_label(code: str) -> str:
    """A package kind as the UI names it (Hovedpakke / Tilleggspakke), from its code in the file."""
    try:
        return str(PACKAGE_KIND[PackageKind(code)])
    except ValueError:
        return code


def preview_line(row: list[str]) -> list[str]:
    """A line of the summary file (standard dialect) as the page shows it: kind, count and amounts formatted."""
    period, org_number, client_name, code, name, kind, users, unit_price, amount = row
    return [
        format_month(period),
        org_number,
        client_name,
        code,
        name,
        kind_label(kind),
        format_number(int(users)),
        format_money(Decimal(unit_price)),
        format_money(Decimal(amount)),
    ]


def _kept_context(kept: billing_totals.MonthTotals) -> dict:
    """What the page says about kept totals: when they were refreshed, and how many changes wait."""
    waiting = kept.waiting
    return {
        "computed": kept.summary is not None,
        "at": format_datetime(kept.computed_at, "HH:mm") if kept.computed_at else "",
        "day": format_day(kept.computed_at) if kept.computed_at else "",
        "waiting": waiting,
        "waiting_text": str(waiting) if waiting <= billing_totals.WAITING_SHOWN else f"{billing_totals.WAITING_SHOWN}+",
    }


def _recent_months(count: int = 13) -> list[str]:
    today = date.today().replace(day=1)
    months = []
    year, month = today.year, today.month
    for _step in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months


def _month_states(bureau_id: int) -> list[dict]:
    """Each recent month: open, or closed when and by whom."""
    months = _recent_months()
    closed = {
        month.period: month
        for month in db.session.scalars(
            select(BillingMonth).where(BillingMonth.bureau_id == bureau_id, BillingMonth.period.in_(months))
        )
    }
    states = []
    for period in months:
        month = closed.get(period)
        states.append(
            {
                "period": period,
                "state": _("Closed") if month else _("Not closed"),
                "label": format_month(period),
                "closed_at": format_moment(month.closed_at) if month else "",
                "closed_by": month.closed_by_label if month else "",
            }
        )
    return states


def redirect_to_export(client_ids: list[int]):
    """From the client grid's bulk action to the export page for exactly those clients."""
    if not client_ids:
        flash(_("Choose at least one client."), "error")
        return redirect(url_for("clients.index_view"))
    return redirect(url_for("billing.index", client=client_ids))


def packages_context(client: Client) -> dict:
    """The Pakker tab: each package on the client, users holding it now, and this month's billing.

    The lines are this month's billing basis (the same lines as the file), with the amounts as numbers for the
    template's ``money`` filter.
    """
    from services.packages import client_holders_today

    month = billing.Period.parse(date.today().strftime("%Y-%m"))
    holders = client_holders_today(db.session, client.id)
    with billing.snapshot(db.engine) as conn:
        rows = list(billing.basis_rows(conn, client.bureau_id, month, billing.Dialect.STANDARD, client_ids=[client.id]))
    billed = {row[3].lstrip("'"): _package_line(row) for row in rows}
    held_codes = {package.code for package, _users in holders}
    lines = [
        {
            "name": package.name,
            "code": package.code,
            "kind": str(PACKAGE_KIND.get(package.kind, package.kind)),
            "users_now": users_now,
            "billed_users": billed[package.code]["billed_users"] if package.code in billed else 0,
            "unit_price": billed[package.code]["unit_price"] if package.code in billed else package.price,
            "amount": billed[package.code]["amount"] if package.code in billed else Decimal("0"),
        }
        for package, users_now in holders
    ] + [{**line, "users_now": 0} for code, line in billed.items() if code not in held_codes]
    return {
        "package_month": month,
        "package_rows": lines,
        "package_total": sum((line["amount"] for line in billed.values()), Decimal("0")),
        "billed_client": billing.is_billed_client(client),
    }


def _package_line(row: list[str]) -> dict:
    """A line of this month's summary file (standard dialect) as the Pakker tab's values."""
    return {
        "name": row[4],
        "code": row[3],
        "kind": kind_label(row[5]),
        "billed_users": int(row[6]),
        "unit_price": Decimal(row[7]),
        "amount": Decimal(row[8]),
    }
