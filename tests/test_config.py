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
