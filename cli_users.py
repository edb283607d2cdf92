"""The ``flask users`` commands: housekeeping of the users of every bureau."""

from __future__ import annotations

import json
from datetime import date

import click
from flask.cli import AppGroup

from extensions import db

users_group = AppGroup("users", help="Users (logins) of every bureau.")


def block_expired_users(label: str) -> int:
    """Block every user past the end date, for the record, and commit; how many (needs an app context)."""
    from services.audit import acting_as
    from services.invitations import block_expired

    try:
        with acting_as(None, label):
            blocked = block_expired(db.session, date.today())
            db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return blocked


@users_group.command("block-expired")
def users_block_expired() -> None:
    """Block users whose end date has passed; prints {"blocked": N}. Running it again blocks nobody new."""
    click.echo(json.dumps({"blocked": block_expired_users("users block-expired")}))
