"""Configuration: environment, URL normalisation, production safety."""

import pytest

from app import create_app
from config import normalise_database_url


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_plain_postgresql_urls_use_psycopg3(url, expected):
    assert normalise_database_url(url) == expected


def test_production_refuses_the_development_secret(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["ENV_NAME"] == "production"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone@db.example/klient")
    monkeypatch.setenv("ADMIN_PAGE_SIZE", "20")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://someone@db.example/klient"
    assert app.config["ADMIN_PAGE_SIZE"] == 20


def test_postgresql_sessions_start_no_parallel_workers_unless_asked(monkeypatch, app):
    """Issue 9's load run: a parallel plan on a 2-core machine took the cores 50 staff were waiting for. The app's
    PostgreSQL sessions plan without parallel workers by default; "server" keeps the server's setting; anything
    else is refused at start, not at the first query."""
    from sqlalchemy import text

    from config import postgresql_session_options
    from extensions import db

    assert postgresql_session_options({"SQLALCHEMY_DATABASE_URI": "sqlite://"}) == {}
    pg = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@h/db"}
    assert postgresql_session_options({**pg, "DATABASE_PARALLEL_WORKERS": "server"}) == {}
    assert postgresql_session_options({**pg, "DATABASE_PARALLEL_WORKERS": "2"}) == {
        "connect_args": {"options": "-c max_parallel_workers_per_gather=2"}
    }
    monkeypatch.setenv("DATABASE_PARALLEL_WORKERS", "many")
    with pytest.raises(ValueError, match="DATABASE_PARALLEL_WORKERS"):
        create_app({"SQLALCHEMY_DATABASE_URI": "postgresql://u@h/db"})
    if db.engine.dialect.name == "postgresql":  # the test database's own sessions, through the app's engine
        assert db.session.scalar(text("SHOW max_parallel_workers_per_gather")) == "0"
