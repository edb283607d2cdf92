"""What every request passes through: a request id, and ids in URLs bounded to what a database can hold.

- **Request id.** Every request gets a short random id (made on first use, so it exists even when the failure came
  before any hook ran). It is sent back in the ``X-Request-Id`` header, shown on every error page and put in front
  of every line the app's logger writes for the request, the traceback of a failure included: a user who quotes it
  points the operator at the log line. An id sent by the client is not taken over: it would let anyone write into
  the log.
- **Ids in paths.** ``<int:...>`` in a route only matches numbers a 64-bit integer holds: ``/people/2⁶³/access/`` is
  a 404 like any id that does not exist, not an overflow in the database driver.
"""

from __future__ import annotations

import logging
import secrets

from flask import Flask, has_request_context, request
from werkzeug.routing import IntegerConverter

REQUEST_ID_HEADER = "X-Request-Id"
_ENVIRON_KEY = "klient.request_id"
BIGGEST_ID = 2**63 - 1


def request_id() -> str:
    """This request's id (12 hex digits), or "-" outside a request."""
    if not has_request_context():
        return "-"
    return request.environ.setdefault(_ENVIRON_KEY, secrets.token_hex(6))


class BoundedIntConverter(IntegerConverter):
    """``int`` in routes: a non-negative number within 64 bits, else no match (404)."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", BIGGEST_ID)
        super().__init__(map, *args, **kwargs)


class RequestIdLogFilter(logging.Filter):
    """Prefix the app logger's lines with the request id (``[request 1a2b3c4d5e6f]``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and not getattr(record, "request_id", None):
            record.request_id = request_id()
            record.msg = f"[request {record.request_id}] {record.msg}"
        return True


def _send_request_id(response):
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def init_edge(app: Flask) -> None:
    """Before any route is added: the bounded ``int`` converter; then the request id's header and log prefix."""
    app.url_map.converters["int"] = BoundedIntConverter
    app.after_request(_send_request_id)
    app.logger.addFilter(RequestIdLogFilter())
