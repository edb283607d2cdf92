"""Brønnøysundregistrene's Enhetsregisteret (the Norwegian company register) behind ``CompanyRegistry``.

Open data, no key: https://data.brreg.no/enhetsregisteret/api (licence NLOD 2.0, "Kilde: Brønnøysundregistrene").
One ``requests.Session`` is reused, and answers are kept in a small in-memory cache, because most register data
changes at most daily. The same class serves two kinds of caller (see ``services.registry.build_registry``):

- background work (CLI, worker): retries for 429/5xx with backoff, honouring ``Retry-After``;
- a person waiting on a page: a ``budget`` in seconds for the whole call, no retries. The HTTP exchange runs on a
  small thread pool and the caller waits at most the budget, so nothing the register does (hang, trickle, a slow
  connect, a slow name lookup) holds the page longer; a call that runs out of time raises ``RegistryTooSlow``.
  At most ``concurrency`` calls wait on the register at once per process; one more is answered ``RegistryTooSlow``
  at once, so a hanging register can hold only that many of a server's threads, and the others serve other pages.

An answer of the wrong shape raises ``NonsenseAnswer``, never an empty result.
"""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
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
    NonsenseAnswer,
    RegistryTooSlow,
    RegistryUnavailable,
    RegistryUpdate,
    RoleHolder,
    SearchPage,
    UpdateKind,
    UpdatesPage,
)

DEFAULT_BASE_URL = "https://data.brreg.no/enhetsregisteret/api"
DEFAULT_USER_AGENT = "Klientadministrasjon/0.1 (+back office for Norwegian accounting bureaus)"
ENTITY_ACCEPT = "application/vnd.brreg.enhetsregisteret.enhet.v2+json;charset=UTF-8"
ROLE_ACCEPT = "application/vnd.brreg.enhetsregisteret.rolle.v1+json;charset=UTF-8"
# Sub-units have their own media type; plain JSON is documented to work everywhere, so we do not guess it.
SUBUNIT_ACCEPT = "application/json"
# The change feed's own media type is not in our notes either: plain JSON.
UPDATES_ACCEPT = "application/json"
UPDATES_PATH = "/oppdateringer/enheter"
UPDATES_KEY = "oppdaterteEnheter"
# The largest page of the feed we ask for, and the largest id both databases can store (BIGINT).
MAX_UPDATES_PAGE = 10_000
MAX_UPDATE_ID = 2**63 - 1

RETRY_STATUSES = (429, 500, 502, 503, 504)
# The register refuses any page reaching past this many hits (HTTP 400), so we never ask for one.
SEARCH_WINDOW = 10_000
BATCH_SIZE = 100
# A number unknown today may be registered tomorrow, but not within the minute someone is typing it.
NOT_FOUND_TTL = 60.0
# The longest Retry-After a retrying (background) registry sleeps for; a longer one is cut to this.
RETRY_AFTER_MAX = 10
# Budgeted register calls in flight at once per registry (so per server process); one more is refused at once.
REQUEST_CONCURRENCY = 2
# No register answer is this large (100 entities are ~300 kB): a longer body is not the register's.
MAX_BODY_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 64 * 1024

_NINE_DIGITS = re.compile(r"\d{9}")
# The deadline of the public call in progress (monotonic seconds), shared by the HTTP requests it makes.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("registry_deadline", default=None)
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    # When the register gave it: wall clock (UTC) for people, monotonic for ``max_age``.
    fetched_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    fetched: float = dataclasses.field(default_factory=time.monotonic)


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


def make_retry(total: int = 3, backoff_factor: float = 0.3, retry_after_max: int = RETRY_AFTER_MAX) -> Retry:
    """The retry policy: GET only, 429/5xx and connection errors, honouring a ``Retry-After`` up to a cap.

    ``total=0`` makes no retry at all: the first 429/5xx answer or connection error is the result.
    """
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
        options["retry_after_max"] = retry_after_max
    return Retry(**options)


class BrregRegistry(CompanyRegistry):
    """Enhetsregisteret over HTTP; thread-safe, meant to live as long as the app (one per app and kind of caller).

    With ``budget`` (seconds) every public call answers within it, whatever the register does: give such a registry
    ``retries=0``, since a retry inside a budget only shortens the time the first try had.
    """

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
        retry_after_max: int = RETRY_AFTER_MAX,
        budget: float | None = None,
        concurrency: int = REQUEST_CONCURRENCY,
        cache: TTLCache | None = None,
    ) -> None:
        if budget is not None and budget <= 0:
            raise ValueError("budget must be a positive number of seconds")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cache_ttl = cache_ttl
        self.user_agent = user_agent
        self.budget = budget
        self.retries = retries
        self.concurrency = concurrency
        # A slot is held from submit until the exchange really ends, also after its caller gave up on it.
        self._slots = threading.BoundedSemaphore(concurrency)
        self.cache = cache if cache is not None else TTLCache()
        # A session handed in is used as it is (its own adapters and retries), and its owner closes it.
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(
                max_retries=make_retry(retries, backoff_factor, retry_after_max),
                # Room for the budget's workers, so none of them waits for a pooled connection.
                pool_maxsize=max(10, concurrency),
            )
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        """Close the session's pooled connections if this registry created the session; stop the budget's workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._owns_session:
            self.session.close()

    # --- the interface ---------------------------------------------------------------------------

    def lookup(self, org_number: str, *, max_age: float | None = None) -> CompanyRecord:
        """The entity with this number, else the sub-unit (branch) with it; 410 gives a ``removed`` record."""
        number = compact_org_number(org_number)
        with self._budgeted():
            for kind, accept in (("enheter", ENTITY_ACCEPT), ("underenheter", SUBUNIT_ACCEPT)):
                answer = self._get(f"/{kind}/{number}", accept=accept, max_age=max_age, check=check_entity_shape)
                if answer.status == 404:
                    continue
                if answer.status == 410:
                    return dataclasses.replace(removed_record(answer.body, number), fetched_at=answer.fetched_at)
                record = record_from_entity(answer.body, branch=kind == "underenheter")
                if record.org_number != number:
                    raise NonsenseAnswer(f"asked for {number}, the register answered with {record.org_number}")
                return dataclasses.replace(record, fetched_at=answer.fetched_at)
        raise CompanyNotFound(number)

    def lookup_many(self, numbers: Iterable[str], *, max_age: float | None = None) -> dict[str, CompanyRecord]:
        """Bulk refresh: 100 numbers per call, sub-units for the rest; unknown and removed numbers are left out."""
        # Every number is checked before the first request; the result follows the order of ``numbers``.
        wanted = list(dict.fromkeys(compact_org_number(n) for n in numbers))
        found: dict[str, CompanyRecord] = {}
        with self._budgeted():
            for kind, accept in (("enheter", ENTITY_ACCEPT), ("underenheter", SUBUNIT_ACCEPT)):
                missing = [n for n in wanted if n not in found]
                for start in range(0, len(missing), BATCH_SIZE):
                    batch = missing[start : start + BATCH_SIZE]
                    params = {"organisasjonsnummer": ",".join(batch), "size": len(batch)}
                    answer = self._get_page(f"/{kind}", params, accept=accept, max_age=max_age)
                    for record in self._embedded(answer.body, kind, branch=kind == "underenheter"):
                        if record.org_number not in batch:
                            raise NonsenseAnswer(f"the register answered with {record.org_number}, not asked for")
                        found[record.org_number] = dataclasses.replace(record, fetched_at=answer.fetched_at)
        return {n: found[n] for n in wanted if n in found}

    def search(self, text: str, page: int = 0, size: int = 10) -> SearchPage:
        """Search as you type: names containing ``text``, or the company when ``text`` is nine digits."""
        with self._budgeted():
            return self._search(text, page, size)

    def _search(self, text: str, page: int, size: int) -> SearchPage:
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
        answer = self._get_page("/enheter", params, accept=ENTITY_ACCEPT)
        records = [dataclasses.replace(r, fetched_at=answer.fetched_at) for r in self._embedded(answer.body, "enheter")]
        return SearchPage(records=records, total=answer.body["page"]["totalElements"], page=page, size=size)

    def updates(self, after_id: int | None = None, since: datetime | None = None, size: int = 100) -> UpdatesPage:
        """The change feed: ``oppdateringsid=after_id + 1`` (the register answers ids from the one given), else
        ``dato=since``; always ``includeChanges=true``, ascending by id, and never from the cache."""
        if not 1 <= size <= MAX_UPDATES_PAGE:
            raise ValueError(f"size must be between 1 and {MAX_UPDATES_PAGE}")
        params: dict[str, Any] = {}
        if after_id is not None:
            if not 0 <= after_id < MAX_UPDATE_ID:
                raise ValueError(f"after_id must be between 0 and {MAX_UPDATE_ID - 1}")
            params["oppdateringsid"] = after_id + 1
        elif since is not None:
            params["dato"] = feed_moment(since)
        else:
            raise ValueError("updates() needs after_id or since")
        params.update({"size": size, "includeChanges": "true", "sort": "id,ASC"})
        with self._budgeted():
            answer = self._get(UPDATES_PATH, params, accept=UPDATES_ACCEPT, max_age=0, keep=False, check=updates_page)
        if answer.status != 200:
            raise BadRegistryAnswer(f"the register answered {answer.status} to the change feed")
        page = updates_page(answer.body, size=size)
        if after_id is not None and page.updates and page.updates[0].update_id <= after_id:
            raise NonsenseAnswer(
                f"asked for updates after {after_id}, the register answered {page.updates[0].update_id}"
            )
        return page

    def roles(self, org_number: str) -> list[RoleHolder]:
        """Current role holders in the register's order; resigned or deregistered holders are left out."""
        number = compact_org_number(org_number)
        with self._budgeted():
            answer = self._get(f"/enheter/{number}/roller", accept=ROLE_ACCEPT, check=holders_from_roles)
        if answer.status in (404, 410):
            return []
        return holders_from_roles(answer.body)

    # --- HTTP ------------------------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        url = self.base_url + quote(path)
        if params:
            url += "?" + urlencode(params, safe=",")
        return url

    @contextmanager
    def _budgeted(self) -> Iterator[None]:
        """Start the budget of one public call; a call made inside another (search → lookup) shares its budget."""
        if self.budget is None or _DEADLINE.get() is not None:
            yield
            return
        token = _DEADLINE.set(time.monotonic() + self.budget)
        try:
            yield
        finally:
            _DEADLINE.reset(token)

    def _get_page(self, path: str, params: Mapping[str, Any], *, accept: str, max_age: float | None = None) -> _Answer:
        answer = self._get(path, params, accept=accept, max_age=max_age, check=check_list_shape)
        if answer.status != 200:
            raise BadRegistryAnswer(f"the register answered {answer.status} to a list request")
        return answer

    def _get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        accept: str,
        max_age: float | None = None,
        check: Callable[[dict[str, Any]], object] | None = None,
        keep: bool = True,
    ) -> _Answer:
        """A JSON answer (200, 404 or 410), from the cache when fresh; anything else raises a RegistryError.

        ``check`` vets a 200 body before it is kept, so nonsense is never served again from the cache; ``keep``
        False keeps nothing (the change feed is read once).
        """
        url = self._url(path, params)
        cached = self.cache.get(url)
        if cached is not None and (max_age is None or time.monotonic() - cached.fetched <= max_age):
            return cached
        headers = {"Accept": accept, "User-Agent": self.user_agent}
        deadline = _DEADLINE.get()
        if deadline is None:
            status, content = self._exchange(url, headers, self.timeout, None)
        else:
            status, content = self._within(deadline, lambda: self._exchange(url, headers, None, deadline))
        if status == 404:
            # Not found is not an error of the register; the body is not documented, so it is not read.
            answer = _Answer(404, None)
            self.cache.set(url, answer, min(NOT_FOUND_TTL, self.cache_ttl))
            return answer
        if status in RETRY_STATUSES or status >= 500:
            raise RegistryUnavailable(
                f"the register answered HTTP {status}" + (" (after retries)" if self.retries else "")
            )
        if status == 400:
            raise BadRegistryAnswer(f"the register refused the request: {validation_message(content)}")
        if status not in (200, 410):
            raise BadRegistryAnswer(f"the register answered HTTP {status}")
        body = _parse_json(content)
        if not isinstance(body, dict):
            raise NonsenseAnswer("the register answered JSON that is not an object")
        if check is not None and status == 200:
            check(body)
        answer = _Answer(status, body)
        if keep:
            self.cache.set(url, answer, self.cache_ttl)
        return answer

    def _exchange(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout: float | tuple[float, float] | None,
        deadline: float | None,
    ) -> tuple[int, bytes]:
        """One GET: the status and the body (empty for 404); a network failure raises ``RegistryUnavailable``."""
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # Queued behind other calls until the caller gave up: do not start it at all.
                raise RegistryTooSlow(self.budget or 0)
            connect = self.timeout[0] if isinstance(self.timeout, tuple) else self.timeout
            timeout = (min(connect, remaining), remaining)
        status = 0
        try:
            # Reading the body is inside the try: a connection can also break half-way through it.
            with self.session.get(
                url, headers=headers, timeout=timeout, stream=True, allow_redirects=deadline is None
            ) as response:
                status = response.status_code
                content = _read_body(response, deadline, self.budget) if status != 404 else b""
        except (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError) as exc:
            if status == 200:
                raise NonsenseAnswer("the register's answer was cut off before its end") from exc
            raise RegistryUnavailable(_unavailable_reason(exc)) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            # requests wraps nearly all of urllib3's errors, but re-raises a few of them as they are.
            raise RegistryUnavailable(_unavailable_reason(exc)) from exc
        return status, content

    def _within(self, deadline: float, work: Callable[[], _T]) -> _T:
        """Run ``work`` on the budget's workers and wait for it until ``deadline`` at the latest.

        When ``concurrency`` calls are already waiting on the register, it is slow for this one too: refused at once.
        """
        if not self._slots.acquire(blocking=False):
            raise RegistryTooSlow(self.budget or 0)

        def run() -> _T:
            try:
                return work()
            finally:
                self._slots.release()

        try:
            future = self._workers().submit(run)
        except RuntimeError:  # closed
            self._slots.release()
            raise RegistryUnavailable("the registry is closed") from None
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            # The worker stops on its own at its socket timeout (set to the same deadline) or on its next chunk.
            if future.cancel():
                self._slots.release()  # it never started, so it never will release its slot
            raise RegistryTooSlow(self.budget or 0) from None

    def _workers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="registry-call")
        return self._pool

    def _embedded(self, body: Mapping[str, Any], key: str, *, branch: bool = False) -> list[CompanyRecord]:
        # An empty page has no "_embedded" at all; ``check_list_shape`` made sure that is what it is.
        if "_embedded" not in body:
            return []
        embedded = body["_embedded"]
        items = embedded.get(key) if isinstance(embedded, dict) else None
        if not isinstance(items, list):
            raise NonsenseAnswer(f"the register's list has no {key!r} list")
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


def _read_body(response: requests.Response, deadline: float | None, budget: float | None) -> bytes:
    """The whole body, refused when it is larger than any register answer or arrives after the deadline."""
    chunks: list[bytes] = []
    size = 0
    # read1: at most one socket read per chunk, so a body trickling in byte by byte is checked against the deadline
    # after every byte, not after a full chunk.
    while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise NonsenseAnswer(f"the register's answer is larger than {MAX_BODY_BYTES} bytes")
        if deadline is not None and time.monotonic() > deadline:
            raise RegistryTooSlow(budget or 0)
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError as exc:  # also UnicodeDecodeError
        raise NonsenseAnswer("the register answered something that is not JSON") from exc


def check_list_shape(body: Mapping[str, Any]) -> None:
    """A list answer (search, several numbers) has ``page`` with counts, and ``_embedded`` whenever it has hits."""
    page = body.get("page")
    if not isinstance(page, dict):
        raise NonsenseAnswer("the register's list answer has no 'page'")
    counts = {key: page.get(key) for key in ("size", "totalElements", "number")}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        raise NonsenseAnswer("the register's list answer has no usable page counts")
    on_this_page = counts["totalElements"] - counts["size"] * counts["number"]
    if on_this_page > 0 and "_embedded" not in body:
        raise NonsenseAnswer("the register counts hits on this page but lists none")
    embedded = body.get("_embedded", {})
    lists = list(embedded.values()) if isinstance(embedded, dict) else None
    if not lists or not all(isinstance(items, list) for items in lists):
        if "_embedded" in body:
            raise NonsenseAnswer("the register's '_embedded' is not an object of lists")
        return
    for items in lists:
        for item in items:
            check_entity_shape(item)


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


# Where the register dates each status; the first date present counts.
STATUS_DATE_FIELDS: dict[CompanyStatus, tuple[str, ...]] = {
    CompanyStatus.DELETED: ("slettedato",),
    CompanyStatus.BANKRUPT: ("konkursdato",),
    CompanyStatus.WINDING_UP: ("underAvviklingDato",),
    CompanyStatus.FORCED_DISSOLUTION: (
        "underTvangsavviklingDato",
        "tvangsavvikletPgaManglendeSlettingDato",
        "tvangsopplostPgaManglendeDagligLederDato",
        "tvangsopplostPgaManglendeRevisorDato",
        "tvangsopplostPgaManglendeRegnskapDato",
        "tvangsopplostPgaMangelfulltStyreDato",
    ),
    CompanyStatus.RECONSTRUCTION: ("underRekonstruksjonsforhandlingDato",),
}


def status_date_from(body: Mapping[str, Any]) -> date | None:
    """The register's date of the entity's current status, when it gives one."""
    for name in STATUS_DATE_FIELDS.get(status_from(body), ()):
        found = _date(body.get(name))
        if found is not None:
            return found
    return None


def _remarks(raw: Any) -> list[str]:
    remarks = []
    for item in raw if isinstance(raw, list) else []:
        text = _text(item.get("tekst")) if isinstance(item, dict) else _text(item)
        if text:
            remarks.append(text)
    return remarks


# The types of the fields we read; a field may be absent (or null), but never of another type.
ENTITY_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "navn": str,
    "organisasjonsform": dict,
    "forretningsadresse": dict,
    "postadresse": dict,
    "beliggenhetsadresse": dict,
    "epostadresse": str,
    "telefon": str,
    "mobil": str,
    "hjemmeside": str,
    "naeringskode1": dict,
    "antallAnsatte": int,
    "stiftelsesdato": str,
    "oppstartsdato": str,
    "registrertIMvaregisteret": bool,
    "konkurs": bool,
    "underAvvikling": bool,
    "underTvangsavviklingEllerTvangsopplosning": bool,
    "underRekonstruksjonsforhandlingDato": str,
    "slettedato": str,
    "paategninger": list,
    "respons_klasse": str,
}
ADDRESS_FIELD_TYPES: dict[str, type] = {
    "adresse": list,
    "postnummer": str,
    "poststed": str,
    "kommunenummer": str,
    "landkode": str,
    "land": str,
}


def _wrong_type(value: Any, expected: type | tuple[type, ...]) -> bool:
    if value is None:
        return False
    # bool is an int in Python, but a count of employees is never true or false.
    if expected is int and isinstance(value, bool):
        return True
    return not isinstance(value, expected)


def check_entity_shape(body: Any) -> None:
    """An entity body as the register documents it, or ``NonsenseAnswer`` naming the first field that is not."""
    if not isinstance(body, dict):
        raise NonsenseAnswer("the register's company is not a JSON object")
    number = body.get("organisasjonsnummer")
    if not isinstance(number, str) or not _NINE_DIGITS.fullmatch(number):
        raise NonsenseAnswer("the register's answer has no organisation number")
    for name, expected in ENTITY_FIELD_TYPES.items():
        if _wrong_type(body.get(name), expected):
            raise NonsenseAnswer(f"the register's {name!r} of {number} is not a {_type_name(expected)}")
    for name in ("forretningsadresse", "postadresse", "beliggenhetsadresse"):
        address = body.get(name) or {}
        for key, expected in ADDRESS_FIELD_TYPES.items():
            if _wrong_type(address.get(key), expected):
                raise NonsenseAnswer(f"the register's {name}.{key} of {number} is not a {_type_name(expected)}")


def _type_name(expected: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in expected) if isinstance(expected, tuple) else expected.__name__


def record_from_entity(body: Any, *, branch: bool = False) -> CompanyRecord:
    """Normalise an entity (or, with ``branch``, a sub-unit) body; only the number is required."""
    check_entity_shape(body)
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
        status_date=status_date_from(body),
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
        status_date=_date(body.get("slettedato")) if isinstance(body, dict) else None,
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
    # A company without roles answers 404; a 200 always lists its role groups.
    groups = body.get("rollegrupper") if isinstance(body, dict) else None
    if not isinstance(groups, list):
        raise NonsenseAnswer("the register's roles answer has no 'rollegrupper' list")
    holders = []
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("roller", []), list):
            raise NonsenseAnswer("the register's role group is not an object with a 'roller' list")
        group_code = _text(group["type"].get("kode")) if isinstance(group.get("type"), dict) else None
        for role in group.get("roller") or []:
            if not isinstance(role, dict):
                raise NonsenseAnswer("the register's role is not an object")
            holder = holder_from_role(role, group_code)
            if holder is not None:
                holders.append(holder)
    return holders


# --- the change feed ------------------------------------------------------------------------------


def feed_moment(moment: datetime) -> str:
    """A moment as the feed's ``dato`` takes it: UTC with milliseconds, rounded down (never later than asked)."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _update_kind(value: Any) -> UpdateKind:
    try:
        return UpdateKind(value)
    except ValueError:
        return UpdateKind.UNKNOWN


def update_from(item: Any) -> RegistryUpdate:
    """One feed entry. Its id and org number must be what the register documents (the watch pages and matches by
    them: anything else is nonsense); its date, kind and changes are read tolerantly."""
    if not isinstance(item, dict):
        raise NonsenseAnswer("an entry of the register's change feed is not a JSON object")
    update_id = item.get("oppdateringsid")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or not 0 < update_id <= MAX_UPDATE_ID:
        raise NonsenseAnswer("an entry of the register's change feed has no usable 'oppdateringsid'")
    number = item.get("organisasjonsnummer")
    if not isinstance(number, str) or not _NINE_DIGITS.fullmatch(number):
        raise NonsenseAnswer(f"update {update_id} of the register's change feed has no organisation number")
    raw_changes = item.get("endringer")
    changes = [c for c in raw_changes if isinstance(c, dict)] if isinstance(raw_changes, list) else []
    return RegistryUpdate(
        update_id=update_id,
        at=_moment(item.get("dato")),
        org_number=number,
        kind=_update_kind(item.get("endringstype")),
        changes=changes,
    )


def updates_page(body: Any, *, size: int | None = None) -> UpdatesPage:
    """A page of the change feed, checked: page counts, and the entries listed whenever it counts some."""
    if not isinstance(body, dict):
        raise NonsenseAnswer("the register's change feed is not a JSON object")
    page = body.get("page")
    counts = {key: page.get(key) for key in ("size", "totalElements", "number")} if isinstance(page, dict) else {}
    if len(counts) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        raise NonsenseAnswer("the register's change feed has no usable page counts")
    items: Any = []
    if "_embedded" in body:
        embedded = body["_embedded"]
        items = embedded.get(UPDATES_KEY) if isinstance(embedded, dict) else None
        if not isinstance(items, list):
            raise NonsenseAnswer(f"the register's change feed has no {UPDATES_KEY!r} list")
    elif counts["totalElements"] - counts["size"] * counts["number"] > 0:
        raise NonsenseAnswer("the register's change feed counts updates but lists none")
    updates = sorted({u.update_id: u for u in map(update_from, items)}.values(), key=lambda u: u.update_id)
    if counts["totalElements"] < len(updates):
        raise NonsenseAnswer("the register's change feed lists more updates than it counts")
    return UpdatesPage(updates=updates, total=counts["totalElements"], size=size or counts["size"])
