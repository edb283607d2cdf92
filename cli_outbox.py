"""The ``flask outbox`` commands: deliver queued e-mail once, or keep delivering it."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from cli_users import block_expired_users
from extensions import db
from services.outbox import deliver_due, run_worker

outbox_group = AppGroup("outbox", help="The e-mail outbox.")


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

    Once at start and then daily it also blocks the users past their end date (as ``users block-expired``).
    """
    click.echo(f"Outbox worker: delivering every {interval:g} s (Ctrl-C to stop).", err=True)

    def block_expired() -> None:
        blocked = block_expired_users("outbox worker: users block-expired")
        if blocked:
            click.echo(json.dumps({"blocked": blocked}))

    run_worker(
        current_app._get_current_object(),
        interval=interval,
        max_passes=max_passes,
        on_report=lambda report: click.echo(json.dumps(report.as_dict())),
        daily=block_expired,
    )
