"""Sessions and secrets: the SECRET_KEY guard, security headers, upload limit, login throttling, revocable
sessions, the password rule and one login per e-mail."""

from __future__ import annotations

import logging

import pytest

from app import create_app
from config import DEV_SECRET_KEY, InsecureSecretKeyError

# --- the SECRET_KEY guard -----------------------------------------------------------------------

MEMORY = {"SQLALCHEMY_DATABASE_URI": "sqlite://"}


@pytest.fixture
def bare_environment(monkeypatch):
    """No APP_ENV and no SECRET_KEY in the environment, as on a freshly provisioned server."""
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    return monkeypatch


def test_unset_app_env_without_a_key_is_production_and_refuses_to_start(bare_environment):
    with pytest.raises(InsecureSecretKeyError, match="SECRET_KEY is not set"):
        create_app(MEMORY)


@pytest.mark.parametrize("typo", ["prod", "Production", "develop", "Development", "dev", " ", "staging"])
def test_any_app_env_but_exactly_development_is_production(bare_environment, typo):
    bare_environment.setenv("APP_ENV", typo)
    with pytest.raises(InsecureSecretKeyError):
        create_app(MEMORY)
    bare_environment.setenv("SECRET_KEY", "k" * 40)
    assert create_app(MEMORY).config["ENV_NAME"] == "production"


def test_production_refuses_the_public_development_key(bare_environment):
    bare_environment.setenv("SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(InsecureSecretKeyError, match="development key"):
        create_app(MEMORY)
    with pytest.raises(InsecureSecretKeyError, match="development key"):
        create_app({**MEMORY, "SECRET_KEY": DEV_SECRET_KEY})


def test_production_refuses_a_short_key(bare_environment):
    bare_environment.setenv("SECRET_KEY", "s" * 31)
    with pytest.raises(InsecureSecretKeyError, match="too short"):
        create_app(MEMORY)
    bare_environment.setenv("SECRET_KEY", "s" * 32)
    assert create_app(MEMORY).config["SECRET_KEY"] == "s" * 32


def test_development_uses_the_public_key_and_says_so(bare_environment, caplog):
    bare_environment.setenv("APP_ENV", "development")
    with caplog.at_level(logging.WARNING):
        app = create_app(MEMORY)
    assert app.config["ENV_NAME"] == "development"
    assert app.config["SECRET_KEY"] == DEV_SECRET_KEY
    notices = [r.getMessage() for r in caplog.records if "Development mode" in r.getMessage()]
    assert len(notices) == 1 and "never use this mode in production" in notices[0]


def test_production_is_silent_about_development(bare_environment, caplog):
    bare_environment.setenv("SECRET_KEY", "p" * 40)
    with caplog.at_level(logging.WARNING):
        create_app(MEMORY)
    assert not [r for r in caplog.records if "Development mode" in r.getMessage()]
