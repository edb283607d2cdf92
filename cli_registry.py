"""The ``flask registry`` commands: company-register lookups as JSON for operators, and the offline emulator.

Exit status: 0 found (deleted and removed companies too: they are found, and flagged in ``status``), 2 unknown
number, 3 invalid number (nothing sent), 4 register unreachable or answering nonsense. Errors go to stderr.

``registry watch --once`` runs the register watch (``services/registry_watch.py``) once and prints
``{"updates_read", "clients_matched", "alerts_created", "position"}``; exit 0, 4 when the register is unreachable or
answers nonsense (the position is then unchanged), 5 when another run of the watch is in progress.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
from flask import current_app
from flask.cli import AppGroup

from services.registry import (
    CompanyNotFound,
    CompanyRegistry,
    InvalidOrgNumber,
    NonsenseAnswer,
    RegistryError,
    get_registry,
)

EXIT_NOT_FOUND = 2
EXIT_INVALID = 3
EXIT_UNAVAILABLE = 4
EXIT_BUSY = 5

registry_group = AppGroup("registry", help="The company register (Brønnøysundregistrene).")


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _registry() -> CompanyRegistry:
    return get_registry(current_app._get_current_object())


def _fail(exc: Exception | str, code: int) -> NoReturn:
    click.echo(f"Error: {exc}", err=True)
    raise click.exceptions.Exit(code)


@contextmanager
def registry_exit_codes() -> Iterator[None]:
    """Turn registry errors into the documented exit status and a one-line message on stderr."""
    try:
        yield
    except InvalidOrgNumber as exc:
        _fail(exc, EXIT_INVALID)
    except CompanyNotFound as exc:
        _fail(exc, EXIT_NOT_FOUND)
    except NonsenseAnswer as exc:
        _fail(f"the register answered nonsense: {exc}", EXIT_UNAVAILABLE)
    except RegistryError as exc:
        _fail(exc, EXIT_UNAVAILABLE)


@registry_group.command("lookup")
@click.argument("org_number")
def lookup_command(org_number: str) -> None:
    """Print the company with this org number as JSON (a branch when no main entity has it)."""
    with registry_exit_codes():
        record = _registry().lookup(org_number)
    echo_json(record.to_json())


@registry_group.command("roles")
@click.argument("org_number")
def roles_command(org_number: str) -> None:
    """Print the company's current role holders as JSON: [{"role", "role_name", "name", "kind", "org_number"}]."""
    registry = _registry()
    with registry_exit_codes():
        # The roles call answers 404 both for "no roles" and "no such company"; the lookup tells them apart.
        registry.lookup(org_number)
        holders = registry.roles(org_number)
    echo_json([holder.to_json() for holder in holders])


@registry_group.command("search")
@click.argument("text")
def search_command(text: str) -> None:
    """Print the first page of companies whose name contains TEXT (nine digits: that number) as JSON."""
    with registry_exit_codes():
        page = _registry().search(text)
    echo_json([record.to_json() for record in page.records])


@registry_group.command("watch")
@click.option("--once", is_flag=True, help="Run the watch once now (the outbox worker runs it on its own schedule).")
def watch_command(once: bool) -> None:
    """Read the register's change feed from the stored position and raise alerts for the bureaus' clients.

    Prints {"updates_read", "clients_matched", "alerts_created", "position"} as one JSON line.
    """
    from services.registry_watch import WatchBusy, watch_from_app

    if not once:
        raise click.UsageError("give --once; the outbox worker runs the watch every REGISTRY_WATCH_MINUTES")
    try:
        with registry_exit_codes():
            report = watch_from_app(current_app._get_current_object())
    except WatchBusy as exc:
        _fail(exc, EXIT_BUSY)
    except ValueError as exc:  # REGISTRY_WATCH_SINCE that is not a date-time
        raise click.UsageError(str(exc)) from None
    click.echo(json.dumps(report.as_dict()))


def wait_for_interrupt() -> None:
    """Block until Ctrl-C."""
    while True:
        time.sleep(3600)


@registry_group.command("emulator")
@click.option("--port", default=5055, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--quiet", is_flag=True, help="Do not log each request.")
def emulator_command(port: int, host: str, quiet: bool) -> None:
    """Serve the local Enhetsregisteret emulator in the foreground for offline demos (Ctrl-C stops it)."""
    from services.registry.emulator import start_emulator

    try:
        emulator = start_emulator(port, host=host, log=None if quiet else lambda line: click.echo(line, err=True))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        click.echo(f"Enhetsregisteret emulator serving {emulator.base_url}")
        click.echo(f"Point the app at it with BRREG_BASE_URL={emulator.base_url}; Ctrl-C stops it.")
        wait_for_interrupt()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
