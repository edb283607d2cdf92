"""Sessions and secrets: the SECRET_KEY guard, security headers, upload limit, login throttling, revocable
sessions, the password rule and one login per e-mail."""

from __future__ import annotations

import io
import logging
import re

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


# --- security headers -----------------------------------------------------------------------------

ADMIN_PAGES = ["/admin/", "/admin/clients/", "/admin/persons/", "/admin/users/", "/admin/clients/new/"]


def csp_of(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else "" for part in policy.split("; ")}


def test_every_response_has_the_security_headers(client):
    for path in ["/login", "/invitasjon/not-a-token", "/samtykke/not-a-token", "/static/js/people.js"]:
        response = client.get(path)
        csp = csp_of(response)
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'", path
        assert csp["base-uri"] == "'none'" and csp["form-action"] == "'self'", path
        assert "'unsafe-inline'" not in csp["script-src"] and csp["script-src"].startswith("'self' 'nonce-"), path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["Referrer-Policy"] == "same-origin", path
        assert "Strict-Transport-Security" not in response.headers, path
        response.close()
    static = client.get("/static/js/people.js")
    assert static.headers.get("Cache-Control") != "no-store"
    static.close()
    for path in ["/login", "/invitasjon/not-a-token", "/samtykke/not-a-token"]:
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_hsts_only_behind_https(app, client):
    app.config["SESSION_COOKIE_SECURE"] = True
    assert client.get("/login").headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_admin_pages_are_not_stored_and_inline_scripts_carry_this_requests_nonce(login_as, client):
    login_as("admin")
    nonces = set()
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
        nonce = csp_of(response)["script-src"].split("'nonce-")[1].rstrip("'")
        nonces.add(nonce)
        html = response.get_data(as_text=True)
        inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
        assert all(f'nonce="{nonce}"' in attributes for attributes in inline), (path, inline)
        assert not re.search(r"\son[a-z]+\s*=", html), path
        # Flask-Admin's list and pager keep href="javascript:void(0)" on links that never navigate (not overridden).
        assert not re.search(r"javascript:(?!void\(0\))", html), path
    assert len(nonces) == len(ADMIN_PAGES)  # a new nonce per request


# --- the upload limit -----------------------------------------------------------------------------


class CountingStream:
    """A 100 MB request body that is never materialised: it counts what is read from it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.read_bytes = 0

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: offset, 1: self.position + offset, 2: self.size + offset}[whence]
        return self.position

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.position
        n = left if n is None or n < 0 else min(n, left)
        self.position += n
        self.read_bytes += n
        return b"x" * n

    def readline(self, n: int = -1) -> bytes:
        return self.read(min(n, 65536) if n and n > 0 else 65536)


def test_an_oversized_upload_is_refused_before_it_is_read(login_as, client):
    login_as("admin")
    size = 100 * 1024 * 1024
    body = CountingStream(size)
    response = client.post(
        "/admin/clients/import/",
        input_stream=body,
        content_type="multipart/form-data; boundary=xyz",
        headers={"Content-Length": str(size)},
    )
    assert response.status_code == 413
    assert "Filen er for stor" in response.get_data(as_text=True)
    assert body.read_bytes == 0


def test_upload_limit_is_configurable(app, login_as, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    login_as("admin")
    response = client.post(
        "/admin/clients/import/",
        data={"file": (io.BytesIO(b"a" * 4096), "k.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
