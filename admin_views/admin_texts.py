"""Flask-Admin's own texts in our words: our catalogue first, Flask-Admin's installed one for the rest.

Flask-Admin translates its templates, flashes, filters and widgets through its own gettext domain ("admin"), from
the catalogues installed with the package. Its Norwegian catalogue is partly wrong for this product ("Rediger Post",
"Legg til Filter", "Kan ikke opprette posten" when an update failed, "gjenstander" for rows). Flask-Admin merges an
``Admin(translations_path=…)`` catalogue *under* its own, so that cannot correct it. Instead its domain consults the
app's catalogue (translations/<locale>/LC_MESSAGES/messages.po) first: a Flask-Admin msgid translated there wins,
every other one comes from Flask-Admin's catalogue where pip installed it (nothing of it is copied here).

The date-range picker and Select2 that Flask-Admin's scripts use have English built in; ``widget_texts`` gives
static/js/widget_texts.js their texts in the user's language.
"""

from __future__ import annotations

import types

from babel.dates import get_day_names, get_month_names
from babel.support import Translations
from flask import Flask, g, has_app_context
from flask_admin import babel as admin_babel
from flask_babel import get_domain, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

# Flask-Admin's msgids that our catalogue words differently from Flask-Admin's Norwegian catalogue. Listed here so
# that `make messages` extracts (and keeps) them and tests/test_i18n.py checks each is translated and still one
# Flask-Admin uses.
FLASK_ADMIN_OVERRIDES = (
    _l("Add Filter"),
    _l("Reset Filters"),
    _l("Export"),
    _l("Add"),
    _l("Yes"),
    _l("No"),
    _l("empty"),
    _l("View Record"),
    _l("Edit Record"),
    _l("Delete Record"),
    _l("Create New Record"),
    _l("With selected"),
    _l("Select all records"),
    _l("Select record"),
    _l("Please select at least one record."),
    _l("Are you sure you want to delete this record?"),
    _l("Are you sure you want to delete selected records?"),
    _l("There are no items in the table."),
    _l("This field requires at least one item."),
    _l("Record was successfully created."),
    _l("Record was successfully saved."),
    _l("Record does not exist."),
    _l("Failed to create record."),
    _l("Failed to save record."),
    _l("Failed to create record. %(error)s"),
    _l("Failed to update record. %(error)s"),
    _l("Failed to delete record. %(error)s"),
    _l("Failed to delete records. %(error)s"),
    _l("Integrity error. %(message)s"),
    _l("Invalid Filter Value: %(value)s"),
    _l("Save and Add Another"),
    _l("Save and Continue Editing"),
)

_MARK = "_consults_app_catalogue"


def _app_catalogue_first(domain) -> Translations:
    """Flask-Admin's catalogue with ours merged over it, built once per request and locale (both are cached)."""
    installed = type(domain).get_translations(domain)
    if not has_app_context() or get_locale() is None:
        return installed
    ours = get_domain().get_translations()
    cache = g.setdefault("_admin_translations", {})
    key = (id(installed), id(ours))
    merged = cache.get(key)
    if merged is None:
        merged = Translations()
        merged.merge(installed)
        merged.merge(ours)  # later wins
        if hasattr(installed, "plural"):
            merged.plural = installed.plural
        cache[key] = merged
    return merged


def consult_app_catalogue(app: Flask) -> None:
    """Make Flask-Admin's gettext domain look in the app's catalogue before its own (once per process)."""
    domain = admin_babel.domain
    if not getattr(domain, _MARK, False):
        domain.get_translations = types.MethodType(_app_catalogue_first, domain)
        setattr(domain, _MARK, True)
    app.jinja_env.globals["widget_texts"] = widget_texts


def widget_texts() -> dict:
    """Texts and calendar names for the date-range picker and Select2, in the user's language."""
    locale = get_locale()
    months = get_month_names("abbreviated", locale=locale)
    days = get_day_names("short", locale=locale)  # 0 = Monday
    return {
        "daterangepicker": {
            "applyLabel": _("Use"),
            "cancelLabel": _("Cancel"),
            "fromLabel": _("From"),
            "toLabel": _("To"),
            "weekLabel": _("Wk"),
            "customRangeLabel": _("Custom period"),
            "monthNames": [months[m] for m in range(1, 13)],
            "daysOfWeek": [days[(d + 6) % 7] for d in range(7)],  # the picker counts from Sunday
            "firstDay": 1 if locale is not None and locale.first_week_day == 0 else 0,
        },
        "select2": {
            "noMatches": _("No matches"),
            "searching": _("Searching…"),
            "loadMore": _("Loading more…"),
            "inputTooShort": _("Type at least %(num)s more characters", num="{n}"),
            "selectionTooBig": _("You can choose at most %(num)s", num="{n}"),
            "ajaxError": _("Could not load the choices"),
        },
    }
