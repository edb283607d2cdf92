"""The hidden one-time token of a create form (``admin_views/submissions.py`` fills and checks it)."""

from __future__ import annotations

from wtforms import HiddenField

TOKEN_FIELD = "submission_token"


class OneTimeForm:
    """Mixed into a create form: a second POST of the same showing creates nothing."""

    submission_token = HiddenField()
