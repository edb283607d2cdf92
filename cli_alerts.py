"""The ``flask alerts`` commands: a bureau's register alerts as JSON, for operators and scripts."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from stdnum.no import orgnr

from extensions import db
from services.alerts import alert_json, bureau_alerts_query
from services.orgnumbers import normalise

alerts_group = AppGroup("alerts", help="Register alerts (the register watch's findings about clients).")


@alerts_group.command("list")
@click.option("--bureau", "bureau_org", required=True, help="The bureau's org number.")
@click.option("--open", "open_only", is_flag=True, help="Only alerts nobody has acknowledged yet.")
def alerts_list(bureau_org: str, open_only: bool) -> None:
    """Print the bureau's alerts, newest first, as a JSON list of {"org_number", "client_name", "kind", "details",
    "register_date", "seen_at", "acknowledged_at", "acknowledged_by"}."""
    from cli import bureau_by_org_number

    # Checked before the database sees it: PostgreSQL refuses a NUL byte in a query instead of finding nothing.
    if not orgnr.is_valid(normalise(bureau_org.replace("\x00", "")) or "") or "\x00" in bureau_org:
        raise click.BadParameter(f"{bureau_org!r} is not a valid organisation number", param_hint="--bureau")
    bureau = bureau_by_org_number(bureau_org)
    alerts = db.session.scalars(bureau_alerts_query(bureau.id, open_only=open_only))
    click.echo(json.dumps([alert_json(alert) for alert in alerts], ensure_ascii=False, indent=2))
