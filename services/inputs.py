"""What a value must be to go into the column it is meant for: the one home of the input rules at the edge.

Forms (``forms/columns.py``), the spreadsheet imports and, as a last net, every ORM flush ask the same functions here,
so a rule cannot hold in one surface and not in another:

- **Text**: no NUL and no other control character (tab, CR and LF aside), and no longer than the column (``String(n)``;
  a ``Text`` column takes at most ``TEXT_MAX`` characters from a person). SQLite would store an over-long value
  silently and PostgreSQL answers an error; both are refused before the database sees them.
- **One-line text** (a ``String`` column: names, phone, e-mail, …): line breaks and tabs become one space, so a client
  name cannot add lines to an e-mail's subject or body. This is harmless, so it is done quietly rather than refused.
- **Numbers**: within the column's type (``Integer`` is 32 bits on PostgreSQL, ``BigInteger`` 64, ``Numeric(p, s)``
  fewer than ``p - s`` digits before the point).

The flush guard (``register_input_guard``) applies the same rules to every new or changed row, whatever wrote it (a
generic Flask-Admin form, a service, the CLI, an import): a value that slipped past an edge is refused with a
``DomainError`` and the transaction rolls back, instead of SQLite storing it or PostgreSQL answering 500.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, Integer, Numeric, SmallInteger, String, Text, event, inspect
from sqlalchemy.orm import Session

from services.errors import DomainError

TEXT_MAX = 5000  # a Text column's limit for what a person types or imports (a multi-line address, an e-mail text)
# NUL and the other C0 control characters and DEL; tab, LF and CR are handled as line breaks below.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"\s*[\t\r\n\x85\u2028\u2029]+\s*")
INTEGER_RANGES = {
    SmallInteger: (-(2**15), 2**15 - 1),
    BigInteger: (-(2**63), 2**63 - 1),
    Integer: (-(2**31), 2**31 - 1),  # after its subclasses: PostgreSQL's integer is 32 bits
}


class InvalidInput(DomainError):
    """A value that cannot go into its column; the message names the field."""


def max_length(column: Any) -> int | None:
    """The most characters ``column`` takes from a person: ``String(n)``'s n, ``TEXT_MAX`` for a ``Text``."""
    kind = getattr(column, "type", None)
    if isinstance(kind, Text):
        return min(kind.length or TEXT_MAX, TEXT_MAX)
    if isinstance(kind, String):
        return kind.length
    return None


def is_single_line(column: Any) -> bool:
    kind = getattr(column, "type", None)
    return isinstance(kind, String) and not isinstance(kind, Text)


def single_line(value: str) -> str:
    """Line breaks and tabs (with the spaces around them) become one space."""
    return _LINE_BREAKS.sub(" ", value)


def text_problem(value: str, limit: int | None) -> object | None:
    """Why ``value`` cannot be stored as text of at most ``limit`` characters, or None."""
    if _CONTROL.search(value):
        return _l("contains a control character (such as NUL); remove it.")
    if limit is not None and len(value) > limit:
        return _l("is %(length)s characters long; at most %(limit)s are allowed.", length=len(value), limit=limit)
    return None


def number_problem(value: Any, column: Any) -> object | None:
    """Why the number ``value`` does not fit the integer or decimal ``column``, or None."""
    kind = getattr(column, "type", None)
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return None
    if isinstance(kind, Numeric) and not isinstance(kind, Integer) and kind.precision is not None:
        bound = Decimal(10) ** (kind.precision - (kind.scale or 0))
        if not Decimal(value).is_finite() or abs(Decimal(value)) >= bound:
            return _l("must be less than %(bound)s.", bound=bound)
        return None
    for integer_type, (low, high) in INTEGER_RANGES.items():
        if isinstance(kind, integer_type):
            if not low <= value <= high:
                return _l("must be between %(low)s and %(high)s.", low=low, high=high)
            return None
    return None


def cleaned(value: Any, column: Any, label: object) -> Any:
    """``value`` made ready for ``column`` (line breaks out of one-line text), or ``InvalidInput`` naming ``label``."""
    if isinstance(value, str):
        if is_single_line(column):
            value = single_line(value)
        problem = text_problem(value, max_length(column))
    else:
        problem = number_problem(value, column)
    if problem is not None:
        raise InvalidInput(_l("%(field)s %(problem)s", field=label, problem=problem))
    return value


def cell_problems(row: dict[str, str], columns: dict[str, Any], labels: dict[str, str] | None = None) -> list[str]:
    """An import row's cells against the columns they go to: one message per bad cell, prefixed with its header
    (``labels``' name for it, when given). Only text is a cell: a value the import itself put in the row (a job's
    client id) is not checked."""
    labels = labels or {}
    problems = []
    for header, column in columns.items():
        value = row.get(header)
        if value and isinstance(value, str):
            problem = text_problem(single_line(value) if is_single_line(column) else value, max_length(column))
            if problem is not None:
                problems.append(f"{labels.get(header, header)}: {problem}")
    for header, value in row.items():  # columns that go nowhere (a demo flag, a package code) still take no NUL
        if header not in columns and isinstance(value, str) and _CONTROL.search(value):
            problems.append(f"{labels.get(header, header)}: {text_problem(value, None)}")
    return problems


def clean_row(row: dict[str, str], columns: dict[str, Any]) -> dict[str, str]:
    """The row with its one-line cells' line breaks made spaces (after ``cell_problems`` found nothing)."""
    return {
        header: single_line(value)
        if isinstance(value, str) and header in columns and is_single_line(columns[header])
        else value
        for header, value in row.items()
    }


_CHECKED_COLUMNS: dict[Any, list[tuple[str, Any]]] = {}


def _checked_columns(mapper: Any) -> list[tuple[str, Any]]:
    """A mapper's text and number columns by attribute key (worked out once per mapper)."""
    found = _CHECKED_COLUMNS.get(mapper)
    if found is None:
        found = [
            (attribute.key, attribute.columns[0])
            for attribute in mapper.column_attrs
            if len(attribute.columns) == 1 and isinstance(attribute.columns[0].type, String | Integer | Numeric)
        ]
        _CHECKED_COLUMNS[mapper] = found
    return found


def _check_row(obj: Any) -> None:
    """A new row's values, or a changed row's changed values (read from the instance state: no history loads)."""
    state = inspect(obj)
    changed = None if state.key is None else state.committed_state
    values = state.dict
    for key, column in _checked_columns(state.mapper):
        if changed is not None and key not in changed:
            continue
        value = values.get(key)
        if value is None:
            continue
        fixed = cleaned(value, column, f"{state.mapper.local_table.name}.{column.name}")
        if fixed is not value and fixed != value:
            setattr(obj, key, fixed)


def _guard(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in [*session.new, *session.dirty]:
        _check_row(obj)


def register_input_guard() -> None:
    """Check every new or changed row's text and numbers against their columns before each flush (see above)."""
    if not event.contains(Session, "before_flush", _guard):
        event.listen(Session, "before_flush", _guard)
