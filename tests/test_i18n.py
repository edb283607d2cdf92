"""The Norwegian catalogue: complete, placeholders intact, and served by default (also Flask-Admin's own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po
from flask_babel import refresh

from extensions import db

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


# --- Flask-Admin's own texts ------------------------------------------------------------------------------------


def flask_admin_msgids() -> set[str]:
    """The msgids of Flask-Admin's installed Norwegian catalogue, read where pip put it."""
    import flask_admin.translations

    path = Path(flask_admin.translations.__path__[0]) / "no" / "LC_MESSAGES" / "admin.po"
    with path.open("rb") as fh:
        return {_msgids(message.id)[0] for message in read_po(fh) if message.id}


def test_every_flask_admin_override_is_a_flask_admin_text_and_translated(catalog):
    from admin_views.admin_texts import FLASK_ADMIN_OVERRIDES

    theirs = flask_admin_msgids()
    for text in FLASK_ADMIN_OVERRIDES:
        msgid = text._args[0]
        assert msgid in theirs, f"{msgid!r} is no longer one of Flask-Admin's texts: drop the override"
        assert catalog.get(msgid) is not None and catalog.get(msgid).string, msgid


def test_flask_admin_texts_come_from_our_catalogue_first(client, login_as, make_client):
    login_as("staff")
    make_client()
    grid = page(get(client, "/admin/clients/"))
    people = page(get(client, "/admin/persons/"))  # the client grid has no generic edit (issue 11)
    assert "Legg til filter" in grid and "Legg til Filter" not in grid
    assert "50 per side" in grid and "gjenstander" not in grid and "items" not in grid
    assert 'title="Rediger"' in people and "Rediger Post" not in people
    # Flask-Admin's catalogue still answers what ours does not word (its "List").
    assert "Liste" in grid

    assert client.get("/language/en").status_code == 302
    english = page(get(client, "/admin/clients/"))
    assert "Add Filter" in english and "50 per page" in english
    assert 'title="Edit Record"' in page(get(client, "/admin/persons/"))


def test_a_failed_flask_admin_save_is_told_in_norwegian(client, login_as, make_package):
    login_as("admin")
    package = make_package(name="Grunnpakke")
    response = client.post(f"/admin/packages/edit/?id={package.id}", data={"name": "", "code": ""})
    text = page(response)
    assert "Endringene ble ikke lagret" in text
    assert "Failed to save" not in text and "Kunne ikke lagre oppføring" not in text
    db.session.expire_all()
    assert package.name == "Grunnpakke"


def test_widget_texts_are_in_the_users_language(app):
    from admin_views.admin_texts import widget_texts

    with app.test_request_context("/admin/"):
        texts = widget_texts()
    picker = texts["daterangepicker"]
    assert (picker["applyLabel"], picker["cancelLabel"]) == ("Bruk", "Avbryt")
    assert picker["monthNames"][0].startswith("jan") and picker["monthNames"][4].startswith("mai")
    assert picker["daysOfWeek"][0].startswith("s") and picker["firstDay"] == 1  # Sunday first, the week from Monday
    assert texts["select2"]["noMatches"] == "Ingen treff"


def model_views(app):
    from flask_admin.model import BaseModelView

    return [view for view in app.extensions["admin"][0]._views if isinstance(view, BaseModelView)]


def test_every_column_a_grid_or_detail_page_shows_has_a_label(app, login_as):
    """Flask-Admin makes a label from the column name ("Country Code") when a view has none: English, always."""
    from flask_login import login_user

    admin = login_as("admin")
    missing = []
    with app.test_request_context("/admin/"):
        login_user(admin)
        for view in model_views(app):
            labels = view.column_labels or {}
            details = view._details_columns if view.can_view_details else []
            shown = {name for name, _label in view._list_columns + details}
            shown |= set(view._sortable_columns or {})
            for name in sorted(shown - set(labels)):
                missing.append(f"{view.endpoint}: {name}")
            for form in (view.create_form() if view.can_create else None, None):
                for field in form or ():
                    if field.type in ("CSRFTokenField", "HiddenField"):
                        continue
                    if field.name not in labels and str(field.label.text) == field.label.text:
                        missing.append(f"{view.endpoint} form: {field.name} ({field.label.text!r})")
    assert not missing, "columns without a translated label:\n" + "\n".join(missing)


# --- flashes and refusals: never a bare English sentence ------------------------------------------------------

# Calls whose first argument a person reads. RegistryError and its kin keep English for the logs; the UI shows
# services/registry/messages.py instead. services/synthetic.py is the benchmark loader's, a developer's command.
MESSAGE_CALLS = {
    "flash",
    "ValidationError",
    "DomainError",
    "StaleEditError",
    "PolicyError",
    "InvalidInput",
    "ClosedMonthError",
    "InvalidSubmission",
    "AlreadySubmitted",
}
DEVELOPER_ONLY = {"services/synthetic.py"}
WORDS = re.compile(r"[A-Za-z]{2,}")


def _literal_words(node) -> str:
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value for part in node.values if isinstance(part, ast.Constant))
    return ""


def test_flashes_and_refusals_are_translated():
    import ast

    found = []
    files = [ROOT / "app.py"] + [p for d in ("admin_views", "forms", "services") for p in (ROOT / d).rglob("*.py")]
    for path in files:
        relative = str(path.relative_to(ROOT))
        if relative in DEVELOPER_ONLY:
            continue
        for node in ast.walk(ast.parse(path.read_text(), relative)):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None) or ""
            shown = name in MESSAGE_CALLS or name.endswith("Field")  # a form field's first argument is its label
            if shown and node.args and WORDS.search(_literal_words(node.args[0])):
                found.append(f"{relative}:{node.lineno}: {name}({ast.unparse(node.args[0])[:80]})")
            for keyword in node.keywords:
                if keyword.arg in ("label", "description", "message") and WORDS.search(_literal_words(keyword.value)):
                    found.append(
                        f"{relative}:{node.lineno}: {name}(…, {keyword.arg}={ast.unparse(keyword.value)[:60]})"
                    )
            if name == "abort" and len(node.args) > 1 and WORDS.search(_literal_words(node.args[1])):
                found.append(f"{relative}:{node.lineno}: abort(…, {ast.unparse(node.args[1])[:80]})")
    assert not found, "English a person would read, not passed through gettext:\n" + "\n".join(found)


# --- the Swedish catalogue: what a client on the Swedish template reads ---------------------------------------

SV_PO_FILE = ROOT / "translations" / "sv" / "LC_MESSAGES" / "messages.po"
# The e-mails and the public pages their links open, with what those pages' forms and services say.
SWEDISH_SURFACES = (
    ("jinja2", "templates/email/consent.txt"),
    ("jinja2", "templates/email/invitation.txt"),
    ("jinja2", "templates/public/base.html"),
    ("jinja2", "templates/public/consent.html"),
    ("jinja2", "templates/public/consent_done.html"),
    ("jinja2", "templates/public/invitation.html"),
    ("jinja2", "templates/public/invitation_done.html"),
    ("python", "admin_views/consent.py"),
    ("python", "admin_views/invitation.py"),
    ("python", "services/passwords.py"),
)
# Said by services that also say things to staff: the e-mail subjects and the invitation page's refusals.
SWEDISH_SERVICE_MESSAGES = (
    "Consent to keeping the accounts of %(company)s",
    "Invitation to %(company)s in the accounting suite",
    "Enter both your first name and your last name.",
    "A name can be at most %(max)s characters.",
)


@pytest.fixture(scope="module")
def swedish():
    with SV_PO_FILE.open("rb") as fh:
        return read_po(fh, locale="sv")


def swedish_msgids() -> dict[str, str]:
    found: dict[str, str] = {}
    for method, name in SWEDISH_SURFACES:
        for lineno, message, _comments, _context in extract_from_file(method, str(ROOT / name), keywords=KEYWORDS):
            found.setdefault(_msgids(message)[0], f"{name}:{lineno}")
    extracted = extracted_messages()
    for msgid in SWEDISH_SERVICE_MESSAGES:
        assert msgid in extracted, f"{msgid!r} is no longer in the code: update SWEDISH_SERVICE_MESSAGES"
        found.setdefault(msgid, extracted[msgid])
    return found


def test_the_swedish_catalogue_covers_every_client_facing_text(swedish):
    missing = [
        f"{where}: {msgid!r}"
        for msgid, where in sorted(swedish_msgids().items(), key=lambda item: item[1])
        if swedish.get(msgid) is None or swedish.get(msgid).fuzzy or not swedish.get(msgid).string
    ]
    assert not missing, f"translate in {SV_PO_FILE.relative_to(ROOT)}:\n" + "\n".join(missing)
    assert not swedish.fuzzy  # a fuzzy header would make `pybabel compile` (without -f) skip the catalogue


def test_swedish_placeholders_survive_translation(swedish):
    broken = [
        message.id
        for message in swedish
        if message.id
        and sorted(set(PLACEHOLDER.findall(message.id))) != sorted(set(PLACEHOLDER.findall(message.string)))
    ]
    assert not broken, broken


# --- templates: no text outside gettext -------------------------------------------------------------------------

# Each language's name in itself, in the language menu.
SELF_NAMED = {"Norsk", "bokmål", "English"}


def template_text_outside_gettext(source: str) -> list[str]:
    """Words a template shows that no gettext call wraps: text between tags and in the attributes a person reads."""
    source = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", source, flags=re.S)
    source = re.sub(r"<(script|style)\b.*?</\1>", " ", source, flags=re.S)
    source = re.sub(r'<input[^>]*type="hidden"[^>]*>', " ", source)  # codes posted back, never shown
    attributes = re.findall(r'\b(?:title|placeholder|aria-label|alt|value|data-confirm)="([^"]*)"', source)
    text = re.sub(r"<[^>]+>", " ", source) + " " + " ".join(attributes)
    text = re.sub(r"\{\w+\}", " ", text)  # merge fields such as {DueDate}: the suite's codes, in every language
    return [word for word in re.findall(r"[^\W\d_][\w-]+", text) if word not in SELF_NAMED and word != "nbsp"]


def test_templates_show_no_text_outside_gettext():
    found = {
        str(path.relative_to(ROOT)): words
        for path in sorted((ROOT / TEMPLATE_DIR).rglob("*.html"))
        if (words := template_text_outside_gettext(path.read_text()))
    }
    assert not found, f"text not passed through _(): {found}"


def test_the_template_check_sees_plain_text():
    assert template_text_outside_gettext('<th>Name</th><a title="Edit">{{ _("Rediger") }}</a>') == ["Name", "Edit"]
