"""Configuration read from the environment, with development defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent
DEV_SECRET_KEY = "dev-only-not-secret"
MIN_SECRET_KEY_LENGTH = 32
DEVELOPMENT = "development"
PRODUCTION = "production"


def normalise_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` / ``postgres://`` URLs and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Settings for one app; ``from_env`` reads them, tests pass overrides on top."""

    def __init__(self) -> None:
        # Development only when asked for by name; unset, "prod", "staging" or a typo all mean production.
        self.ENV_NAME = DEVELOPMENT if os.environ.get("APP_ENV", "").strip() == DEVELOPMENT else PRODUCTION
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or None
        instance = Path(os.environ.get("INSTANCE_PATH", BASE_DIR / "instance"))
        self.INSTANCE_PATH = str(instance)
        # Uploaded import files wait here between their preview and "Importer N rader" (shared by the processes).
        self.IMPORT_UPLOAD_DIR = os.environ.get("IMPORT_UPLOAD_DIR", str(instance / "imports"))
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(
            os.environ.get("DATABASE_URL", f"sqlite:///{instance / 'klientadmin.db'}")
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        # PostgreSQL: parallel workers one query may start (max_parallel_workers_per_gather for this app's
        # sessions). 0 by default: with a few cores and many staff at once, a parallel plan takes the cores other
        # requests wait for, and the planner chose one where an index lookup of the candidates was 7x faster
        # (issue 9's load run). "server" keeps the database server's own setting.
        self.DATABASE_PARALLEL_WORKERS = os.environ.get("DATABASE_PARALLEL_WORKERS", "0").strip().lower()
        self.BABEL_DEFAULT_LOCALE = os.environ.get("DEFAULT_LOCALE", "no")
        self.BABEL_DEFAULT_TIMEZONE = os.environ.get("TIMEZONE", "Europe/Oslo")
        self.PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
        # The accounting suite's login page, linked from "your user is ready" for a client's users.
        self.SUITE_LOGIN_URL = os.environ.get("SUITE_LOGIN_URL") or None
        self.BRREG_BASE_URL = os.environ.get("BRREG_BASE_URL", "https://data.brreg.no/enhetsregisteret/api")
        self.BRREG_CONTACT = os.environ.get("BRREG_CONTACT")
        # Seconds a page waits for the company register before saying it is slow (no retries on a page).
        self.REGISTRY_REQUEST_BUDGET = float(os.environ.get("REGISTRY_REQUEST_BUDGET", "3"))
        # Register calls a server process lets wait at once; one more is told the register is slow without waiting.
        self.REGISTRY_REQUEST_CONCURRENCY = int(os.environ.get("REGISTRY_REQUEST_CONCURRENCY", "2"))
        # The register watch (services/registry_watch.py): every this many minutes in the outbox worker; the first
        # run reads the change feed from REGISTRY_WATCH_SINCE (ISO date-time), else from the moment it runs.
        self.REGISTRY_WATCH_MINUTES = float(os.environ.get("REGISTRY_WATCH_MINUTES", "60"))
        self.REGISTRY_WATCH_SINCE = os.environ.get("REGISTRY_WATCH_SINCE") or None
        # Updates per feed page, and pages per run at most (the next run goes on from there).
        self.REGISTRY_WATCH_PAGE_SIZE = int(os.environ.get("REGISTRY_WATCH_PAGE_SIZE", "100"))
        self.REGISTRY_WATCH_MAX_PAGES = int(os.environ.get("REGISTRY_WATCH_MAX_PAGES", "200"))
        # New register alerts e-mailed to each bureau's administrators once a day ("daily"), or not at all ("off").
        self.ALERT_DIGEST = os.environ.get("ALERT_DIGEST", "daily").strip().lower()
        if self.ALERT_DIGEST not in ("daily", "off"):
            raise ValueError(f"ALERT_DIGEST must be daily or off, not {self.ALERT_DIGEST!r}")
        self.CONSENT_LINK_DAYS = int(os.environ.get("CONSENT_LINK_DAYS", "30"))
        self.INVITATION_DAYS = int(os.environ.get("INVITATION_DAYS", "14"))
        # Hjem: an invitation not accepted after this many days is on the to-do list; a failed job stays this long.
        self.INVITATION_WAITING_DAYS = int(os.environ.get("INVITATION_WAITING_DAYS", "3"))
        self.HOME_FAILED_JOB_DAYS = int(os.environ.get("HOME_FAILED_JOB_DAYS", "7"))
        # The outbox worker closes the previous billing month from this day of the month on (1-28).
        self.BILLING_CLOSE_DAY = int(os.environ.get("BILLING_CLOSE_DAY", "1"))
        # Background jobs (services/jobs.py): rows per committed chunk, a worker's lease, imports run as a job above.
        self.JOBS_CHUNK_ROWS = int(os.environ.get("JOBS_CHUNK_ROWS", "25"))
        self.JOBS_LEASE_SECONDS = float(os.environ.get("JOBS_LEASE_SECONDS", "90"))
        self.JOBS_IMPORT_THRESHOLD = int(os.environ.get("JOBS_IMPORT_THRESHOLD", "50"))
        self.ADMIN_PAGE_SIZE = int(os.environ.get("ADMIN_PAGE_SIZE", "50"))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
        self.SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "120"))
        # A little over the 5 MB import limit, so the import's own message is shown for files just above it.
        self.MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(6 * 1024 * 1024)))
        self.LOGIN_MAX_FAILURES_PER_ACCOUNT = int(os.environ.get("LOGIN_MAX_FAILURES_PER_ACCOUNT", "5"))
        self.LOGIN_MAX_FAILURES_PER_ADDRESS = int(os.environ.get("LOGIN_MAX_FAILURES_PER_ADDRESS", "30"))
        self.LOGIN_THROTTLE_MINUTES = int(os.environ.get("LOGIN_THROTTLE_MINUTES", "15"))
        self.PROXY_FIX_X_FOR = int(os.environ.get("PROXY_FIX_X_FOR", "0"))
        self.WTF_CSRF_TIME_LIMIT = None
        self.MAIL_SERVER = os.environ.get("MAIL_SERVER")
        self.MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
        self.MAIL_USE_TLS = _bool("MAIL_USE_TLS", False)
        self.MAIL_USE_SSL = _bool("MAIL_USE_SSL", False)
        self.MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
        self.MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
        self.MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Klientadministrasjon <noreply@localhost>")
        # Seconds the outbox waits for the relay per socket operation, and at most per delivery pass.
        self.MAIL_TIMEOUT = float(os.environ.get("MAIL_TIMEOUT", "30"))
        self.MAIL_BATCH_DEADLINE = float(os.environ.get("MAIL_BATCH_DEADLINE", "60"))

    def as_mapping(self) -> dict[str, object]:
        return {key: value for key, value in vars(self).items() if key.isupper()}


class InsecureSecretKeyError(RuntimeError):
    """The app would run in production with a secret key anyone can know."""


def check_secret_key(config: dict[str, object]) -> str | None:
    """Refuse production without a real SECRET_KEY; in development fill in the public key and return a notice.

    Production is everything but ``ENV_NAME == "development"``; the notice is for the caller to print once.
    """
    key = str(config.get("SECRET_KEY") or "")
    if config.get("ENV_NAME") == DEVELOPMENT:
        if key:
            return "Development mode (APP_ENV=development): never use this mode in production."
        config["SECRET_KEY"] = DEV_SECRET_KEY
        return (
            "Development mode (APP_ENV=development) with the public development SECRET_KEY: "
            "never use this mode in production."
        )
    if not key:
        raise InsecureSecretKeyError(
            "SECRET_KEY is not set. Set it to a random value of at least 32 characters "
            "(or run with APP_ENV=development on your own machine)."
        )
    if key == DEV_SECRET_KEY:
        raise InsecureSecretKeyError("SECRET_KEY is the public development key; set a random value in production.")
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise InsecureSecretKeyError(
            f"SECRET_KEY is too short ({len(key)} characters); production needs at least {MIN_SECRET_KEY_LENGTH}."
        )
    return None


def postgresql_session_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """Engine options for PostgreSQL sessions from the app's settings (none for other engines)."""
    if not str(config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        return {}
    parallel = str(config.get("DATABASE_PARALLEL_WORKERS", "0")).strip().lower()
    if parallel == "server":
        return {}
    if not parallel.isdigit():
        raise ValueError(f"DATABASE_PARALLEL_WORKERS must be a number or server, not {parallel!r}")
    return {"connect_args": {"options": f"-c max_parallel_workers_per_gather={int(parallel)}"}}
