"""The saved-view forms on every grid: save, rename, and the CSRF-only buttons (delete, make default)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField

from forms.base import MESSAGES


class _Form(FlaskForm):
    class Meta(FlaskForm.Meta):
        def get_translations(self, form):
            return MESSAGES


class SavedViewButtonForm(_Form):
    """Delete, make default, no default: only the CSRF token and the grid's arguments to come back to."""

    back = HiddenField()


class RenameViewForm(SavedViewButtonForm):
    # Length and characters are checked by services/saved_views.py, which says what is wrong in a sentence.
    name = StringField(_l("New name"))


class SaveViewForm(RenameViewForm):
    name = StringField(_l("Name of the view"))
    shared = BooleanField(_l("Share with the bureau"))
    make_default = BooleanField(_l("Open this list with it"))
