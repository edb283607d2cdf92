"""Field validators shared by the admin forms, backed by python-stdnum and email-validator."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from stdnum.no import orgnr
from wtforms.validators import ValidationError

from services.orgnumbers import normalise


class OrgNumber:
    """Nine digits with a valid mod-11 check digit (spaces allowed while typing)."""

    def __call__(self, form, field) -> None:
        value = field.data
        if not value:
            return
        if not orgnr.is_valid(value):
            raise ValidationError(
                _("%(value)s is not a valid organisation number (9 digits with a correct check digit).", value=value)
            )
        field.data = normalise(value)


class EmailAddress:
    """Syntax check of an e-mail address; stores it normalised (domain lower-cased)."""

    def __call__(self, form, field) -> None:
        value = (field.data or "").strip()
        if not value:
            return
        try:
            result = validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            raise ValidationError(_("%(value)s is not a valid e-mail address.", value=value)) from None
        field.data = result.normalized.lower()
