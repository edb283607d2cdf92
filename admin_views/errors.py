"""Error pages: whatever fails reaches the user as a sentence in their language; the detail goes to the log."""

from __future__ import annotations

import logging

from flask import Flask, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from admin_views.edge import request_id
from extensions import db
from services.errors import DomainError

log = logging.getLogger(__name__)


def _forget_session() -> None:
    """Drop the request's session and its connection without asking the database anything more."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the pool replaces it
        log.debug("Rollback after a database failure failed too", exc_info=True)


def _back() -> str:
    from admin_views.auth import safe_next

    return safe_next(request.referrer) if request.referrer else url_for("admin.index")


def self_contained_page(title: str, message: str, status: int):
    """An error page that needs nothing from the database: rendered without the context processors (Flask-Login's
    would load the user through the very connection that just failed), with the request id to quote."""
    from app import select_locale

    page = current_app.jinja_env.get_template("errors/error.html").render(
        title=title,
        message=message,
        back=url_for("admin.index"),
        request_id=request_id(),
        current_locale=select_locale(),
    )
    return current_app.response_class(page, status=status, mimetype="text/html")


def refusal_texts(error: HTTPException) -> tuple[str, str]:
    """Title and sentence for a refused request (4xx)."""
    if isinstance(error, CSRFError):
        return _("The form has expired"), _(
            "The form was open too long or was sent from another page, so nothing was saved. "
            "Open the page again and send the form once more."
        )
    if error.code == 403:
        return _("No access"), _(
            "You do not have access to this page. Ask an administrator of your bureau if you need it."
        )
    if error.code in (404, 410):
        return _("Not found"), _(
            "The page or record does not exist, or you do not have access to it. Check the address or go back."
        )
    if error.code == 405:
        return _("Not possible"), _("This address cannot be used this way. Go back and use the buttons on the page.")
    return _("The request was refused"), _(
        "The request could not be used (error %(code)s), and nothing was changed. Go back and try again.",
        code=error.code,
    )


def is_database_outage(error: BaseException) -> bool:
    """The database could not be reached or dropped the connection (not a refusal of the statement itself)."""
    return isinstance(error, OperationalError | InterfaceError) or bool(
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


def register_error_pages(app: Flask) -> None:
    """A 500 page that touches no database, a 503 page for a lost database, and a last net for domain refusals a
    view did not catch; each failure's log line and page carry the request id (admin_views/edge.py)."""

    @app.errorhandler(500)
    def server_error(error):
        # Flask has already logged the exception with its traceback (and the request id); the page shows none of it.
        original = getattr(error, "original_exception", None)
        if original is not None and is_database_outage(original):
            return database_failure(original)
        return self_contained_page(
            _("Something went wrong"),
            _("The change was not saved. Please try again; if it happens again, tell your administrator."),
            500,
        )

    @app.errorhandler(DBAPIError)
    def database_failure(error: DBAPIError):
        """The database failed under the request (lost connection, down, locked): nothing was saved, try again."""
        _forget_session()
        if not is_database_outage(error):
            log.error("Database error [request %s]: %s", request_id(), error, exc_info=error)
            return self_contained_page(
                _("Something went wrong"),
                _("The change was not saved. Please try again; if it happens again, tell your administrator."),
                500,
            )
        log.error("Database unavailable [request %s]: %s", request_id(), error.orig or error, exc_info=error)
        response = self_contained_page(
            _("The database is not answering"),
            _(
                "The database could not be reached or dropped the connection, so nothing was saved. "
                "Wait a moment and try again; if it goes on, tell your administrator."
            ),
            503,
        )
        response.headers["Retry-After"] = "10"
        return response

    @app.errorhandler(HTTPException)
    def refused_request(error: HTTPException):
        """403, 404, 405, a lost CSRF token …: a page in the user's language instead of Werkzeug's English one."""
        if error.code is None or error.code >= 500 or error.code < 400:
            return error
        title, message = refusal_texts(error)
        return render_template("errors/error.html", title=title, message=message, back=_back()), error.code

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
