"""The Norwegian catalogue: complete, placeholders intact, and served by default (also Flask-Admin's own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po
from flask_babel import refresh

ROOT = Path(__file__).resolve().parent.parent
PO_FILE = ROOT / "translations" / "no" / "LC_MESSAGES" / "messages.po"

# Same inputs and keywords as the documented `pybabel extract` run.
SOURCE_FILES = ("app.py", "cli.py")
SOURCE_DIRS = ("admin_views", "forms", "services")
TEMPLATE_DIR = "templates"
# Our templates that override Flask-Admin's call its _gettext/_ngettext, which consult our catalogue first
# (admin_views/admin_texts.py): their msgids are ours to translate too.
KEYWORDS = {
    "_": None,
    "gettext": None,
    "_l": None,
    "lazy_gettext": None,
    "ngettext": (1, 2),
    "_gettext": None,
    "_ngettext": (1, 2),
}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdifr]")


def _msgids(message_id: str | tuple[str, ...]) -> tuple[str, ...]:
    return message_id if isinstance(message_id, tuple) else (message_id,)


def extracted_messages() -> dict[str, str]:
    """Every translatable msgid in the code and templates → where it was first found."""
    found: dict[str, str] = {}

    def add(filename: str, lineno: int, message: str | tuple[str, ...]) -> None:
        key = _msgids(message)[0]
        if key:
            found.setdefault(key, f"{filename}:{lineno}")

    for name in SOURCE_FILES:
        for lineno, message, _comments, _context in extract_from_file("python", str(ROOT / name), keywords=KEYWORDS):
            add(name, lineno, message)
    # The method map patterns are relative to the directory walked.
    walks = [(name, "**.py", "python") for name in SOURCE_DIRS] + [(TEMPLATE_DIR, "**.html", "jinja2")]
    for directory, pattern, method in walks:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT / directory), method_map=[(pattern, method)], keywords=KEYWORDS
        ):
            add(f"{directory}/{filename}", lineno, message)
    return found


@pytest.fixture(scope="module")
def catalog():
    with PO_FILE.open("rb") as fh:
        return read_po(fh, locale="no")


def test_extraction_covers_python_and_templates():
    messages = extracted_messages()
    assert "Clients" in messages  # admin_views (lazy_gettext as _l)
    assert "Log in" in messages  # templates/auth/login.html (jinja2)
    assert "%(value)s is not a valid e-mail address." in messages  # forms (gettext as _)


def test_every_extracted_message_has_a_norwegian_translation(catalog):
    missing = []
    for msgid, where in sorted(extracted_messages().items(), key=lambda item: item[1]):
        message = catalog.get(msgid)
        strings = _msgids(message.string) if message is not None else ()
        if message is None or message.fuzzy or not strings or not all(s.strip() for s in strings):
            missing.append(f"{where}: {msgid!r}")
    assert not missing, (
        f"{len(missing)} message(s) lack a (non-fuzzy) Norwegian translation in {PO_FILE.relative_to(ROOT)}; "
        "run pybabel extract + update and translate them:\n" + "\n".join(missing)
    )


def test_catalogue_has_no_fuzzy_entries(catalog):
    fuzzy = [message.id for message in catalog if message.id and message.fuzzy]
    assert not fuzzy, fuzzy


def test_placeholders_survive_translation(catalog):
    broken = []
    for message in catalog:
        if not message.id:
            continue
        expected = sorted(p for msgid in _msgids(message.id) for p in set(PLACEHOLDER.findall(msgid)))
        for translation in _msgids(message.string):
            if translation and sorted(set(PLACEHOLDER.findall(translation))) != sorted(set(expected)):
                broken.append(f"{message.id!r} → {translation!r}")
    assert not broken, "placeholders differ between msgid and msgstr:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("msgid", "phrase"),
    [
        ("Log in", "Logg inn"),
        ("Wrong e-mail or password, or the user is not active.", "Feil e-post eller passord"),
        (
            "Another client in this bureau already has this organisation number.",
            "har allerede dette organisasjonsnummeret",
        ),
        (
            "The internal client holds the bureau's own employees: it cannot be archived or deleted.",
            "kan ikke arkiveres eller slettes",
        ),
        ("A user can hold at most one main package at a time.", "høyst én hovedpakke"),
        ("Customer template", "Kundemal"),
    ],
)
def test_key_phrases(catalog, msgid, phrase):
    assert phrase in catalog.get(msgid).string


def page(response) -> str:
    return response.get_data(as_text=True)


def get(client, url: str):
    """GET as a fresh request would: forget the locale Flask-Babel cached on ``g``.

    Flask-Babel 4 caches the locale (and translations) on ``g``, and the ``app`` fixture keeps one
    application context open for the whole test, so the test client's requests share it. A real
    request gets its own application context and therefore picks the locale anew.
    """
    refresh()
    return client.get(url)


def test_login_page_is_norwegian_by_default_and_english_on_request(client):
    norwegian = page(get(client, "/login"))
    assert "Logg inn" in norwegian
    assert "Log in" not in norwegian

    response = client.get("/language/en")
    assert response.status_code == 302
    english = page(get(client, "/login"))
    assert "Log in" in english
    assert "Logg inn" not in english


def test_flask_admin_strings_follow_the_language(client, login_as):
    login_as("staff")
    norwegian = page(get(client, "/admin/clients/"))
    assert "Liste" in norwegian  # Flask-Admin's own "List", from its installed "no" catalogue
    assert "Klienter" in norwegian  # ours

    assert client.get("/language/en").status_code == 302
    english = page(get(client, "/admin/clients/"))
    assert "List" in english
    assert "Liste" not in english
    assert "Clients" in english


# --- error pages ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "status", "norwegian", "english"),
    [
        ("get", "/admin/no-such-page/", 404, "Ikke funnet", "Not found"),
        ("get", "/admin/clients/details/?id=987654321", 404, "Ikke funnet", "Not found"),
        ("get", "/admin/permissions/", 403, "Ingen tilgang", "No access"),  # staff: administrators' grid
        ("post", "/admin/", 405, "Ikke mulig", "Not possible"),
    ],
)
def test_refused_requests_answer_in_the_users_language(client, login_as, method, url, status, norwegian, english):
    login_as("staff")
    response = getattr(client, method)(url)
    assert response.status_code == status
    text = page(response)
    assert norwegian in text
    for werkzeug in ("Not Found", "Forbidden", "Method Not Allowed", "The requested URL", "You don't have the"):
        assert werkzeug not in text
    client.get("/language/en")
    refresh()
    assert english in page(getattr(client, method)(url))


def test_a_lost_csrf_token_is_explained(app, client, login_as):
    login_as("staff")
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/admin/clients/action/", data={"action": "mark_demo", "rowid": ["1"]})
    assert response.status_code == 400
    assert "Skjemaet er utløpt" in page(response) and "CSRF" not in page(response)


def test_anonymous_requests_still_go_to_the_login_page(client):
    response = client.get("/admin/clients/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
