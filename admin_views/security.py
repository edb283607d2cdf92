"""Security headers, the idle timeout, the upload limit's page and a trusted proxy, for every response.

Our own small ``after_request`` hook rather than Flask-Talisman: no extra dependency for a handful of headers, and
the per-request CSP nonce is the same one Flask-Admin puts on its own inline scripts (``csp_nonce_generator``).
"""

from __future__ import annotations

import secrets
import time

from flask import (
    Flask,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

# Pages whose answers must never be kept by a browser or proxy: the admin, the login and the token links.
NO_STORE_PREFIXES = ("/admin", "/login", "/logout", "/invitasjon/", "/samtykke/")


def csp_nonce() -> str:
    """This request's nonce for inline scripts (Flask-Admin's and ours); one per request.

    Kept in the WSGI environ rather than ``g``: an application context can outlive one request (tests).
    """
    if not has_request_context():
        return secrets.token_urlsafe(18)
    return request.environ.setdefault("klient.csp_nonce", secrets.token_urlsafe(18))


def content_security_policy(nonce: str) -> str:
    # Styles stay 'unsafe-inline': Flask-Admin's widgets set style attributes; scripts never run inline.
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _is_static() -> bool:
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")


def _security_headers(response):
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(csp_nonce())
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"  # the language switch returns to the referring page
    if request.path.startswith(NO_STORE_PREFIXES) and not _is_static():
        headers["Cache-Control"] = "no-store"
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return response


def _idle_timeout():
    """Log out a user idle for longer than SESSION_IDLE_MINUTES; otherwise note this request as activity."""
    # The user is read from this request's cookie, never from an application context that outlived a request.
    g.pop("_login_user", None)
    if request.endpoint is None or _is_static():
        return None
    if not current_user.is_authenticated:
        return None
    now = int(time.time())
    idle_limit = int(current_app.config.get("SESSION_IDLE_MINUTES", 120)) * 60
    last_seen = session.get("last_seen")
    if not isinstance(last_seen, int) or now - last_seen > idle_limit:
        logout_user()
        session.pop("last_seen", None)
        flash(_("You were logged out after %(minutes)s minutes without activity.", minutes=idle_limit // 60), "info")
        return redirect(url_for("auth.login", next=request.path if request.method == "GET" else None))
    session["last_seen"] = now
    return None


def _too_large(error: RequestEntityTooLarge):
    limit_mb = max(1, int(request.max_content_length or 0) // (1024 * 1024))
    return render_template("public/too_large.html", limit_mb=limit_mb), 413


def init_security(app: Flask) -> None:
    """Register the headers, the idle timeout, the 413 page and (when configured) the trusted proxy."""
    trusted = int(app.config.get("PROXY_FIX_X_FOR") or 0)
    if trusted > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted, x_proto=trusted)
    app.before_request(_idle_timeout)
    app.after_request(_security_headers)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
