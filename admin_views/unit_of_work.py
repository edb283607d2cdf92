"""One unit of work at the request edge: the services flush, this commits once, or rolls back and says why.

    with unit_of_work(once) as work:
        work.claim()                     # the form's one-time token, before anything is created
        client = create_client(db.session, ...)
        work.leads_to(url_of(client))
    if work.replay:                      # a repeat of a one-time form: sent to what the first one did
        return work.replay
    if work.done:
        flash(...); return redirect(...)
    # else: rolled back, the DomainError flashed (or kept in ``work.error`` when ``quiet`` names its type)

Anything that is not a ``DomainError`` rolls back and propagates: the error pages handle it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import flash

from admin_views.submissions import OneTimeSubmission
from extensions import db
from services.errors import DomainError
from services.submissions import AlreadySubmitted


@dataclass
class Work:
    once: OneTimeSubmission | None = None
    fallback: str | None = None
    done: bool = False
    error: DomainError | None = None
    replay: object = None
    _result_url: str | None = field(default=None, repr=False)

    def claim(self) -> None:
        """Store the one-time form's token first in the transaction (a twin POST then waits for this one, and is
        sent to its result). It is the block's first statement: a context manager cannot skip its block."""
        if self.once is not None:
            self.once.claim()

    def leads_to(self, url: str) -> None:
        """Where a repeat of this one-time submission is sent (recorded in the same transaction)."""
        self._result_url = url


@contextmanager
def unit_of_work(
    once: OneTimeSubmission | None = None,
    *,
    fallback: str | None = None,
    quiet: tuple[type[DomainError], ...] = (),
) -> Iterator[Work]:
    """Run the block, commit; on a ``DomainError`` roll back and flash its message (the block claims ``once``).

    ``quiet`` lists the error types the caller shows itself (e.g. next to a form field): they are kept in
    ``work.error`` and not flashed.
    """
    work = Work(once=once, fallback=fallback)
    try:
        yield work
        if once is not None and work._result_url is not None:
            once.done(work._result_url)
        db.session.commit()
    except AlreadySubmitted as exc:
        db.session.rollback()
        work.replay = once.show_first(exc, fallback) if once is not None else None
        if once is None:
            raise
    except DomainError as exc:
        db.session.rollback()
        work.error = exc
        if not isinstance(exc, quiet):
            flash(str(exc), "error")
    except BaseException:
        db.session.rollback()
        raise
    else:
        work.done = True
