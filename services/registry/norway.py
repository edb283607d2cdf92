"""Brønnøysundregistrene's Enhetsregisteret (the Norwegian company register) behind ``CompanyRegistry``.

Open data, no key: https://data.brreg.no/enhetsregisteret/api (licence NLOD 2.0, "Kilde: Brønnøysundregistrene").
One ``requests.Session`` is reused with retries for 429/5xx (honouring ``Retry-After``), and answers are kept in a
small in-memory cache, because most register data changes at most daily.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import requests
import urllib3
from requests.adapters import HTTPAdapter
from stdnum.no import orgnr
from urllib3.util import Retry

from services.orgnumbers import normalise
from services.registry.base import (
    Address,
    BadRegistryAnswer,
    CompanyNotFound,
    CompanyRecord,
    CompanyRegistry,
    CompanyStatus,
    HolderKind,
    InvalidOrgNumber,
    RegistryUnavailable,
    RoleHolder,
    SearchPage,
)

DEFAULT_BASE_URL = "https://data.brreg.no/enhetsregisteret/api"
DEFAULT_USER_AGENT = "Klientadministrasjon/0.1 (+back office for Norwegian accounting bureaus)"
ENTITY_ACCEPT = "application/vnd.brreg.enhetsregisteret.enhet.v2+json;charset=UTF-8"
ROLE_ACCEPT = "application/vnd.brreg.enhetsregisteret.rolle.v1+json;charset=UTF-8"
# Sub-units have their own media type; plain JSON is documented to work everywhere, so we do not guess it.
SUBUNIT_ACCEPT = "application/json"

RETRY_STATUSES = (429, 500, 502, 503, 504)
# The register refuses any page reaching past this many hits (HTTP 400), so we never ask for one.
SEARCH_WINDOW = 10_000
BATCH_SIZE = 100
# A number unknown today may be registered tomorrow, but not within the minute someone is typing it.
NOT_FOUND_TTL = 60.0
# A Retry-After longer than this is not worth keeping a person waiting for.
RETRY_AFTER_MAX = 10

_NINE_DIGITS = re.compile(r"\d{9}")


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any


class TTLCache:
    """A small thread-safe map whose entries expire; the oldest entries go first when it is full."""

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        """The cached value, or None when absent or expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= time.monotonic():
                del self._entries[key]
                return None
            return value

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds (not at all when ``ttl`` is 0)."""
        if ttl <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (time.monotonic() + ttl, value)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (e.g. after "Oppdater fra Brønnøysund" must see fresh data)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def compact_org_number(org_number: str) -> str:
    """The number without spaces, dots or dashes, or ``InvalidOrgNumber`` when the check digit fails."""
    compact = normalise(str(org_number)) or ""
    if not orgnr.is_valid(compact):
        raise InvalidOrgNumber(str(org_number))
    return compact


def make_retry(total: int = 3, backoff_factor: float = 0.3) -> Retry:
    """The retry policy: GET only, 429/5xx and connection errors, honouring a short ``Retry-After``."""
    options: dict[str, Any] = {
        "total": total,
        "backoff_factor": backoff_factor,
        "status_forcelist": RETRY_STATUSES,
        "allowed_methods": frozenset({"GET"}),
        "respect_retry_after_header": True,
        # Hand back the last 5xx instead of raising, so it becomes one RegistryUnavailable with the status.
        "raise_on_status": False,
    }
    # Older urllib3 2.x has no cap and would sleep for as long as the server asks.
    if "retry_after_max" in inspect.signature(Retry).parameters:
        options["retry_after_max"] = RETRY_AFTER_MAX
    return Retry(**options)


class BrregRegistry(CompanyRegistry):
    """Enhetsregisteret over HTTP; thread-safe, meant to live as long as the app (one per app)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | tuple[float, float] = (3.05, 10),
        cache_ttl: float = 3600,
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        retries: int = 3,
        backoff_factor: float = 0.3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cache_ttl = cache_ttl
        self.user_agent = user_agent
        self.cache = TTLCache()
        # A session handed in is used as it is (its own adapters and retries), and its owner closes it.
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(max_retries=make_retry(retries, backoff_factor))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session

    def close(self) -> None:
        """Close the session's pooled connections if this registry created the session."""
        if self._owns_session:
            self.session.close()

    # --- the interface ---------------------------------------------------------------------------

    def lookup(self, org_number: str) -> CompanyRecord:
        """The entity with this number, else the sub-unit (branch) with it; 410 gives a ``removed`` record."""
        number = compact_org_number(org_number)
        for kind, accept in (("enheter", ENTITY_ACCEPT), ("underenheter", SUBUNIT_ACCEPT)):
            answer = self._get(f"/{kind}/{number}", accept=accept)
            if answer.status == 404:
                continue
            if answer.status == 410:
                return removed_record(answer.body, number)
            record = record_from_entity(answer.body, branch=kind == "underenheter")
            if record.org_number != number:
                raise BadRegistryAnswer(f"asked for {number}, the register answered with {record.org_number}")
            return record
        raise CompanyNotFound(number)

    def lookup_many(self, numbers: Iterable[str]) -> dict[str, CompanyRecord]:
        """Bulk refresh: 100 numbers per call, sub-units for the rest; unknown and removed numbers are left out."""
        # Every number is checked before the first request; the result follows the order of ``numbers``.
        wanted = list(dict.fromkeys(compact_org_number(n) for n in numbers))
        found: dict[str, CompanyRecord] = {}
        for kind, accept in (("enheter", ENTITY_ACCEPT), ("underenheter", SUBUNIT_ACCEPT)):
            missing = [n for n in wanted if n not in found]
            for start in range(0, len(missing), BATCH_SIZE):
                batch = missing[start : start + BATCH_SIZE]
                params = {"organisasjonsnummer": ",".join(batch), "size": len(batch)}
                body = self._get_page(f"/{kind}", params, accept=accept)
                for record in self._embedded(body, kind, branch=kind == "underenheter"):
                    if record.org_number in batch:
                        found[record.org_number] = record
        return {n: found[n] for n in wanted if n in found}

    def search(self, text: str, page: int = 0, size: int = 10) -> SearchPage:
        """Search as you type: names containing ``text``, or the company when ``text`` is nine digits."""
        # A page past the register's 10 000-hit window would be refused (400): it is the caller's mistake.
        if page < 0 or size < 1:
            raise ValueError("page must be >= 0 and size >= 1")
        if size * (page + 1) > SEARCH_WINDOW:
            raise ValueError(f"the register serves at most the first {SEARCH_WINDOW} hits (size * (page + 1))")
        text = " ".join(text.split())
        if not text:
            return SearchPage(records=[], total=0, page=page, size=size)
        digits = text.replace(" ", "")
        if _NINE_DIGITS.fullmatch(digits):
            # A failing check digit raises InvalidOrgNumber, so the user learns why nothing matches.
            try:
                record = self.lookup(digits)
            except CompanyNotFound:
                return SearchPage(records=[], total=0, page=page, size=size)
            return SearchPage(records=[record] if page == 0 else [], total=1, page=page, size=size)
        params = {"navn": text, "navnMetodeForSoek": "FORTLOEPENDE", "size": size, "page": page}
        body = self._get_page("/enheter", params, accept=ENTITY_ACCEPT)
        records = self._embedded(body, "enheter")
        page_info = body.get("page") if isinstance(body.get("page"), dict) else {}
        total = page_info.get("totalElements")
        total = total if isinstance(total, int) else len(records)
        return SearchPage(records=records, total=total, page=page, size=size)

    def roles(self, org_number: str) -> list[RoleHolder]:
        """Current role holders in the register's order; resigned or deregistered holders are left out."""
        number = compact_org_number(org_number)
        answer = self._get(f"/enheter/{number}/roller", accept=ROLE_ACCEPT)
        if answer.status in (404, 410):
            return []
        return holders_from_roles(answer.body)

    # --- HTTP ------------------------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        url = self.base_url + quote(path)
        if params:
            url += "?" + urlencode(params, safe=",")
        return url

    def _get_page(self, path: str, params: Mapping[str, Any], *, accept: str) -> dict[str, Any]:
        answer = self._get(path, params, accept=accept)
        if answer.status != 200:
            raise BadRegistryAnswer(f"the register answered {answer.status} to a list request")
        return answer.body

    def _get(self, path: str, params: Mapping[str, Any] | None = None, *, accept: str) -> _Answer:
        """A JSON answer (200, 404 or 410), from the cache when fresh; anything else raises a RegistryError."""
        url = self._url(path, params)
        cached = self.cache.get(url)
        if cached is not None:
            return cached
        headers = {"Accept": accept, "User-Agent": self.user_agent}
        try:
            # Reading the body is inside the try: a connection can also break half-way through it.
            with self.session.get(url, headers=headers, timeout=self.timeout) as response:
                status = response.status_code
                content = response.content if status != 404 else b""
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            # requests wraps nearly all of urllib3's errors, but re-raises a few of them as they are.
            raise RegistryUnavailable(_unavailable_reason(exc)) from exc
        if status == 404:
            # Not found is not an error of the register; the body is not documented, so it is not read.
            answer = _Answer(404, None)
            self.cache.set(url, answer, min(NOT_FOUND_TTL, self.cache_ttl))
            return answer
        if status in RETRY_STATUSES or status >= 500:
            raise RegistryUnavailable(f"the register answered HTTP {status} (after retries)")
        if status == 400:
            raise BadRegistryAnswer(f"the register refused the request: {validation_message(content)}")
        if status not in (200, 410):
            raise BadRegistryAnswer(f"the register answered HTTP {status}")
        body = _parse_json(content)
        if not isinstance(body, dict):
            raise BadRegistryAnswer("the register answered JSON that is not an object")
        answer = _Answer(status, body)
        self.cache.set(url, answer, self.cache_ttl)
        return answer

    def _embedded(self, body: Mapping[str, Any], key: str, *, branch: bool = False) -> list[CompanyRecord]:
        # An empty result has no "_embedded" at all.
        embedded = body.get("_embedded") or {}
        items = embedded.get(key) if isinstance(embedded, dict) else None
        if items is None:
            return []
        if not isinstance(items, list):
            raise BadRegistryAnswer(f"the register's {key!r} list is not a list")
        return [record_from_entity(item, branch=branch) for item in items]


# --- reading answers ------------------------------------------------------------------------------


def _unavailable_reason(exc: Exception) -> str:
    # After retries, requests reports a read timeout as a ConnectionError wrapping urllib3's MaxRetryError.
    # (urllib3's NewConnectionError is a TimeoutError subclass for historical reasons: it means refused.)
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    timed_out = isinstance(reason, urllib3.exceptions.TimeoutError)
    if isinstance(exc, requests.Timeout) or (
        timed_out and not isinstance(reason, urllib3.exceptions.NewConnectionError)
    ):
        return "the register did not answer in time"
    return f"the register could not be reached ({type(exc).__name__})"


def _parse_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError as exc:  # also UnicodeDecodeError
        raise BadRegistryAnswer("the register answered something that is not JSON") from exc


def validation_message(content: bytes) -> str:
    """The ``valideringsfeil`` messages of a 400 body, parsed tolerantly (the body is not guaranteed)."""
    try:
        body = json.loads(content)
    except ValueError:
        return "HTTP 400"
    if not isinstance(body, dict):
        return "HTTP 400"
    messages = []
    for error in body.get("valideringsfeil") or []:
        if isinstance(error, dict) and error.get("feilmelding"):
            parameters = error.get("parametere")
            where = f" ({', '.join(map(str, parameters))})" if isinstance(parameters, list) and parameters else ""
            messages.append(f"{error['feilmelding']}{where}")
    if not messages and body.get("feilmelding"):
        messages.append(str(body["feilmelding"]))
    return "; ".join(messages) or "HTTP 400"


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def address_from(raw: Any) -> Address | None:
    """An address, or None when absent or empty; a foreign postcode stays inside ``city`` as given."""
    if not isinstance(raw, dict):
        return None
    lines = raw.get("adresse") if isinstance(raw.get("adresse"), list) else []
    address = Address(
        lines=[line.strip() for line in lines if isinstance(line, str) and line.strip()],
        postal_code=_text(raw.get("postnummer")),
        city=_text(raw.get("poststed")),
        municipality=_text(raw.get("kommunenummer")),
        country_code=_text(raw.get("landkode")),
        country=_text(raw.get("land")),
    )
    if not address.lines and address.postal_code is None and address.city is None:
        return None
    return address


def status_from(body: Mapping[str, Any]) -> CompanyStatus:
    """The most serious status the register reports; deletion beats every other flag."""
    if body.get("slettedato") or body.get("respons_klasse") == "SlettetEnhet":
        return CompanyStatus.DELETED
    if body.get("konkurs") is True:
        return CompanyStatus.BANKRUPT
    if body.get("underAvvikling") is True:
        return CompanyStatus.WINDING_UP
    if body.get("underTvangsavviklingEllerTvangsopplosning") is True:
        return CompanyStatus.FORCED_DISSOLUTION
    if body.get("underRekonstruksjonsforhandlingDato"):
        return CompanyStatus.RECONSTRUCTION
    return CompanyStatus.ACTIVE


def _remarks(raw: Any) -> list[str]:
    remarks = []
    for item in raw if isinstance(raw, list) else []:
        text = _text(item.get("tekst")) if isinstance(item, dict) else _text(item)
        if text:
            remarks.append(text)
    return remarks


def record_from_entity(body: Any, *, branch: bool = False) -> CompanyRecord:
    """Normalise an entity (or, with ``branch``, a sub-unit) body; only the number is required."""
    if not isinstance(body, dict) or not isinstance(body.get("organisasjonsnummer"), str):
        raise BadRegistryAnswer("the register's answer has no organisation number")
    form = body.get("organisasjonsform")
    industry = body.get("naeringskode1")
    employees = body.get("antallAnsatte")
    vat = body.get("registrertIMvaregisteret")
    founded = _date(body.get("stiftelsesdato"))
    if founded is None and branch:
        # A branch is not founded but started; its start date is the closest equivalent.
        founded = _date(body.get("oppstartsdato"))
    business = body.get("beliggenhetsadresse") if branch else body.get("forretningsadresse")
    return CompanyRecord(
        org_number=body["organisasjonsnummer"],
        name=_text(body.get("navn")),
        organisation_form=_text(form.get("kode")) if isinstance(form, dict) else None,
        business_address=address_from(business),
        postal_address=address_from(body.get("postadresse")),
        email=_text(body.get("epostadresse")),
        phone=_text(body.get("telefon")) or _text(body.get("mobil")),
        website=_text(body.get("hjemmeside")),
        industry_code=_text(industry.get("kode")) if isinstance(industry, dict) else None,
        employees=employees if isinstance(employees, int) and not isinstance(employees, bool) else None,
        founded=founded,
        vat_registered=vat if isinstance(vat, bool) else None,
        status=status_from(body),
        deleted_on=_date(body.get("slettedato")),
        remarks=_remarks(body.get("paategninger")),
    )


def removed_record(body: Any, org_number: str) -> CompanyRecord:
    """The record for a number removed for legal reasons (HTTP 410): its number and date, nothing else."""
    number = body.get("organisasjonsnummer") if isinstance(body, dict) else None
    return CompanyRecord(
        org_number=number if isinstance(number, str) and number else org_number,
        name=None,
        organisation_form=None,
        business_address=None,
        postal_address=None,
        email=None,
        phone=None,
        website=None,
        industry_code=None,
        employees=None,
        founded=None,
        vat_registered=None,
        status=CompanyStatus.REMOVED,
        deleted_on=_date(body.get("slettedato")) if isinstance(body, dict) else None,
        remarks=[],
    )


def _name_lines(value: Any) -> str | None:
    if isinstance(value, list):
        return _text(" ".join(part.strip() for part in value if isinstance(part, str) and part.strip()))
    return _text(value)


def _person_name(value: Any) -> str | None:
    if isinstance(value, dict):
        parts = (value.get("fornavn"), value.get("mellomnavn"), value.get("etternavn"))
        return _text(" ".join(part.strip() for part in parts if isinstance(part, str) and part.strip()))
    return _name_lines(value)


def holder_from_role(role: Any, group: str | None) -> RoleHolder | None:
    """One current holder, or None when resigned, deregistered or of a kind we do not know."""
    if not isinstance(role, dict) or role.get("fratraadt") is True or role.get("avregistrert") is True:
        return None
    role_type = role.get("type") if isinstance(role.get("type"), dict) else {}
    code = _text(role_type.get("kode"))
    if code is None:
        return None
    description = _text(role_type.get("beskrivelse"))
    number = None
    if isinstance(role.get("person"), dict):
        name, kind = _person_name(role["person"].get("navn")), HolderKind.PERSON
    elif isinstance(role.get("enhet"), dict):
        name, kind = _name_lines(role["enhet"].get("navn")), HolderKind.ENTITY
        number = _text(role["enhet"].get("organisasjonsnummer"))
    elif isinstance(role.get("bostyrer"), dict):
        name, kind = _person_name(role["bostyrer"].get("navn")), HolderKind.ESTATE_ADMINISTRATOR
    else:
        return None
    return RoleHolder(role=code, role_name=description, name=name, kind=kind, org_number=number, group=group)


def holders_from_roles(body: Any) -> list[RoleHolder]:
    """The current holders in a ``/roller`` body, group by group."""
    groups = body.get("rollegrupper") if isinstance(body, dict) else None
    if groups is None:
        return []
    if not isinstance(groups, list):
        raise BadRegistryAnswer("the register's 'rollegrupper' is not a list")
    holders = []
    for group in groups:
        if not isinstance(group, dict):
            continue
        group_code = _text(group["type"].get("kode")) if isinstance(group.get("type"), dict) else None
        for role in group.get("roller") or []:
            holder = holder_from_role(role, group_code)
            if holder is not None:
                holders.append(holder)
    return holders
