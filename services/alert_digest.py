"""The daily e-mail of new register alerts to each bureau's administrators (``ALERT_DIGEST=daily``), via the outbox.

Once a day, from ``DIGEST_HOUR`` (Europe/Oslo) on, the outbox worker claims the day's turn on the watch's row (a
compare-and-set on ``last_digest_at``, so two workers never both send it) and, in the same transaction, marks every
alert no digest has named yet (``digested_at``) and queues one e-mail per active administrator of each bureau that
has new open alerts. An alert is in at most one digest: it is marked in the transaction that queues the e-mail,
and a failure rolls both back. Alerts acknowledged before the digest went out are marked but not listed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from admin_views.labels import ALERT_KIND, alert_details
from models import Bureau, Person, RegistryAlert, RegistryWatchState, User
from models.base import utcnow
from services.outbox import enqueue_email, public_url
from services.policy import active_admin_clause
from services.registry_watch import STATE_ID, _ensure_state

OSLO = ZoneInfo("Europe/Oslo")
DIGEST_HOUR = 7
# An e-mail names at most this many alerts; the rest are counted, and the link opens them all.
MAX_LISTED = 50
KIND = "alert_digest"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def digest_due(last: datetime | None, now: datetime) -> bool:
    """Whether today's digest (Europe/Oslo) is still to go out: from DIGEST_HOUR on, once per day."""
    local = _aware(now).astimezone(OSLO)
    if local.hour < DIGEST_HOUR:
        return False
    return last is None or _aware(last).astimezone(OSLO).date() < local.date()


def send_digests_if_due(session: Session, now: datetime | None = None) -> int:
    """Send today's digests if it is their time and no other worker has; the number of e-mails queued."""
    now = now or utcnow()
    _ensure_state(session)
    state = RegistryWatchState
    last = session.scalar(select(state.last_digest_at).where(state.id == STATE_ID))
    if not digest_due(last, now):
        session.commit()
        return 0
    same = state.last_digest_at.is_(None) if last is None else state.last_digest_at == last
    claimed = session.execute(
        update(state)
        .where(state.id == STATE_ID, same)
        .values(last_digest_at=now, version=state.version + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        session.rollback()
        return 0
    try:
        sent = send_digests(session, now)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return sent


def send_digests(session: Session, now: datetime, today: date | None = None) -> int:
    """Mark every undigested alert and queue the e-mails, in the caller's transaction; the e-mails queued."""
    marked = session.execute(
        update(RegistryAlert)
        .where(RegistryAlert.digested_at.is_(None))
        .values(digested_at=now, version=RegistryAlert.version + 1)
        .returning(RegistryAlert.id, RegistryAlert.bureau_id)
        .execution_options(synchronize_session=False)
    ).all()
    by_bureau: dict[int, list[int]] = defaultdict(list)
    for alert_id, bureau_id in marked:
        by_bureau[bureau_id].append(alert_id)
    sent = 0
    locale = current_app.config.get("BABEL_DEFAULT_LOCALE") or "no"
    for bureau_id, ids in sorted(by_bureau.items()):
        alerts = session.scalars(
            select(RegistryAlert)
            .where(RegistryAlert.id.in_(ids), RegistryAlert.acknowledged_at.is_(None))
            .order_by(RegistryAlert.seen_at.desc(), RegistryAlert.id.desc())
        ).all()
        if not alerts:
            continue
        bureau = session.get(Bureau, bureau_id)
        recipients = session.scalars(
            select(Person.email)
            .select_from(User)
            .join(Person, User.person_id == Person.id)
            .where(
                User.bureau_id == bureau_id,
                active_admin_clause(today or now.astimezone(OSLO).date()),
                Person.email.is_not(None),
            )
            .order_by(User.id)
        ).all()
        for email in recipients:
            with force_locale(locale):
                subject = _("%(count)s new register alert(s) for %(bureau)s", count=len(alerts), bureau=bureau.name)
                text = render_template(
                    "email/alert_digest.txt",
                    bureau=bureau,
                    alerts=alerts[:MAX_LISTED],
                    more=max(len(alerts) - MAX_LISTED, 0),
                    url=public_url("alerts.index_view", flt0_0="open"),
                    kind_label=lambda alert: str(ALERT_KIND.get(alert.kind, alert.kind.value)),
                    details=lambda alert: alert_details(alert.kind, alert.details),
                )
            enqueue_email(session, bureau_id=bureau_id, to=email, subject=subject, text=text, kind=KIND)
            sent += 1
    session.flush()
    return sent
