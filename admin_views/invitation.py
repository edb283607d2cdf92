"""The public page where an invited user sets a name and password from the link in the invitation e-mail."""

from __future__ import annotations

from contextlib import nullcontext

from flask import Blueprint, render_template, request
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.exc import StaleDataError
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from extensions import db
from forms.base import TranslatedForm
from services.audit import acting_as
from services.errors import DomainError
from services.invitations import (
    MAX_NAME_LENGTH,
    InvitationLinkState,
    ResolvedInvitation,
    accept_invitation,
    login_url,
    resolve_invitation,
)
from services.links import client_locale
from services.passwords import MAX_PASSWORD_LENGTH, PASSWORD_RULE, check_password, password_inputs

bp = Blueprint("invitation", __name__)

STATUS_FOR_STATE = {
    InvitationLinkState.VALID: 200,
    InvitationLinkState.INVALID: 404,
    InvitationLinkState.EXPIRED: 410,
    InvitationLinkState.USED: 410,
    InvitationLinkState.USER_EXPIRED: 410,
}


class AcceptInvitationForm(TranslatedForm):
    """The invitee's name (prefilled from the person) and a new password, typed twice."""

    first_name = StringField(_l("First name"), validators=[DataRequired(), Length(max=MAX_NAME_LENGTH)])
    last_name = StringField(_l("Last name"), validators=[DataRequired(), Length(max=MAX_NAME_LENGTH)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords do not match."))],
    )
    submit = SubmitField(_l("Activate my user"))

    # The invitee's name, e-mail and company: a password made of them is refused (set by the view).
    known_words: list[str | None] = []

    def validate_password(self, field) -> None:
        try:
            check_password(field.data, [self.first_name.data, self.last_name.data, *self.known_words])
        except DomainError as exc:
            raise ValidationError(str(exc)) from None


def _page(form: AcceptInvitationForm, link: ResolvedInvitation, error: str | None = None):
    return (
        render_template(
            "public/invitation.html",
            form=form,
            link=link,
            state=link.state.value,
            error=error,
            password_rule=PASSWORD_RULE,
        ),
        STATUS_FOR_STATE[link.state],
    )


@bp.route("/invitasjon/<token>", methods=["GET", "POST"])
def accept(token: str):
    link = resolve_invitation(db.session, token)
    # The invitee reads this page in the client's language, as the e-mail that linked here.
    language = link.user.person.client.language if link.user is not None else None
    with force_locale(client_locale(language)) if language else nullcontext():
        return _accept(token, link)


def _accept(token: str, link: ResolvedInvitation):
    person = link.user.person if link.state is InvitationLinkState.VALID else None
    form = AcceptInvitationForm(
        data={"first_name": person.first_name, "last_name": person.last_name}
        if person and request.method == "GET"
        else None
    )
    if link.state is InvitationLinkState.VALID:
        form.known_words = password_inputs(link.user)
    if link.state is not InvitationLinkState.VALID or not form.validate_on_submit():
        return _page(form, link)
    try:
        with acting_as(link.user, f"{link.user} via invitation link ({request.remote_addr})"):
            link = accept_invitation(
                db.session,
                token,
                first_name=form.first_name.data,
                last_name=form.last_name.data,
                password=form.password.data,
            )
            db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return _page(form, resolve_invitation(db.session, token), str(exc))
    except StaleDataError:  # the same link was accepted a moment ago in another tab
        db.session.rollback()
        return _page(form, resolve_invitation(db.session, token))
    if link.state is not InvitationLinkState.VALID:
        return _page(form, link)
    return render_template("public/invitation_done.html", user=link.user, login_url=login_url(link.user))
