"""Hjem: the bureau's to-do list and overview, as one view-model built from bounded queries.

Every to-do item is a count read from an index with ``LIMIT`` (at most ``CAP`` rows: beyond that Hjem says "999+")
and, where it helps, the first few rows; every item names the grid and filter that show exactly the rows it counts
(admin_views/__init__.py builds the links). The criteria live here, and the grid filters that the links open call the
same functions, so the count and the grid cannot drift apart.

The numbers are kept, never counted: clients and active users from ``bureau_counters`` (models/counters.py, kept
by triggers), this month's billing from the kept totals of issue 7 (services/billing_totals.py), past months from
their closed snapshots (services/billing_close.py) or, for a month not closed yet, from its kept totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import ColumnElement, and_, func, literal_column, or_, select
from sqlalchemy.orm import Session, joinedload

from models import (
    BillingMonth,
    BillingTotal,
    BureauCounter,
    Client,
    Job,
    JobStatus,
    OutboxMessage,
    OutboxStatus,
    Person,
    RegistryAlert,
    User,
    utcnow,
)
from services import alerts, billing, billing_totals
from services.archive import is_live
from services.links import LinkKind, link_lifetime

CAP = 999  # a to-do count stops here: "999+"
SHOWN = 5  # rows listed under an item
ALERTS_SHOWN = 10
EXPIRING_DAYS = 30
CHART_MONTHS = 12
OVERDUE_CAP = 10_000  # active users past their end date, not blocked yet (the daily job blocks them)

# Written as SQL literals, not bound parameters: SQLite uses a partial index only when the query's terms name its
# condition's values (``status = 'active'``), which a ``?`` does not.
_ACTIVE = literal_column("'active'")
_INVITED = literal_column("'invited'")
_PENDING = literal_column("'pending'")
_DECLINED = literal_column("'declined'")


def setting(name: str, default: int) -> int:
    value = current_app.config.get(name) if has_app_context() else None
    return int(value) if value not in (None, "") else default


def invitation_waiting_days() -> int:
    """After how many days an invitation not accepted shows on Hjem (``INVITATION_WAITING_DAYS``, default 3)."""
    return setting("INVITATION_WAITING_DAYS", 3)


def failed_job_days() -> int:
    """How long a failed job stays on Hjem (``HOME_FAILED_JOB_DAYS``, default 7)."""
    return setting("HOME_FAILED_JOB_DAYS", 7)


# --- the criteria (Hjem and the grid filters alike) ---------------------------------------------------------------


def _open_invitation() -> ColumnElement[bool]:
    """Sent to an invited user and not accepted (the partial index ``ix_users_invitation_open``)."""
    return and_(User.status == _INVITED, User.accepted_at.is_(None), User.invitation_sent_at.is_not(None))


def invitation_waiting_clause(now: datetime, days: int | None = None) -> ColumnElement[bool]:
    """Invitations still valid (``User.invitation_state`` SENT or DELIVERED) and sent at least ``days`` ago."""
    days = invitation_waiting_days() if days is None else days
    lifetime = link_lifetime(LinkKind.INVITATION)
    return and_(
        _open_invitation(),
        User.invitation_nonce.is_not(None),
        User.invitation_sent_at >= now - lifetime,
        User.invitation_sent_at <= now - timedelta(days=days),
        or_(User.end_date.is_(None), User.end_date >= now.date()),
    )


def invitation_expired_clause(now: datetime) -> ColumnElement[bool]:
    """Invitations of invited users that can no longer be accepted (``User.invitation_state`` EXPIRED)."""
    lifetime = link_lifetime(LinkKind.INVITATION)
    return and_(
        _open_invitation(),
        or_(
            User.invitation_nonce.is_(None),
            User.invitation_sent_at < now - lifetime,
            User.end_date < now.date(),
        ),
    )


def expiring_clause(today: date, days: int = EXPIRING_DAYS) -> ColumnElement[bool]:
    """Active users whose end date is today or within ``days`` days (the users grid's "Expires" and "Status")."""
    return and_(
        User.status == _ACTIVE,
        User.end_date.is_not(None),
        User.end_date >= today,
        User.end_date <= today + timedelta(days=days),
    )


def failed_jobs_clause(now: datetime, days: int | None = None) -> ColumnElement[bool]:
    days = failed_job_days() if days is None else days
    return and_(Job.status == JobStatus.FAILED, Job.created_at >= now - timedelta(days=days))


# --- counts --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    value: int
    more: bool = False  # beyond CAP

    def __bool__(self) -> bool:
        return self.value > 0


def capped_count(session: Session, query, cap: int = CAP) -> Count:
    """How many rows ``query`` (a select of one column) gives, reading at most ``cap + 1`` of them."""
    found = session.scalar(select(func.count()).select_from(query.limit(cap + 1).subquery()))
    return Count(min(found, cap), found > cap)


@dataclass(frozen=True)
class Counters:
    clients: int
    demo_clients: int
    active_users: int


def kept_counters(session: Session, bureau_id: int, today: date) -> Counters:
    """The bureau's kept counts; active users less those past their end date that the daily job has not blocked."""
    row = session.execute(
        select(
            func.coalesce(func.sum(BureauCounter.clients), 0),
            func.coalesce(func.sum(BureauCounter.demo_clients), 0),
            func.coalesce(func.sum(BureauCounter.active_users), 0),
        ).where(BureauCounter.bureau_id == bureau_id)
    ).one()
    overdue = capped_count(
        session,
        select(User.id).where(
            User.bureau_id == bureau_id,
            User.status == _ACTIVE,
            User.end_date.is_not(None),
            User.end_date < today,
            User.archived_at.is_(None),
        ),
        cap=OVERDUE_CAP,
    )
    return Counters(int(row[0]), int(row[1]), int(row[2]) - overdue.value)


def exact_counts(session: Session, bureau_id: int, today: date) -> Counters:
    """The same numbers counted from the rows (tests compare the kept counters with this; never on a page)."""
    clients = session.scalar(
        select(func.count()).select_from(Client).where(Client.bureau_id == bureau_id, is_live(Client))
    )
    demo = session.scalar(
        select(func.count())
        .select_from(Client)
        .where(Client.bureau_id == bureau_id, is_live(Client), Client.is_demo.is_(True))
    )
    active = session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.bureau_id == bureau_id,
            is_live(User),
            User.status == _ACTIVE,
            or_(User.end_date.is_(None), User.end_date >= today),
        )
    )
    return Counters(clients, demo, active)


# --- the page -----------------------------------------------------------------------------------------------------


@dataclass
class Todo:
    """One line of the to-do list: its count, the first rows, and which grid filter shows exactly those rows."""

    key: str
    count: Count
    rows: list[Any] = field(default_factory=list)
    oldest: datetime | None = None


@dataclass
class MonthBar:
    period: str
    users: int | None
    amount: Decimal | None
    state: str  # "closed", "open" (past, not closed: kept totals), "running" (so far), "none" (no figures)


@dataclass
class Home:
    alerts: list[RegistryAlert]
    alert_count: Count
    todos: dict[str, Todo]
    counters: Counters
    month: str
    month_totals: billing_totals.MonthTotals
    chart: list[MonthBar]
    invitation_days: int
    failed_job_days: int


def _periods(today: date, months: int = CHART_MONTHS) -> list[str]:
    year, month = today.year, today.month
    found = []
    for _ in range(months):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(found))


def chart_months(session: Session, bureau_id: int, today: date, running: billing.Summary | None) -> list[MonthBar]:
    """The last twelve months: closed ones from their snapshot's totals, past open ones from their kept totals
    (when computed), the running month from its kept totals so far. Two indexed reads of at most twelve rows."""
    periods = _periods(today)
    closed = {
        row.period: row
        for row in session.execute(
            select(BillingMonth.period, BillingMonth.users, BillingMonth.amount).where(
                BillingMonth.bureau_id == bureau_id, BillingMonth.period.in_(periods)
            )
        )
    }
    kept = {
        row.period: row
        for row in session.execute(
            select(BillingTotal.period, BillingTotal.users, BillingTotal.amount_ore).where(
                BillingTotal.bureau_id == bureau_id,
                BillingTotal.period.in_(periods[:-1]),
                BillingTotal.computed_at.is_not(None),
            )
        )
    }
    bars = []
    for period in periods:
        if period in closed:
            row = closed[period]
            bars.append(MonthBar(period, row.users, Decimal(row.amount), "closed"))
        elif period == periods[-1]:
            bars.append(
                MonthBar(period, running.users, running.amount, "running")
                if running is not None
                else MonthBar(period, None, None, "none")
            )
        elif period in kept:
            row = kept[period]
            amount = (Decimal(row.amount_ore) / 100).quantize(Decimal("0.01"))
            bars.append(MonthBar(period, row.users, amount, "open"))
        else:
            bars.append(MonthBar(period, None, None, "none"))
    return bars


def build_home(session: Session, engine, bureau_id: int, *, now: datetime | None = None) -> Home:
    """Everything Hjem shows for a bureau: each query bounded by an index and a LIMIT, or a kept number."""
    now = now or utcnow()
    today = now.astimezone(UTC).date() if now.tzinfo else now.date()
    todos: dict[str, Todo] = {}

    pending = select(Client).where(
        Client.bureau_id == bureau_id, Client.consent_status == _PENDING, Client.archived_at.is_(None)
    )
    todos["consent_pending"] = Todo(
        "consent_pending",
        capped_count(session, pending.with_only_columns(Client.id)),
        list(session.scalars(pending.order_by(Client.consent_requested_at, Client.id).limit(SHOWN))),
    )
    declined = select(Client.id).where(
        Client.bureau_id == bureau_id, Client.consent_status == _DECLINED, Client.archived_at.is_(None)
    )
    todos["consent_declined"] = Todo("consent_declined", capped_count(session, declined))

    users = (
        select(User)
        .join(User.person)
        .where(User.bureau_id == bureau_id, is_live(User))
        .options(joinedload(User.person).joinedload(Person.client))
    )
    expiring = users.where(expiring_clause(today))
    todos["expiring"] = Todo(
        "expiring",
        capped_count(session, expiring.with_only_columns(User.id)),
        list(session.scalars(expiring.order_by(User.end_date, User.id).limit(SHOWN))),
    )
    days = invitation_waiting_days()
    waiting = users.where(invitation_waiting_clause(now, days))
    todos["invitations_waiting"] = Todo(
        "invitations_waiting",
        capped_count(session, waiting.with_only_columns(User.id)),
        list(session.scalars(waiting.order_by(User.invitation_sent_at, User.id).limit(SHOWN))),
    )
    expired = select(User.id).where(User.bureau_id == bureau_id, is_live(User), invitation_expired_clause(now))
    todos["invitations_expired"] = Todo("invitations_expired", capped_count(session, expired))

    for status in (OutboxStatus.FAILED, OutboxStatus.HELD):
        query = select(OutboxMessage.id).where(OutboxMessage.bureau_id == bureau_id, OutboxMessage.status == status)
        todos[f"outbox_{status.value}"] = Todo(f"outbox_{status.value}", capped_count(session, query))

    running = select(Job.id).where(Job.bureau_id == bureau_id, Job.status == JobStatus.RUNNING)
    todos["jobs_running"] = Todo("jobs_running", capped_count(session, running))
    job_days = failed_job_days()
    failed = select(Job.id).where(Job.bureau_id == bureau_id, failed_jobs_clause(now, job_days))
    todos["jobs_failed"] = Todo("jobs_failed", capped_count(session, failed))

    alert_count = capped_count(session, alerts.open_alerts_query(bureau_id).with_only_columns(RegistryAlert.id))
    open_alerts = alerts.open_alerts(session, bureau_id, limit=ALERTS_SHOWN)

    counters = kept_counters(session, bureau_id, today)
    period = billing.Period.parse(today.strftime("%Y-%m"))
    totals = billing_totals.month_totals(session, engine, bureau_id, period)
    chart = chart_months(session, bureau_id, today, totals.summary)
    return Home(
        alerts=open_alerts,
        alert_count=alert_count,
        todos=todos,
        counters=counters,
        month=str(period),
        month_totals=totals,
        chart=chart,
        invitation_days=days,
        failed_job_days=job_days,
    )


# --- the chart as SVG geometry (the template draws it) --------------------------------------------------------------

CHART_WIDTH = 360
CHART_HEIGHT = 190
PLOT_TOP = 16
PLOT_BOTTOM = 160
PLOT_LEFT = 6
PLOT_RIGHT = 354


def _nice_ceiling(value: Decimal | int) -> Decimal:
    """The axis' top: 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    value = Decimal(value)
    if value <= 1:
        return Decimal(1)
    step = Decimal(10) ** (len(str(int(value))) - 1)
    for factor in (1, 2, 5, 10):
        if value <= factor * step:
            return factor * step
    return 10 * step


def chart_geometry(bars: list[MonthBar]) -> dict[str, Any]:
    """Bar rectangles for the amounts and a line of points for the users, in the SVG's own coordinates."""
    top_amount = _nice_ceiling(max((bar.amount or 0 for bar in bars), default=0))
    top_users = _nice_ceiling(max((bar.users or 0 for bar in bars), default=0))
    height = PLOT_BOTTOM - PLOT_TOP
    slot = (PLOT_RIGHT - PLOT_LEFT) / max(len(bars), 1)
    shapes = []
    for index, bar in enumerate(bars):
        x = PLOT_LEFT + index * slot
        bar_height = float((bar.amount or 0) / top_amount) * height
        users_y = None if bar.users is None else PLOT_BOTTOM - float(Decimal(bar.users) / top_users) * height
        shapes.append(
            {
                "bar": bar,
                "x": round(x + slot * 0.15, 1),
                "width": round(slot * 0.7, 1),
                "y": round(PLOT_BOTTOM - bar_height, 1),
                "height": round(bar_height, 1),
                "center": round(x + slot / 2, 1),
                "users_y": None if users_y is None else round(users_y, 1),
            }
        )
    points = " ".join(f"{s['center']},{s['users_y']}" for s in shapes if s["users_y"] is not None)
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "top": PLOT_TOP,
        "bottom": PLOT_BOTTOM,
        "left": PLOT_LEFT,
        "right": PLOT_RIGHT,
        "middle": round((PLOT_TOP + PLOT_BOTTOM) / 2, 1),
        "shapes": shapes,
        "points": points,
        "top_amount": top_amount,
        "top_users": top_users,
    }
