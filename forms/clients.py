"""The "+ Ny kunde" form and the per-client forms of the client page."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, EmailField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from forms.base import TranslatedForm
from forms.one_time import OneTimeForm
from forms.validators import EmailAddress, OrgNumber
from models import Client, ContactRole, Person
from services.orgnumbers import normalise

COUNTRY_CODES = [
    SelectChoice("NO", _l("Norway")),
    SelectChoice("SE", _l("Sweden")),
    SelectChoice("DK", _l("Denmark")),
    SelectChoice("", _l("Other")),
]


def strip(value):
    return value.strip() if isinstance(value, str) else value


def compact_org_number(value):
    return normalise(value) if isinstance(value, str) else value


class NewClientForm(OneTimeForm, TranslatedForm):
    model_columns = {
        **{name: Client.__table__.c[name] for name in ("name", "organisation_form")},
        **{
            name: Client.__table__.c[name]
            for prefix in ("business", "postal")
            for name in (f"{prefix}_address_lines", f"{prefix}_postal_code", f"{prefix}_city")
        },
        **{f"contact_{name}": Person.__table__.c[name] for name in ("first_name", "last_name", "email", "phone")},
    }
    is_demo = BooleanField(_l("Demo"), description=_l("A demo client can never become a real client."))
    template = SelectField(_l("Customer template"), coerce=str, validators=[Optional()])
    company_query = StringField(
        _l("Company name or organisation number"), filters=[strip], validators=[Length(max=200)]
    )
    name = StringField(_l("Company name"), filters=[strip], validators=[DataRequired(), Length(max=200)])
    org_number = StringField(
        _l("Organisation number"), filters=[compact_org_number], validators=[Optional(), Length(max=11), OrgNumber()]
    )
    organisation_form = StringField(_l("Organisation form"), filters=[strip], validators=[Optional(), Length(max=10)])
    business_address_lines = TextAreaField(_l("Business address"), filters=[strip], validators=[Length(max=500)])
    business_postal_code = StringField(_l("Postcode"), filters=[strip], validators=[Length(max=20)])
    business_city = StringField(_l("City"), filters=[strip], validators=[Length(max=100)])
    business_country_code = SelectField(_l("Country"), choices=COUNTRY_CODES, default="NO", validators=[Optional()])
    postal_address_lines = TextAreaField(_l("Postal address"), filters=[strip], validators=[Length(max=500)])
    postal_postal_code = StringField(_l("Postal address postcode"), filters=[strip], validators=[Length(max=20)])
    postal_city = StringField(_l("Postal address city"), filters=[strip], validators=[Length(max=100)])
    postal_country_code = SelectField(_l("Postal address country"), choices=COUNTRY_CODES, default="NO")
    contact_first_name = StringField(_l("First name"), filters=[strip], validators=[DataRequired(), Length(max=100)])
    contact_last_name = StringField(_l("Last name"), filters=[strip], validators=[DataRequired(), Length(max=100)])
    contact_email = EmailField(
        _l("E-mail"), filters=[strip], validators=[DataRequired(), Length(max=254), EmailAddress()]
    )
    contact_phone = StringField(_l("Phone"), filters=[strip], validators=[Optional(), Length(max=30)])
    contact_role = RadioField(
        _l("Role"),
        choices=[
            SelectChoice(ContactRole.CEO.value, _l("General manager (daglig leder)")),
            SelectChoice(ContactRole.CHAIR.value, _l("Chair of the board (styreleder)")),
        ],
        validators=[DataRequired()],
    )


MERGE_FIELDS = ("CustomerName", "InvoiceNumber", "InvoiceDate", "DueDate", "Amount", "Currency", "KID", "CompanyName")
_BRACES = re.compile(r"\{([^{}]*)\}")


def check_merge_fields(text: str) -> None:
    """Every {Field} must be a known merge field and braces must pair up."""
    unknown = [name for name in _BRACES.findall(text or "") if name not in MERGE_FIELDS]
    if unknown:
        raise ValidationError(
            _l(
                "Unknown merge field(s): %(fields)s. Allowed: %(allowed)s.",
                fields=", ".join("{" + u + "}" for u in unknown),
                allowed=", ".join("{" + f + "}" for f in MERGE_FIELDS),
            )
        )
    leftover = _BRACES.sub("", text or "")
    if "{" in leftover or "}" in leftover:
        raise ValidationError(_l("A merge field is not closed: write it as {DueDate}, with both braces."))


def merge_fields_valid(form, field) -> None:
    check_merge_fields(field.data)


class InvoiceEmailTextForm(TranslatedForm):
    """Subject and text of the client's invoice e-mail in nb, sv and en."""

    subject_nb = StringField(_l("Subject (Norwegian)"), validators=[Optional(), Length(max=200), merge_fields_valid])
    body_nb = TextAreaField(_l("Text (Norwegian)"), validators=[Optional(), Length(max=5000), merge_fields_valid])
    subject_sv = StringField(_l("Subject (Swedish)"), validators=[Optional(), Length(max=200), merge_fields_valid])
    body_sv = TextAreaField(_l("Text (Swedish)"), validators=[Optional(), Length(max=5000), merge_fields_valid])
    subject_en = StringField(_l("Subject (English)"), validators=[Optional(), Length(max=200), merge_fields_valid])
    body_en = TextAreaField(_l("Text (English)"), validators=[Optional(), Length(max=5000), merge_fields_valid])
    version_check = HiddenField()

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        for language in ("nb", "sv", "en"):
            subject, body = self[f"subject_{language}"], self[f"body_{language}"]
            if bool(subject.data) != bool(body.data):
                (body if subject.data else subject).errors.append(
                    _l("Fill in both the subject and the text, or neither.")
                )
                ok = False
        return ok


class VersionedActionForm(TranslatedForm):
    """A POST button on the client page (switches, refresh, consent): carries the version it was shown at."""

    version_check = HiddenField()


class ImportForm(TranslatedForm):
    """Upload of a CSV or XLSX file for "Importer kunder" / "Importer personer": it only leads to the preview."""

    file = FileField(
        _l("File (CSV or XLSX)"),
        validators=[FileRequired(), FileAllowed(["csv", "xlsx", "txt"], _l("Upload a .csv or .xlsx file."))],
    )


class ImportConfirmForm(OneTimeForm, TranslatedForm):
    """ "Importer N rader" under a preview: names the file kept on the server and the counts the preview showed."""

    upload = HiddenField()
    previewed = HiddenField()


class CompanyForm(TranslatedForm):
    """The Oversikt tab's company card, edited in place; the country lists come from ``services.countries``."""

    model_columns = {
        name: Client.__table__.c[name]
        for name in (
            "name",
            "organisation_form",
            "email",
            "phone",
            *(f"{p}_{f}" for p in ("business", "postal") for f in ("address_lines", "postal_code", "city")),
        )
    }
    name = StringField(_l("Company name"), filters=[strip], validators=[DataRequired(), Length(max=200)])
    org_number = StringField(
        _l("Organisation number"), filters=[compact_org_number], validators=[Optional(), Length(max=11), OrgNumber()]
    )
    organisation_form = StringField(_l("Organisation form"), filters=[strip], validators=[Optional(), Length(max=10)])
    template = SelectField(_l("Customer template"), coerce=str, validators=[Optional()])
    business_address_lines = TextAreaField(_l("Business address"), filters=[strip], validators=[Length(max=500)])
    business_postal_code = StringField(_l("Postcode"), filters=[strip], validators=[Length(max=20)])
    business_city = StringField(_l("City"), filters=[strip], validators=[Length(max=100)])
    business_country_code = SelectField(_l("Country"), validators=[Optional()])
    postal_address_lines = TextAreaField(_l("Postal address"), filters=[strip], validators=[Length(max=500)])
    postal_postal_code = StringField(_l("Postal address postcode"), filters=[strip], validators=[Length(max=20)])
    postal_city = StringField(_l("Postal address city"), filters=[strip], validators=[Length(max=100)])
    postal_country_code = SelectField(_l("Postal address country"), validators=[Optional()])
    email = EmailField(_l("E-mail"), filters=[strip], validators=[Optional(), Length(max=254), EmailAddress()])
    phone = StringField(_l("Phone"), filters=[strip], validators=[Optional(), Length(max=30)])
    version_check = HiddenField()


class ContactForm(TranslatedForm):
    """The Oversikt tab's contact card: another of the client's people, or the contact's own details and role."""

    model_columns = {name: Person.__table__.c[name] for name in ("first_name", "last_name", "email", "phone")}
    # Only what is offered; the service refuses anyone else with the reason.
    person = SelectField(
        _l("Contact person"),
        coerce=str,
        validate_choice=False,
        validators=[Optional()],
        description=_l("Choose another of the client's people to make them the contact; their details stay theirs."),
    )
    first_name = StringField(_l("First name"), filters=[strip], validators=[Optional(), Length(max=100)])
    last_name = StringField(_l("Last name"), filters=[strip], validators=[Optional(), Length(max=100)])
    email = EmailField(_l("E-mail"), filters=[strip], validators=[Optional(), Length(max=254), EmailAddress()])
    phone = StringField(_l("Phone"), filters=[strip], validators=[Optional(), Length(max=30)])
    role = RadioField(
        _l("Role"),
        choices=[
            SelectChoice(ContactRole.CEO.value, _l("General manager (daglig leder)")),
            SelectChoice(ContactRole.CHAIR.value, _l("Chair of the board (styreleder)")),
        ],
        validators=[DataRequired()],
    )
    version_check = HiddenField()
