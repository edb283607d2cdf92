"""The public page where a client's contact person answers the GDPR consent request."""

from __future__ import annotations

from contextlib import nullcontext

from flask import Blueprint, render_template, request
from flask_babel import force_locale
from flask_wtf import FlaskForm
from wtforms import SubmitField

from extensions import db
from services.audit import acting_as
from services.consent import LinkState, answer_consent, resolve_link
from services.links import client_locale

bp = Blueprint("consent", __name__)

STATUS_FOR_STATE = {LinkState.VALID: 200, LinkState.INVALID: 404, LinkState.EXPIRED: 410, LinkState.USED: 410}


class ConsentForm(FlaskForm):
    accept = SubmitField()
    decline = SubmitField()


@bp.route("/samtykke/<token>", methods=["GET", "POST"])
def answer(token: str):
    link = resolve_link(db.session, token)
    # The contact person reads this page in the client's language, as the e-mail that linked here.
    with force_locale(client_locale(link.client.language)) if link.client else nullcontext():
        return _answer(token, link)


def _answer(token: str, link):
    form = ConsentForm()
    if link.state is LinkState.VALID and form.validate_on_submit():
        accept = bool(form.accept.data)
        with acting_as(None, f"contact person via consent link ({request.remote_addr})"):
            link = answer_consent(db.session, token, accept=accept, remote_addr=request.remote_addr)
            db.session.commit()
        return render_template("public/consent_done.html", client=link.client, accepted=accept)
    return (
        render_template("public/consent.html", form=form, link=link, state=link.state.value),
        STATUS_FOR_STATE[link.state],
    )
