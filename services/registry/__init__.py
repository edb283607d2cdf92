"""Company registers (Brønnøysundregistrene first) behind one interface, two clients per app.

Deleted and removed companies are records (status ``deleted`` / ``removed``), not errors: see ``CompanyRecord``.

- ``request_registry(app)``: for pages a person waits on. Every call answers within ``REGISTRY_REQUEST_BUDGET``
  seconds (default 3) or raises ``RegistryTooSlow``; no retries; at most ``REGISTRY_REQUEST_CONCURRENCY`` calls
  (default 2) wait on the register at once per process, a further one is told at once that the register is slow.
- ``background_registry(app)``: for the CLI and the worker. Retries 429/5xx with backoff, honouring ``Retry-After``.
- ``get_registry(app)``: the first inside a request, the second outside one, so a service called from both places
  gets the right one without being told.

Both share one cache of answers; a record's ``fetched_at`` says when the register really gave it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, has_request_context

from services.registry.base import (
    Address,
    BadRegistryAnswer,
    CompanyNotFound,
    CompanyRecord,
    CompanyRegistry,
    CompanyStatus,
    HolderKind,
    InvalidOrgNumber,
    NonsenseAnswer,
    RegistryError,
    RegistryTooSlow,
    RegistryUnavailable,
    RegistryUpdate,
    RoleHolder,
    SearchPage,
    UpdateKind,
    UpdatesPage,
)
from services.registry.norway import (
    DEFAULT_BASE_URL,
    DEFAULT_USER_AGENT,
    REQUEST_CONCURRENCY,
    BrregRegistry,
    TTLCache,
)

__all__ = [
    "Address",
    "BadRegistryAnswer",
    "BrregRegistry",
    "CompanyNotFound",
    "CompanyRecord",
    "CompanyRegistry",
    "CompanyStatus",
    "HolderKind",
    "InvalidOrgNumber",
    "NonsenseAnswer",
    "RegistryError",
    "RegistryTooSlow",
    "RegistryUnavailable",
    "RoleHolder",
    "SearchPage",
    "UpdateKind",
    "UpdatesPage",
    "RegistryUpdate",
    "background_registry",
    "get_registry",
    "request_registry",
]

# The background registry keeps the key the app has always used; the request registry has its own.
EXTENSION_KEY = "registry"
REQUEST_EXTENSION_KEY = "registry.request"
CACHE_EXTENSION_KEY = "registry.cache"
DEFAULT_REQUEST_BUDGET = 3.0
# Background work may wait for the register: it asked us to, and nobody is looking at a spinner.
BACKGROUND_RETRIES = 3
BACKGROUND_RETRY_AFTER_MAX = 30


def _user_agent(config: Mapping[str, Any]) -> str:
    contact = config.get("BRREG_CONTACT")
    return f"Klientadministrasjon/0.1 (+{contact})" if contact else DEFAULT_USER_AGENT


def request_budget(config: Mapping[str, Any]) -> float:
    """``REGISTRY_REQUEST_BUDGET`` in seconds: how long a page may wait for the register."""
    value = config.get("REGISTRY_REQUEST_BUDGET")
    budget = float(value) if value not in (None, "") else DEFAULT_REQUEST_BUDGET
    if not budget > 0:
        raise ValueError(f"REGISTRY_REQUEST_BUDGET must be a positive number of seconds, not {value!r}")
    return budget


def build_registry(
    config: Mapping[str, Any], *, for_request: bool = False, cache: TTLCache | None = None
) -> CompanyRegistry:
    """A new Norwegian registry from config (``BRREG_BASE_URL``, ``BRREG_CONTACT`` for the User-Agent).

    ``for_request`` gives the budgeted client without retries; otherwise the retrying background client.
    """
    base_url = config.get("BRREG_BASE_URL") or DEFAULT_BASE_URL
    if for_request:
        return BrregRegistry(
            base_url,
            user_agent=_user_agent(config),
            budget=request_budget(config),
            retries=0,
            concurrency=int(config.get("REGISTRY_REQUEST_CONCURRENCY") or REQUEST_CONCURRENCY),
            cache=cache,
        )
    return BrregRegistry(
        base_url,
        user_agent=_user_agent(config),
        retries=BACKGROUND_RETRIES,
        retry_after_max=BACKGROUND_RETRY_AFTER_MAX,
        cache=cache,
    )


def _kept(app: Flask, key: str, for_request: bool) -> CompanyRegistry:
    registry = app.extensions.get(key)
    if registry is None:
        # setdefault keeps the first one if two threads race to build it.
        cache = app.extensions.setdefault(CACHE_EXTENSION_KEY, TTLCache())
        registry = app.extensions.setdefault(key, build_registry(app.config, for_request=for_request, cache=cache))
    return registry


def request_registry(app: Flask) -> CompanyRegistry:
    """The app's registry for pages a person waits on: answers within the budget, never retries."""
    return _kept(app, REQUEST_EXTENSION_KEY, True)


def background_registry(app: Flask) -> CompanyRegistry:
    """The app's registry for the CLI and background jobs: retries with backoff, honouring ``Retry-After``."""
    return _kept(app, EXTENSION_KEY, False)


def get_registry(app_or_config: Flask | Mapping[str, Any]) -> CompanyRegistry:
    """The app's registry for where we are: the budgeted one inside a request, else the background one.

    A bare mapping gets a new background registry.
    """
    if not isinstance(app_or_config, Flask):
        return build_registry(app_or_config)
    if has_request_context():
        return request_registry(app_or_config)
    return background_registry(app_or_config)
