"""The ``flask outbox`` commands: deliver queued e-mail once, or keep delivering it."""

from __future__ import annotations

import json
from datetime import date

import click
from flask import current_app
from flask.cli import AppGroup

from cli_users import block_expired_users
from extensions import db
from services.billing_totals import refresh_due, request_running_months
from services.outbox import deliver_due, run_worker
from services.statistics import REFRESH_EVERY, refresh_statistics
from services.submissions import FORGET_EVERY, forget_old

outbox_group = AppGroup("outbox", help="The e-mail outbox.")
# Seconds between the worker's looks at whether the daily alert digest is due.
DIGEST_CHECK_EVERY = 600.0


def housekeeping_today() -> date:
    """The worker's idea of today (a function, so that tests can move it)."""
    return date.today()


def close_billing_months() -> list[dict]:
    """Close the previous billing month of every bureau from BILLING_CLOSE_DAY on; the months closed now."""
    from services.billing_close import close_previous_months

    results = close_previous_months(
        db.session, housekeeping_today(), current_app.config["BILLING_CLOSE_DAY"], "outbox worker: billing close"
    )
    return [{"bureau_id": r.bureau_id, "period": r.period} for r in results if not r.already_closed]


def refresh_planner_statistics() -> None:
    """The worker's periodic ANALYZE, so the grids keep their index plans as the data grows."""
    with db.engine.connect() as connection:
        refresh_statistics(connection)
        connection.commit()


def forget_old_submission_tokens() -> None:
    """The worker's clean-up of used create-form tokens no form can carry any more (``services/submissions.py``)."""
    forget_old(db.session)
    db.session.commit()


def watch_registry() -> None:
    """The worker's register watch (``registry watch --once``); another worker's run in progress is no failure."""
    from services.registry_watch import WatchBusy, watch_from_app

    try:
        report = watch_from_app(current_app._get_current_object())
    except WatchBusy:
        return
    if report.updates_read:
        click.echo(json.dumps({"registry_watch": report.as_dict()}))


def send_alert_digests() -> None:
    """The daily e-mail of new register alerts to each bureau's administrators (ALERT_DIGEST=daily)."""
    from services.alert_digest import send_digests_if_due

    sent = send_digests_if_due(db.session)
    if sent:
        click.echo(json.dumps({"alert_digests": sent}))


@outbox_group.command("send")
@click.option(
    "--include-deferred",
    is_flag=True,
    help="Also retry messages waiting out a backoff, and those held while no mail server was configured.",
)
def outbox_send(include_deferred: bool) -> None:
    """Deliver the messages that are due, once; prints {"sent", "deferred", "failed", "held"} as one JSON line."""
    report = deliver_due(db.session, include_deferred=include_deferred)
    click.echo(json.dumps(report.as_dict()))


@outbox_group.command("worker")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds between passes."
)
@click.option("--max-passes", type=click.IntRange(min=1), default=None, help="Stop after this many passes.")
def outbox_worker(interval: float, max_passes: int | None) -> None:
    """Keep delivering due messages until stopped (Ctrl-C or SIGTERM); prints a JSON line per pass that did work.

    Once at start and then daily it also blocks the users past their end date (as ``users block-expired``),
    from day BILLING_CLOSE_DAY of a month on closes the previous billing month of every bureau not yet closed, and
    asks for every bureau's running and previous month's billing totals. After every pass it applies the waiting
    billing changes to the kept totals and recounts package holders (as ``billing refresh-totals``). Every few hours
    it refreshes the database's planner statistics. Every REGISTRY_WATCH_MINUTES (0: never) it runs the register
    watch (as ``registry watch --once``; one worker at a time), and with ALERT_DIGEST=daily it e-mails each bureau's
    administrators the new register alerts once a day.
    """
    click.echo(f"Outbox worker: delivering every {interval:g} s (Ctrl-C to stop).", err=True)

    def housekeeping() -> None:
        try:
            blocked = block_expired_users("outbox worker: users block-expired")
            if blocked:
                click.echo(json.dumps({"blocked": blocked}))
        finally:  # a failure above is still logged by the worker, after the months are closed
            closed = close_billing_months()
            if closed:
                click.echo(json.dumps({"billing_closed": closed}))
            request_running_months(db.engine, housekeeping_today())

    def keep_billing_totals() -> None:
        refreshed = [r for r in refresh_due(db.engine, today=housekeeping_today()) if r.changes or r.periods_recomputed]
        if refreshed:
            click.echo(json.dumps({"billing_totals": [r.as_dict() for r in refreshed]}))

    run_worker(
        current_app._get_current_object(),
        interval=interval,
        max_passes=max_passes,
        on_report=lambda report: click.echo(json.dumps(report.as_dict())),
        daily=housekeeping,
        every_pass=keep_billing_totals,
        periodic=[
            (refresh_planner_statistics, REFRESH_EVERY),
            (forget_old_submission_tokens, FORGET_EVERY),
            *registry_chores(current_app.config),
        ],
    )


def registry_chores(config) -> list[tuple]:
    """The register watch every REGISTRY_WATCH_MINUTES (not at all for 0), and the alert digest's check for its
    daily turn (every few minutes: it goes out once a day whenever the worker was started)."""
    chores: list[tuple] = []
    minutes = float(config.get("REGISTRY_WATCH_MINUTES") or 0)
    if minutes > 0:
        chores.append((watch_registry, minutes * 60))
    if config.get("ALERT_DIGEST", "daily") == "daily":
        chores.append((send_alert_digests, DIGEST_CHECK_EVERY))
    return chores
