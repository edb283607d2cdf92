"""Flask CLI commands: demo and synthetic data, and JSON listings for operators."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from cli_alerts import alerts_group
from cli_jobs import jobs_group
from cli_outbox import outbox_group
from cli_registry import registry_group
from cli_users import users_group
from extensions import db
from models import BillingMonth, Bureau, Client, Package
from services.orgnumbers import normalise


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def bureau_by_org_number(org_number: str) -> Bureau:
    """The bureau with this org number, or a usage error naming the known ones."""
    bureau = db.session.scalar(select(Bureau).where(Bureau.org_number == normalise(org_number)))
    if bureau is None:
        known = ", ".join(db.session.scalars(select(Bureau.org_number).order_by(Bureau.org_number)))
        raise click.BadParameter(
            f"no bureau has org number {org_number!r} (known: {known or 'none'})", param_hint="--bureau"
        )
    return bureau


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Only seed when the database has no clients at all.")
@with_appcontext
def seed_demo_command(if_empty: bool) -> None:
    """Create the demo bureaus, catalogue, clients and people (safe to run again)."""
    from services.audit import acting_as
    from services.demo import seed_demo

    if if_empty and db.session.scalar(select(Client.id).limit(1)) is not None:
        click.echo("Database already has data; demo seed skipped.")
        return
    with acting_as(None, "seed-demo"):
        logins = seed_demo(db.session)
        db.session.commit()
    click.echo("Demo data ready. Staff logins:")
    for login in logins:
        click.echo(f"  {login.bureau}: {login.email} / {login.password} ({login.role})")


bureaus_group = AppGroup("bureaus", help="Bureaus (tenants).")


@bureaus_group.command("list")
def bureaus_list() -> None:
    """Print the bureaus as JSON: [{"org_number", "name"}]."""
    rows = db.session.execute(select(Bureau.org_number, Bureau.name).order_by(Bureau.name))
    echo_json([{"org_number": org, "name": name} for org, name in rows])


packages_group = AppGroup("packages", help="The package catalogue.")


@packages_group.command("list")
@click.option("--bureau", "bureau_org", required=True, help="The bureau's org number.")
def packages_list(bureau_org: str) -> None:
    """Print a bureau's packages as JSON: [{"code", "name", "kind", "rank", "price"}]."""
    bureau = bureau_by_org_number(bureau_org)
    packages = db.session.scalars(
        select(Package).where(Package.bureau_id == bureau.id).order_by(Package.kind.desc(), Package.rank, Package.code)
    )
    echo_json(
        [
            {"code": p.code, "name": p.name, "kind": p.kind.value, "rank": p.rank, "price": f"{p.price:.2f}"}
            for p in packages
        ]
    )


clients_group = AppGroup("clients", help="Clients.")


@clients_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--bureau", "bureau_org", required=True, help="The bureau's org number.")
@click.option("--dry-run", is_flag=True, help="Only say what each row would do (the page's preview).")
def clients_import(file: str, bureau_org: str, dry_run: bool) -> None:
    """Create clients from a CSV or XLSX file; prints one JSON object per row (row, status, message).

    A row is created, a duplicate (skipped) or refused with the reason, as on the page. Exits 0 when no row was
    refused, 1 when any was.
    """
    from pathlib import Path

    from services.audit import acting_as
    from services.client_import import import_clients, read_rows
    from services.errors import DomainError
    from services.registry import get_registry

    bureau = bureau_by_org_number(bureau_org)
    try:
        rows = read_rows(Path(file).read_bytes(), file)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from exc
    with acting_as(None, f"clients import {Path(file).name}"):
        results = import_clients(db.session, bureau.id, rows, get_registry(current_app), dry_run=dry_run)
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    report_import(results)


persons_group = AppGroup("persons", help="People of the clients.")


@persons_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--bureau", "bureau_org", required=True, help="The bureau's org number.")
@click.option("--dry-run", is_flag=True, help="Only say what each row would do (the page's preview).")
def persons_import(file: str, bureau_org: str, dry_run: bool) -> None:
    """Add (and invite) people from a CSV or XLSX file; prints one JSON object per row (row, status, message).

    A row is created (``"invited": true`` when its invitation was queued), a duplicate (skipped) or refused with the
    reason, as on the page. Exits 0 when no row was refused, 1 when any was.
    """
    from datetime import date
    from pathlib import Path

    from services.audit import acting_as
    from services.errors import DomainError
    from services.person_import import import_persons, read_rows

    bureau = bureau_by_org_number(bureau_org)
    try:
        rows = read_rows(Path(file).read_bytes(), file)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from exc
    with acting_as(None, f"persons import {Path(file).name}"):
        results = import_persons(db.session, bureau.id, rows, today=date.today(), dry_run=dry_run)
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    report_import(results)


def report_import(results) -> None:
    """One JSON object per row (row, status, message); exit 1 when a row was refused."""
    from services.import_rows import RowStatus

    echo_json([result.to_json() for result in results])
    if any(result.status is RowStatus.REFUSED for result in results):
        raise SystemExit(1)


billing_group = AppGroup("billing", help="The billing basis (fakturagrunnlag).")


@billing_group.command("export")
@click.option("--bureau", "bureau_org", required=True, help="The bureau's org number.")
@click.option("--period", required=True, help="The month, YYYY-MM.")
@click.option("--dialect", type=click.Choice(["standard", "excel-no"]), default="standard", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
@click.option("--client", "clients", multiple=True, help="Only this client's org number (repeatable).")
@click.option("--detail", is_flag=True, help="One row per user and package, with the days billable.")
def billing_export(
    bureau_org: str, period: str, dialect: str, output: str | None, clients: tuple[str, ...], detail: bool
) -> None:
    """Export the billing basis: the same bytes as the download on the Fakturagrunnlag page.

    With --output the file appears only when complete (written beside it, then renamed); on stdout a failure
    ends the output with the line "#INCOMPLETE" and the reason goes to stderr. Either way a failure exits 1.
    """
    import io
    import os
    import sys
    import tempfile

    from services import billing

    bureau = bureau_by_org_number(bureau_org)
    try:
        month = billing.Period.parse(period)
    except ValueError:
        raise click.BadParameter(f"{period!r} is not a month written YYYY-MM", param_hint="--period") from None
    client_ids = None
    if clients:
        numbers = ["".join(c.split()) for c in clients]
        found = dict(
            db.session.execute(
                select(Client.org_number, Client.id).where(
                    Client.bureau_id == bureau.id, Client.org_number.in_(numbers)
                )
            ).all()
        )
        unknown = [n for n in numbers if n not in found]
        if unknown:  # a closed month still knows the clients deleted since it was closed
            conn = db.session.connection()
            closed = billing.closed_month(conn, bureau.id, month)
            if closed is not None:
                found.update(billing.snapshot_clients(conn, closed, unknown))
            unknown = [n for n in numbers if n not in found]
        if unknown:
            raise click.BadParameter(f"not clients of the bureau: {', '.join(unknown)}", param_hint="--client")
        client_ids = list(found.values())
    db.session.rollback()  # the export reads its own snapshot
    arguments = {
        "bureau_id": bureau.id,
        "period": month,
        "dialect": billing.Dialect(dialect),
        "detail": detail,
        "client_ids": client_ids,
    }
    if output:
        directory = os.path.dirname(os.path.abspath(output))
        handle, partial = tempfile.mkstemp(prefix=".billing-", suffix=".csv.part", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                rows = billing.export(db.engine, out, **arguments)
            os.replace(partial, output)
        except Exception as exc:
            os.unlink(partial)
            raise click.ClickException(f"export failed, no file written: {exc}") from exc
        click.echo(f"{rows} rows written to {output}", err=True)
        return
    sys.stdout.flush()
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=True)
    try:
        billing.export(db.engine, out, **arguments)
    except Exception as exc:
        # Exactly this last line, whatever the error says (a driver's message runs over several lines): a reader
        # checks one line. The reason goes to stderr.
        out.write("#INCOMPLETE\r\n")
        out.flush()
        click.echo(f"export failed, the output is not the whole billing basis: {exc}", err=True)
        raise SystemExit(1) from exc
    finally:
        out.flush()
        out.detach()


@billing_group.command("close")
@click.option("--bureau", "bureau_org", required=True, help="The bureau's org number.")
@click.option("--period", required=True, help="The month, YYYY-MM; it must have ended.")
def billing_close(bureau_org: str, period: str) -> None:
    """Close a past month: store its billing basis for good; prints a JSON summary.

    Exits 0 when the month is closed now or was closed already (status "already_closed", nothing changed), 2 when
    the month has not ended yet or the arguments are wrong.
    """
    from datetime import date

    from services import billing
    from services.billing_close import close_or_report, refuse_open_month
    from services.errors import DomainError

    bureau = bureau_by_org_number(bureau_org)
    try:
        month = billing.Period.parse(period)
    except ValueError:
        raise click.BadParameter(f"{period!r} is not a month written YYYY-MM", param_hint="--period") from None
    today = date.today()
    try:
        refuse_open_month(month, today)
    except DomainError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from exc
    result = close_or_report(db.session, bureau.id, month, actor=None, actor_label="billing close (CLI)", today=today)
    echo_json(result.to_json(bureau.org_number))


@billing_group.command("refresh-totals")
@click.option("--bureau", "bureau_org", default=None, help="Only this bureau (org number); default: every bureau.")
@click.option("--period", default=None, help="Recompute this month (YYYY-MM) from scratch as well.")
def billing_refresh_totals(bureau_org: str | None, period: str | None) -> None:
    """Bring the kept billing totals and package holder counts up to date now (the worker does this every pass).

    With --period the month is recomputed from scratch (and kept from now on); without, the running and the
    previous month are asked for and the waiting changes applied. Prints one JSON line per bureau refreshed.
    """
    from datetime import date

    from services import billing
    from services.billing_totals import recompute_period, refresh_bureau, refresh_holder_counts, request_period

    if period is not None:
        try:
            month = str(billing.Period.parse(period))
        except ValueError:
            raise click.BadParameter(f"{period!r} is not a month written YYYY-MM", param_hint="--period") from None
    bureau_ids = [bureau_by_org_number(bureau_org).id] if bureau_org else list(db.session.scalars(select(Bureau.id)))
    db.session.rollback()
    today = date.today()
    for bureau_id in bureau_ids:
        with db.engine.begin() as conn:
            closed = set(conn.scalars(select(BillingMonth.period).where(BillingMonth.bureau_id == bureau_id)))
            wanted = (
                [month]
                if period is not None
                else [str(billing.Period.parse(today.strftime("%Y-%m"))), str(billing.Period.previous_month(today))]
            )
            for label in wanted:
                if label not in closed:
                    request_period(conn, bureau_id, label)
        recomputed = period is not None and month not in closed and recompute_period(db.engine, bureau_id, month)
        report = refresh_bureau(db.engine, bureau_id).as_dict()
        if recomputed and month not in report["recomputed"]:
            report["recomputed"].append(month)
        echo_json(report)
    refresh_holder_counts(db.engine, today=today)


def register_cli(app: Flask) -> None:
    app.cli.add_command(outbox_group)
    app.cli.add_command(jobs_group)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(bureaus_group)
    app.cli.add_command(packages_group)
    app.cli.add_command(clients_group)
    app.cli.add_command(persons_group)
    app.cli.add_command(billing_group)
    app.cli.add_command(registry_group)
    app.cli.add_command(users_group)
    app.cli.add_command(alerts_group)
    try:
        from cli_synthetic import seed_synthetic_command
    except ImportError:  # pragma: no cover - added by the synthetic loader
        return
    app.cli.add_command(seed_synthetic_command)
