"""One-time submission tokens: every create form carries one, and a second POST of the same form creates nothing.

A token is signed (itsdangerous) for one user and one form, and holds a random nonce. Nothing is stored when the
form is shown; the nonce is stored (``SubmissionToken``) by the POST that creates, in the same transaction as what
it creates, and before it: the unique nonce makes a twin POST wait for the first one's transaction and then find
its result, in one process or several and on both engines. A POST refused by a check stores nothing, so the same
form can be corrected and sent again.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import SubmissionToken, utcnow
from services.errors import DomainError

SALT = "submission-token"
# How long a form may stay open before it is sent; used tokens are kept as long, then deleted.
TOKEN_LIFETIME = timedelta(days=7)
FORGET_EVERY = 6 * 3600  # seconds between the worker's clean-ups


class InvalidSubmission(DomainError):
    """The form's token is missing, forged, for another user or form, or too old."""


class AlreadySubmitted(DomainError):
    """This form was sent before and created something; ``result_url`` is where that first POST led."""

    def __init__(self, result_url: str | None) -> None:
        super().__init__(
            _("This form was already sent, so nothing was done again. This is what the first submission did.")
        )
        self.result_url = result_url


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def issue_token(secret_key: str, *, user_id: int, form: str) -> str:
    """A fresh token for one showing of ``form`` to ``user_id``."""
    return _serializer(secret_key).dumps([user_id, form, secrets.token_urlsafe(16)])


def read_token(secret_key: str, token: str | None, *, user_id: int, form: str) -> str:
    """The nonce of a token this user got for this form, or InvalidSubmission saying what to do."""
    if not token:
        raise InvalidSubmission(_("The form came without its one-time token, so nothing was saved. Send it again."))
    try:
        data = _serializer(secret_key).loads(token[:500], max_age=int(TOKEN_LIFETIME.total_seconds()))
    except SignatureExpired:
        raise InvalidSubmission(
            _("The form was open too long, so nothing was saved. Check the fields and send it again.")
        ) from None
    except BadSignature:
        data = None
    if (
        not isinstance(data, list)
        or len(data) != 3
        or data[0] != user_id
        or data[1] != form
        or not isinstance(data[2], str)
        or not 0 < len(data[2]) <= 32
    ):
        raise InvalidSubmission(
            _("The form's one-time token is not valid here, so nothing was saved. Check the fields and send it again.")
        )
    return data[2]


def first_submission(session: Session, nonce: str) -> SubmissionToken | None:
    """The stored use of this nonce, if the form was sent (and committed) before."""
    with session.no_autoflush:
        return session.scalar(select(SubmissionToken).where(SubmissionToken.nonce == nonce))


def claim(session: Session, nonce: str, *, bureau_id: int, user_id: int | None, form: str) -> SubmissionToken:
    """Store the nonce before anything is created, in a savepoint; AlreadySubmitted when a twin POST has it.

    On PostgreSQL the insert waits while a twin's transaction holds the same nonce, then fails once it commits
    (or goes ahead when it rolled back); on SQLite writers already take turns. Only flushes.
    """
    used = SubmissionToken(nonce=nonce, form=form[:100], bureau_id=bureau_id, user_id=user_id)
    try:
        with session.begin_nested():
            session.add(used)
            session.flush()
    except IntegrityError:
        first = first_submission(session, nonce)
        if first is None:  # refused for another reason than the nonce
            raise
        raise AlreadySubmitted(first.result_url) from None
    return used


def record_result(session: Session, used: SubmissionToken, result_url: str) -> None:
    """Where the first submission led, for a repeat of it to be sent to. Only flushes."""
    used.result_url = result_url[:500]
    session.flush()


def forget_old(session: Session, now: datetime | None = None) -> int:
    """Delete the used tokens no form can carry any more (older than the token's lifetime); how many."""
    cutoff = (now or utcnow()) - TOKEN_LIFETIME - timedelta(hours=1)
    result = session.execute(
        delete(SubmissionToken).where(SubmissionToken.used_at < cutoff),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount or 0
