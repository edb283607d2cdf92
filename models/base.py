"""Shared column mixins and portable SQL checks."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, inspect
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

ORG_NUMBER_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def utcnow() -> datetime:
    return datetime.now(UTC)


def value_before_flush(obj: Any, key: str) -> Any:
    """The value an attribute had when loaded, before the changes this flush writes (the audit listener keeps old
    values loaded, so this does not query)."""
    history = inspect(obj).attrs[key].history
    return history.deleted[0] if history.deleted else getattr(obj, key)


def has_changed(obj: Any, *keys: str) -> bool:
    """Whether any of the attributes has a change waiting to be flushed."""
    state = inspect(obj)
    return any(state.attrs[key].history.has_changes() for key in keys)


class Versioned:
    """Optimistic locking: every UPDATE checks and bumps ``version``."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}


class TenantOwned:
    """A row that belongs to exactly one bureau."""

    bureau_id: Mapped[int] = mapped_column(ForeignKey("bureaus.id", ondelete="CASCADE"), index=True, nullable=False)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


def enum_column(enum_cls: type[enum.Enum], **kwargs: Any) -> Any:
    """A short string column whose allowed values are checked by the database."""
    from sqlalchemy import Enum

    return mapped_column(
        Enum(
            enum_cls,
            native_enum=False,
            create_constraint=True,
            length=max(len(m.value) for m in enum_cls),
            values_callable=lambda cls: [m.value for m in cls],
            validate_strings=True,
            name=kwargs.pop("name"),
        ),
        **kwargs,
    )


def org_number_check_sql(column: str) -> str:
    """SQL (SQLite and PostgreSQL alike) that is true when ``column`` is a valid org number.

    Nine digits whose last is the mod-11 check digit over weights 3,2,7,6,5,4,3,2; a
    remainder that would need check digit 10 can never match a single digit.
    """
    digits = [f"substr({column}, {i}, 1)" for i in range(1, 10)]
    all_digits = " AND ".join(f"{d} BETWEEN '0' AND '9'" for d in digits)
    weighted = " + ".join(f"{w} * CAST({d} AS INTEGER)" for w, d in zip(ORG_NUMBER_WEIGHTS, digits, strict=False))
    return (
        f"{column} IS NULL OR (length({column}) = 9 AND {all_digits} AND "
        f"(11 - (({weighted}) % 11)) % 11 = CAST({digits[8]} AS INTEGER))"
    )


OrgNumber = String(9)
