"""Company registers (Brønnøysundregistrene first) behind one interface, one client per app.

Deleted and removed companies are records (status ``deleted`` / ``removed``), not errors: see ``CompanyRecord``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

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
    RoleHolder,
    SearchPage,
)
from services.registry.norway import DEFAULT_BASE_URL, DEFAULT_USER_AGENT, BrregRegistry

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
    "get_registry",
]

EXTENSION_KEY = "registry"


def build_registry(config: Mapping[str, Any]) -> CompanyRegistry:
    """A new Norwegian registry from config: ``BRREG_BASE_URL``, and ``BRREG_CONTACT`` for the User-Agent."""
    base_url = config.get("BRREG_BASE_URL") or DEFAULT_BASE_URL
    contact = config.get("BRREG_CONTACT")
    user_agent = f"Klientadministrasjon/0.1 (+{contact})" if contact else DEFAULT_USER_AGENT
    return BrregRegistry(base_url, user_agent=user_agent)


def get_registry(app_or_config: Flask | Mapping[str, Any]) -> CompanyRegistry:
    """The app's registry, built on first use and kept in ``app.extensions``; a bare mapping gets a new one."""
    if not isinstance(app_or_config, Flask):
        return build_registry(app_or_config)
    registry = app_or_config.extensions.get(EXTENSION_KEY)
    if registry is None:
        # setdefault keeps the first one if two threads race to build it.
        registry = app_or_config.extensions.setdefault(EXTENSION_KEY, build_registry(app_or_config.config))
    return registry
