"""The one-time token of every create form, at the edge: shown in the form, checked and stored by the POST that
creates, and a repeat of that POST sent to what the first one did (``services/submissions.py`` keeps the tokens).

A custom page uses ``OneTimeSubmission`` around its create; Flask-Admin's generic create forms get it from
``OneTimeCreateMixin``, which ``SecureModelView`` mixes in.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, g, redirect, request
from flask_admin import expose
from flask_login import current_user

from extensions import db
from forms.one_time import TOKEN_FIELD, OneTimeForm
from services import submissions
from services.submissions import AlreadySubmitted, InvalidSubmission


def tokens_required() -> bool:
    """A POST without a token is refused; tests of other topics post without one (as they do without CSRF)."""
    return bool(current_app.config.get("SUBMISSION_TOKEN_REQUIRED", True))


class OneTimeSubmission:
    """The token of the create form this request shows or receives (``form`` given: its field is filled)."""

    def __init__(self, form: Any = None, *, key: str | None = None) -> None:
        self.key = key or request.endpoint or request.path
        self.posted = request.form.get(TOKEN_FIELD) if request.method == "POST" else None
        self.nonce: str | None = None
        self.problem: InvalidSubmission | None = None
        self.used = None
        if request.method == "POST" and (self.posted or tokens_required()):
            try:
                self.nonce = submissions.read_token(self._secret(), self.posted, user_id=current_user.id, form=self.key)
            except InvalidSubmission as exc:
                self.problem = exc
        if form is not None and self.nonce is None:
            # A new showing, or a POST whose token is no good: the page shown next carries a fresh one.
            form[TOKEN_FIELD].data = submissions.issue_token(self._secret(), user_id=current_user.id, form=self.key)

    @staticmethod
    def _secret() -> str:
        return current_app.config["SECRET_KEY"]

    def replay(self, fallback: str | None = None):
        """For a POST of a form already sent: a redirect to the first result with a message; else None."""
        if self.nonce is None:
            return None
        first = submissions.first_submission(db.session, self.nonce)
        if first is None:
            return None
        return self.show_first(AlreadySubmitted(first.result_url), fallback)

    def show_first(self, exc: AlreadySubmitted, fallback: str | None = None):
        """The message and the redirect for a repeat (found up front, or when its twin won the race)."""
        flash(str(exc), "info")
        return self.redirect_to_first(exc, fallback)

    def redirect_to_first(self, exc: AlreadySubmitted, fallback: str | None = None):
        return redirect(exc.result_url or fallback or request.full_path)

    def claim(self) -> None:
        """Inside the create's transaction, before anything is created: InvalidSubmission for a token that is no
        good, AlreadySubmitted when a twin POST stored it first (its transaction is waited for)."""
        if self.problem is not None:
            raise self.problem
        if self.nonce is None:
            return
        self.used = submissions.claim(
            db.session, self.nonce, bureau_id=current_user.bureau_id, user_id=current_user.id, form=self.key
        )

    def done(self, result_url: str) -> None:
        """Record where this submission led, in the same transaction, for a repeat to be sent there."""
        if self.used is not None:
            submissions.record_result(db.session, self.used, result_url)


class OneTimeCreateMixin:
    """Flask-Admin's generic create forms carry the token; a repeat of a create is sent to the created record."""

    def get_create_form(self):
        form_class = super().get_create_form()

        class OneTimeCreateForm(OneTimeForm, form_class):
            pass

        return OneTimeCreateForm

    def create_form(self, obj: Any = None):
        form = super().create_form(obj)
        g.one_time_submission = OneTimeSubmission(form)
        return form

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        if request.method == "POST" and self.can_create:
            replay = OneTimeSubmission().replay()
            if replay is not None:
                return replay
        response = super().create_view()
        lost_race = g.pop("submission_replay", None)  # a twin POST created it while this one waited
        return lost_race if lost_race is not None else response

    def build_new_instance(self):
        """Called by ``create_model`` first, inside its transaction: the token is stored before the record."""
        once = g.get("one_time_submission")
        if once is not None:
            try:
                once.claim()
            except AlreadySubmitted as exc:
                g.submission_replay = once.redirect_to_first(exc, self.get_url(".index_view"))
                raise
        return super().build_new_instance()

    def _on_model_change(self, form, model, is_created: bool) -> None:
        super()._on_model_change(form, model, is_created)
        once = g.get("one_time_submission")
        if is_created and once is not None and once.used is not None:
            db.session.flush()
            once.done(self.get_url(".details_view", id=model.id))
