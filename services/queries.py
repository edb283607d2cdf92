"""Small query shapes that keep a page independent of the data's size."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session


def distinct_values(session: Session, column: Any, bureau_id: int) -> list[Any]:
    """The distinct non-null values of ``column`` in the bureau's rows, in order, for a filter's options. One index
    lookup per value, from one to the next (a recursive query over an index on (bureau_id, column)), instead of a
    DISTINCT that reads every row the bureau has."""
    table = column.table
    ours = table.c.bureau_id == bureau_id
    values = select(func.min(column).label("value")).where(ours).cte("values_", recursive=True)
    following = select(func.min(column)).where(ours, column > values.c.value).scalar_subquery()
    values = values.union_all(select(following).where(values.c.value.is_not(None)))
    return list(session.scalars(select(values.c.value).where(values.c.value.is_not(None))))
