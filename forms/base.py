"""WTForms' own messages ("This field is required." …) in the user's language.

WTForms ships Norwegian bokmål under ``nb``; the app's Norwegian locale is ``no`` (see app.py),
so neither Flask-WTF nor Flask-Admin would find it by themselves.
"""

from __future__ import annotations

from functools import lru_cache

from flask import has_request_context
from flask_babel import get_locale
from flask_wtf import FlaskForm
from wtforms.i18n import get_translations

from forms.columns import ColumnRules

WTFORMS_LANGUAGE = {"no": "nb"}


@lru_cache(maxsize=8)
def _catalogue(language: str):
    return get_translations([language])


def _current() -> object:
    locale = str(get_locale()) if has_request_context() else "en"
    return _catalogue(WTFORMS_LANGUAGE.get(locale, locale))


class WTFormsMessages:
    def gettext(self, string: str) -> str:
        return _current().gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _current().ngettext(singular, plural, n)


MESSAGES = WTFormsMessages()


class TranslatedForm(ColumnRules, FlaskForm):
    """Base of every form here: Flask-WTF's CSRF, WTForms' messages in the UI language, every field checked against
    its column (forms/columns.py)."""

    class Meta(FlaskForm.Meta):
        def get_translations(self, form):
            return MESSAGES
