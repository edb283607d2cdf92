"""The ``flask jobs`` commands: run the background jobs (imports, register refresh, month closing)."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from services.jobs import run_until_idle, run_worker

jobs_group = AppGroup("jobs", help="Background jobs.")


@jobs_group.command("worker")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds between polls."
)
@click.option("--max-passes", type=click.IntRange(min=1), default=None, help="Stop after this many passes.")
def jobs_worker(interval: float, max_passes: int | None) -> None:
    """Keep running queued jobs until stopped (Ctrl-C or SIGTERM); prints a JSON line per job it worked on.

    A stop finishes the running chunk and hands the job back; a worker that dies leaves its job to be resumed
    when its lease (JOBS_LEASE_SECONDS) runs out. Either way no row is applied twice.
    """
    click.echo(f"Jobs worker: looking for work every {interval:g} s (Ctrl-C to stop).", err=True)
    run_worker(
        current_app._get_current_object(),
        interval=interval,
        max_passes=max_passes,
        on_job=lambda job_id, ended: click.echo(json.dumps({"job": job_id, "ended": ended})),
    )


@jobs_group.command("run")
def jobs_run() -> None:
    """Run every job that is due now, then exit; prints {"claims": n}."""
    click.echo(json.dumps({"claims": run_until_idle(current_app._get_current_object())}))
