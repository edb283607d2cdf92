"""Error pages: whatever fails reaches the user as a sentence in their language; the detail goes to the log."""

from __future__ import annotations

import logging

from flask import Flask, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm.exc import StaleDataError

from extensions import db
from services.errors import DomainError

log = logging.getLogger(__name__)


def _back() -> str:
    from admin_views.auth import safe_next

    return safe_next(request.referrer) if request.referrer else url_for("admin.index")


def register_error_pages(app: Flask) -> None:
    """A 500 page that touches no database, and a last net for domain refusals a view did not catch."""

    @app.errorhandler(500)
    def server_error(error):
        # Flask has already logged the exception with its traceback; the page shows none of it.
        return render_template(
            "errors/error.html",
            title=_("Something went wrong"),
            message=_("The change was not saved. Please try again; if it happens again, tell your administrator."),
            back=url_for("admin.index"),
        ), 500

    @app.errorhandler(DomainError)
    def domain_refusal(error: DomainError):
        db.session.rollback()
        log.info("Refused: %s", error)
        if request.method == "POST":
            flash(str(error), "error")
            return redirect(_back())
        return render_template("errors/error.html", title=_("Not possible"), message=str(error), back=_back()), 409

    @app.errorhandler(StaleDataError)
    def stale_write(error: StaleDataError):
        # Two submits of the same change at once (a double click, two tabs): the one that lost the race on the
        # row's version is told so instead of a 500; the first one's change stands.
        db.session.rollback()
        log.info("Lost a race on a versioned row: %s", error)
        message = _(
            "Someone else saved this record while you were editing it. "
            "Reload the page to see their changes, then make yours again."
        )
        if request.method == "POST":
            flash(message, "error")
            return redirect(_back())
        return render_template("errors/error.html", title=_("Not possible"), message=message, back=_back()), 409
