"""Application factory for Klientadministrasjon."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, has_request_context, redirect, request, session, url_for
from flask_babel import get_locale

from config import Config, check_secret_key, normalise_database_url, postgresql_session_options
from extensions import babel, csrf, db, login_manager, mail, migrate

# Norwegian bokmål is served under the locale code "no": that is the only code under which
# Flask-Admin's installed catalogue is found (Babel has no "no_NO" and does not fall back
# from "nb" to "no"). Norwegian is the default whatever the browser asks for; English is
# chosen explicitly in the menu and kept in the session.
SUPPORTED_LOCALES = ("no", "en")


def select_locale() -> str:
    """Locale for this request: the user's choice in the session, else the configured default."""
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    if not has_request_context():
        return default
    chosen = session.get("locale")
    return chosen if chosen in SUPPORTED_LOCALES else default


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(Config().as_mapping())
    if config:
        app.config.from_mapping(config)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        **postgresql_session_options(app.config),
    }
    notice = check_secret_key(app.config)
    if notice:
        app.logger.warning(notice)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    mail.init_app(app)

    import models  # noqa: F401  (registers the tables)
    from admin_views import init_admin
    from admin_views.auth import bp as auth_bp
    from admin_views.auth import safe_next
    from admin_views.consent import bp as consent_bp
    from admin_views.edge import init_edge
    from admin_views.errors import register_error_pages
    from admin_views.invitation import bp as invitation_bp
    from admin_views.security import init_security
    from cli import register_cli
    from services.archive import register_archive_guard
    from services.audit import register_audit
    from services.billing_close import register_closed_month_guard
    from services.billing_totals import register_billing_change_hook
    from services.formats import register_format_filters
    from services.inputs import register_input_guard
    from services.policy import register_policy
    from services.sessions import register_sessions

    init_edge(app)  # before the routes: ids in paths are bounded to 64 bits
    register_audit(db)
    register_input_guard()
    register_policy()
    register_sessions()
    init_security(app)
    register_archive_guard()
    register_closed_month_guard()
    register_billing_change_hook()
    register_error_pages(app)
    register_format_filters(app)
    app.register_blueprint(auth_bp)
    app.register_blueprint(consent_bp)
    app.register_blueprint(invitation_bp)
    init_admin(app)
    register_cli(app)

    @app.get("/")
    def root():
        return redirect(url_for("admin.index"))

    @app.get("/language/<code>")
    def set_language(code: str):
        if code in SUPPORTED_LOCALES:
            session["locale"] = code
        return redirect(safe_next(request.referrer))

    @app.context_processor
    def inject_locale() -> dict[str, Any]:
        return {"current_locale": str(get_locale()), "supported_locales": SUPPORTED_LOCALES}

    return app
