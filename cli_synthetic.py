"""The ``flask seed-synthetic`` command: bulk synthetic clients for load and billing tests."""

from __future__ import annotations

import json
import time

import click
from flask.cli import with_appcontext

from extensions import db
from services.errors import DomainError
from services.synthetic import UnknownBureauError, seed_synthetic


@click.command("seed-synthetic")
@click.option("--clients", type=click.IntRange(min=1), required=True, help="How many clients to add.")
@click.option(
    "--bureau",
    "bureau",
    default=None,
    help="The bureau's org number (default: the dedicated bureau 'Syntetisk byrå AS', created when missing).",
)
@with_appcontext
def seed_synthetic_command(clients: int, bureau: str | None) -> None:
    """Bulk-load synthetic clients, each with about three users holding a main package and an add-on.

    Prints one line of JSON: the rows added per table and the seconds taken.
    """
    started = time.perf_counter()
    try:
        summary = seed_synthetic(db.engine, clients=clients, bureau_org_number=bureau)
    except UnknownBureauError as exc:
        raise click.BadParameter(str(exc), param_hint="'--bureau'") from exc
    except DomainError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({**summary, "seconds": round(time.perf_counter() - started, 2)}))
