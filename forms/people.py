"""Forms of the Personer tab: adding people of each kind and changing a user's access."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, DateField, SelectField, SelectMultipleField
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput, ListWidget

from forms.base import TranslatedForm
from forms.one_time import OneTimeForm


def optional_int(value):
    return int(value) if value not in (None, "", "None") else None


class AccessForm(TranslatedForm):
    """Packages (one main, any add-ons) or single permissions; choices are set by the view."""

    main_package = SelectField(_l("Main package"), coerce=optional_int, validators=[Optional()])
    # Checkbox lists, not native multi-selects: nobody should need Ctrl-click to pick two add-ons.
    addon_packages = SelectMultipleField(
        _l("Add-on packages"),
        coerce=int,
        validators=[Optional()],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    permissions = SelectMultipleField(
        _l("Single permissions"),
        coerce=int,
        validators=[Optional()],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


class AddPeopleForm(OneTimeForm, AccessForm):
    """Shared settings of the people added in one go; the people themselves are rows of list fields."""

    end_date = DateField(_l("Deactivation date"), validators=[Optional()])
    employee = SelectField(_l("Employee"), coerce=optional_int, validators=[Optional()])
    reseller_role = SelectField(_l("Role"), validators=[Optional()])
    bank_access = BooleanField(_l("Bank access"))
    user_admin = BooleanField(_l("User administration"))
    invite = BooleanField(_l("Send the invitation now"), default=True)
