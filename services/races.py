"""Lost races: what a check before a write could not see (another request's row, committed in between) is refused
by the database's constraint; this turns that refusal into the check's own message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from services.errors import DomainError, integrity_message


@contextmanager
def refused_as_domain_error() -> Iterator[None]:
    """Around a savepoint's flush: a known constraint's refusal becomes a DomainError with its message (the
    savepoint is rolled back, the transaction stays usable); an unknown one is raised as it is."""
    try:
        yield
    except IntegrityError as exc:
        message = integrity_message(exc)
        if message is None:
            raise
        raise DomainError(message) from None
