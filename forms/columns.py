"""Every form's fields checked against the columns they fill (services/inputs.py), by the form base, not by hand.

``ColumnRules.validate`` runs before a form's own validators: one-line text loses its line breaks, then each text
field is refused when it holds a control character or is longer than its column (or ``TEXT_MAX`` when the form does
not say which column it fills), and each number when it does not fit its column (or 64 bits). A form names its
columns in ``model_columns`` (``{field name: Column}``); Flask-Admin's generic forms get their model's columns from
``SecureModelView.scaffold_form``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, Column
from wtforms import PasswordField, TextAreaField

from services.inputs import TEXT_MAX, is_single_line, max_length, number_problem, single_line, text_problem

_ANY_INTEGER = Column("any", BigInteger)  # a number field that names no column: the databases' widest integer
_SKIPPED = ("csrf_token",)


def _is_one_line(field: Any, column: Any) -> bool:
    if column is not None:
        return is_single_line(column)
    return not isinstance(field, TextAreaField | PasswordField)


def column_problem(field: Any, column: Any) -> object | None:
    """Why the field's value cannot go into ``column`` (or, without one, into any text or integer column)."""
    value = field.data
    if isinstance(value, str):
        return text_problem(value, max_length(column) if column is not None else TEXT_MAX)
    if isinstance(value, list | tuple):
        return next(
            (text_problem(v, TEXT_MAX) for v in value if isinstance(v, str) and text_problem(v, TEXT_MAX)), None
        )
    return number_problem(value, column if column is not None else _ANY_INTEGER)


class ColumnRules:
    """Mixed into the base of every form (``forms.base.TranslatedForm``)."""

    model_columns: ClassVar[Mapping[str, Any]] = {}

    def validate(self, extra_validators: Mapping[str, Any] | None = None) -> bool:
        """The column checks first; when one refuses, no other validator runs (a ``validate_<field>`` that looks
        the value up in the database would send it a NUL), and the refused fields carry the message."""
        refused = False
        for name, field in self._fields.items():
            if name in _SKIPPED:
                continue
            column = self.model_columns.get(name)
            if isinstance(field.data, str) and not isinstance(field, PasswordField) and _is_one_line(field, column):
                field.data = single_line(field.data)
            problem = column_problem(field, column)
            if problem is not None:
                field.errors = [str(_l("%(field)s %(problem)s", field=field.label.text, problem=problem))]
                refused = True
        if refused:
            return False
        return super().validate(extra_validators)  # type: ignore[misc]
