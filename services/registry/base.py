"""The company-register interface: normalised records, role holders, errors, and the abstract registry.

Every country's register is reached through ``CompanyRegistry``; callers never see a register's own
field names, HTTP statuses or exceptions, only ``CompanyRecord``, ``RoleHolder`` and ``RegistryError``.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.errors import DomainError


class CompanyStatus(enum.StrEnum):
    ACTIVE = "active"
    BANKRUPT = "bankrupt"
    WINDING_UP = "winding_up"
    FORCED_DISSOLUTION = "forced_dissolution"
    RECONSTRUCTION = "reconstruction"
    DELETED = "deleted"
    REMOVED = "removed"


class HolderKind(enum.StrEnum):
    PERSON = "person"
    ENTITY = "entity"
    ESTATE_ADMINISTRATOR = "estate_administrator"


@dataclass(frozen=True)
class Address:
    """A postal or business address; ``municipality`` is the municipality number (e.g. "0301"), if any."""

    lines: list[str]
    postal_code: str | None
    city: str | None
    municipality: str | None
    country_code: str | None
    country: str | None

    def to_json(self) -> dict[str, Any]:
        """The address as the JSON contract's object."""
        return {
            "lines": list(self.lines),
            "postal_code": self.postal_code,
            "city": self.city,
            "municipality": self.municipality,
            "country_code": self.country_code,
            "country": self.country,
        }


@dataclass(frozen=True)
class CompanyRecord:
    """One company as the register knows it; absent values are None.

    Deleted (status ``deleted``, ``deleted_on`` set) and removed-for-legal-reasons companies (status ``removed``,
    number and ``deleted_on`` only, name None) are records, not exceptions: they were found, and the caller
    decides what to warn about.
    """

    org_number: str
    name: str | None
    organisation_form: str | None
    business_address: Address | None
    postal_address: Address | None
    email: str | None
    phone: str | None
    website: str | None
    industry_code: str | None
    employees: int | None
    founded: date | None
    vat_registered: bool | None
    status: CompanyStatus
    deleted_on: date | None
    remarks: list[str] = field(default_factory=list)
    # When the register itself gave this answer (UTC); a kept (cached) answer keeps its original time.
    fetched_at: datetime | None = field(default=None, compare=False)
    # The register's date of the current status (konkursdato, underAvviklingDato, slettedato, …), if it gives one.
    status_date: date | None = None

    @property
    def is_active(self) -> bool:
        """Whether the register reports nothing a bureau should be warned about."""
        return self.status is CompanyStatus.ACTIVE

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON contract (dates as ISO strings, addresses as objects or null)."""
        return {
            "org_number": self.org_number,
            "name": self.name,
            "organisation_form": self.organisation_form,
            "business_address": self.business_address.to_json() if self.business_address else None,
            "postal_address": self.postal_address.to_json() if self.postal_address else None,
            "email": self.email,
            "phone": self.phone,
            "website": self.website,
            "industry_code": self.industry_code,
            "employees": self.employees,
            "founded": self.founded.isoformat() if self.founded else None,
            "vat_registered": self.vat_registered,
            "status": str(self.status),
            "deleted_on": self.deleted_on.isoformat() if self.deleted_on else None,
            "remarks": list(self.remarks),
        }


@dataclass(frozen=True)
class RoleHolder:
    """A current holder of a role; ``org_number`` is set when the holder is an entity."""

    # ``group`` is the register's role group (e.g. "STYR"): a role code alone is ambiguous, and it stays out of JSON.

    role: str
    role_name: str | None
    name: str | None
    kind: HolderKind
    org_number: str | None
    group: str | None = None

    @property
    def is_general_manager(self) -> bool:
        """Daglig leder: a candidate contact person."""
        return self.role == "DAGL"

    @property
    def is_chair(self) -> bool:
        """Styreleder (chair of the board): the other candidate contact person."""
        return self.role == "LEDE" and self.group in (None, "STYR")

    def to_json(self) -> dict[str, Any]:
        """The holder as the JSON contract."""
        return {
            "role": self.role,
            "role_name": self.role_name,
            "name": self.name,
            "kind": str(self.kind),
            "org_number": self.org_number,
        }


@dataclass(frozen=True)
class SearchPage:
    """One page of name-search results; ``total`` is the register's count of all matches."""

    records: list[CompanyRecord]
    total: int
    page: int
    size: int = 10


class UpdateKind(enum.StrEnum):
    """The feed's ``endringstype``; a value the register adds later is read as ``UNKNOWN``."""

    NEW = "Ny"
    CHANGE = "Endring"
    DELETION = "Sletting"
    REMOVAL = "Fjernet"
    UNKNOWN = "Ukjent"


@dataclass(frozen=True)
class RegistryUpdate:
    """One entry of the register's change feed.

    ``update_id`` is the feed's ``oppdateringsid`` (increasing), ``at`` its ``dato`` (UTC; None when unreadable),
    ``changes`` the JSON-Patch operations of ``endringer`` (``{"op", "path", "value"}``; empty when the register
    sent none).
    """

    update_id: int
    at: datetime | None
    org_number: str
    kind: UpdateKind
    changes: list[dict[str, Any]] = field(default_factory=list)

    def touches(self, *paths: str) -> bool:
        """Whether the update may have changed a field under one of ``paths`` ("/navn", "/postadresse").

        An update that lists no changes (a new entity, an unknown kind, a feed without ``endringer``) may have
        changed anything.
        """
        if not self.changes:
            return True
        return any(
            isinstance(change.get("path"), str)
            and any(change["path"] == path or change["path"].startswith(path + "/") for path in paths)
            for change in self.changes
        )


@dataclass(frozen=True)
class UpdatesPage:
    """One page of the change feed, ascending by ``update_id``; ``total`` is the register's count from the page's
    start, so ``has_more`` says whether another page follows."""

    updates: list[RegistryUpdate]
    total: int
    size: int

    @property
    def has_more(self) -> bool:
        return bool(self.updates) and self.total > len(self.updates)

    @property
    def last_id(self) -> int | None:
        return self.updates[-1].update_id if self.updates else None


class RegistryError(DomainError):
    """The register could not give an answer; ``str(exc)`` is a one-line reason."""


class InvalidOrgNumber(RegistryError):
    """The number fails the check digit; nothing was sent to the register."""

    def __init__(self, org_number: str) -> None:
        super().__init__(f"{org_number!r} is not a valid organisation number (9 digits with a correct check digit)")
        self.org_number = org_number


class CompanyNotFound(RegistryError):
    """The register has no company with this number."""

    def __init__(self, org_number: str) -> None:
        super().__init__(f"no company with organisation number {org_number} in the register")
        self.org_number = org_number


class RegistryUnavailable(RegistryError):
    """The register could not be reached, timed out, or kept failing after retries."""


class RegistryTooSlow(RegistryUnavailable):
    """The register did not answer within the time budget of a call made while a person waits."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the register did not answer within {seconds:g} s")
        self.seconds = seconds


class BadRegistryAnswer(RegistryError):
    """The register answered something we cannot use: not JSON, the wrong shape, or a refused request."""


class NonsenseAnswer(BadRegistryAnswer):
    """The register answered 200 with something that is not what it documents: the register answered nonsense.

    HTML, a truncated body, JSON of the wrong shape or with values of the wrong type. Never to be read as
    "not found" or "no matches": the register did not say that.
    """


class CompanyRegistry(ABC):
    """A national company register; one implementation per country."""

    @abstractmethod
    def lookup(self, org_number: str, *, max_age: float | None = None) -> CompanyRecord:
        """The company with this number (raises ``InvalidOrgNumber`` or ``CompanyNotFound``).

        ``max_age`` (seconds) refuses a kept answer older than that (0: always ask the register); the record's
        ``fetched_at`` says when the register really gave it.
        """

    @abstractmethod
    def lookup_many(self, numbers: Iterable[str], *, max_age: float | None = None) -> dict[str, CompanyRecord]:
        """The companies with these numbers, keyed by number; unknown numbers are left out (``max_age`` as above)."""

    @abstractmethod
    def search(self, text: str, page: int = 0, size: int = 10) -> SearchPage:
        """Companies whose name matches ``text``, one page at a time (for search as you type)."""

    @abstractmethod
    def roles(self, org_number: str) -> list[RoleHolder]:
        """The current holders of the company's roles (empty when it has none)."""

    @abstractmethod
    def updates(self, after_id: int | None = None, since: datetime | None = None, size: int = 100) -> UpdatesPage:
        """One page of the change feed: the updates after ``after_id``, or (without it) from the moment ``since``,
        oldest first, never from a cache. An answer of the wrong shape raises ``NonsenseAnswer``."""

    def close(self) -> None:  # noqa: B027 (an optional hook: a registry without connections has nothing to close)
        """Release network resources; the registry must not be used afterwards."""

    def __enter__(self) -> CompanyRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
