"""Organisation numbers: the one way they are written (``normalise``), and making valid ones for demo data."""

from __future__ import annotations

from collections.abc import Iterator

from stdnum.no import orgnr
from stdnum.util import clean


def normalise(value: str | None) -> str | None:
    """The one way an org number is stored and compared: without spaces, dots or dashes; None when empty."""
    if value is None:
        return None
    return clean(str(value), " -./").strip() or None


def with_check_digit(prefix: str) -> str | None:
    """The org number for an 8-digit prefix, or None when its check digit would be 10."""
    check = (11 - orgnr.checksum(prefix + "0")) % 11
    return None if check == 10 else prefix + str(check)


def valid_numbers(start_prefix: int) -> Iterator[str]:
    """Valid org numbers in ascending order from an 8-digit prefix."""
    for prefix in range(start_prefix, 100_000_000):
        number = with_check_digit(f"{prefix:08d}")
        if number is not None:
            yield number
