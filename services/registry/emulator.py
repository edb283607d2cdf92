"""A local Enhetsregisteret: a real HTTP server on loopback serving the fixtures in the register's own shapes.

Used by the tests and for offline demos (``flask registry emulator``); never reaches the internet. It answers
``/enheter/{n}``, ``/underenheter/{n}``, ``/enheter/{n}/roller`` and the ``/enheter`` / ``/underenheter`` lists
(``navn`` + ``navnMetodeForSoek=FORTLOEPENDE``, ``organisasjonsnummer=A,B``, ``organisasjonsform``, ``naeringskode``,
``page``, ``size`` with the register's default size 20 and its 10 000-hit window), the change feed
``/oppdateringer/enheter`` (``dato``, ``oppdateringsid``, ``organisasjonsnummer``, ``size``, ``page``,
``includeChanges``, ``sort``; updates that tests append, and the entity changes behind them through ``make_bankrupt``,
``delete_entity``, ``remove_entity``, ``rename``, ``move``, ``change_form``), with the register's statuses:
200, 200 for deleted entities, 404 with an empty body, 410 with its body, 400 with ``valideringsfeil``, and 406 for
an ``Accept`` header of the wrong kind. Outages are simulated with ``fail_next``, ``respond_next``, ``hang_next``
and ``close_next``; every request is logged in ``requests`` (path and query below the base URL).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

FIXTURES_DIR = Path(__file__).with_name("fixtures")
API_PREFIX = "/enhetsregisteret/api"
SEARCH_WINDOW = 10_000
DEFAULT_PAGE_SIZE = 20
MEDIA_TYPES = {
    "enheter": "application/vnd.brreg.enhetsregisteret.enhet.v2+json",
    "underenheter": "application/vnd.brreg.enhetsregisteret.underenhet.v2+json",
    "roller": "application/vnd.brreg.enhetsregisteret.rolle.v1+json",
    "oppdateringer": "application/vnd.brreg.enhetsregisteret.oppdatering.enhet.v1+json",
}
# The feed's ids are large in the real register; the emulator's start somewhere alike.
FIRST_UPDATE_ID = 25_300_000
MAX_UPDATES_PAGE = 10_000
ACCEPT_ANY = {"*/*", "application/*", "application/json"}
NAME_METHODS = {"FORTLOEPENDE"}

_NUMBER = re.compile(r"\d{9}")
_INDUSTRY_CODE = re.compile(r"\d{2}(\.\d{1,3})?")


@dataclass
class _Fault:
    kind: str  # "respond", "hang" or "close"
    status: int = 503
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after: int = 0  # requests to let through (answered normally) before this fault is used


@dataclass
class _Reply:
    status: int
    body: Any = None
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _load_dir(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_dir():
        return {}
    return {file.stem: json.loads(file.read_text(encoding="utf-8")) for file in sorted(path.glob("*.json"))}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is the point of several tests, not an error.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so stopping never waits on an idle keep-alive socket.
    protocol_version = "HTTP/1.0"
    server_version = "BrregEmulator/1.0"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        emulator = self.server.emulator
        emulator._record(self.path, dict(self.headers.items()))
        fault = emulator._take_fault()
        if fault is not None and fault.kind == "close":
            return
        if fault is not None and fault.kind == "hang":
            emulator._stopping.wait(fault.seconds)
            return
        if fault is not None:
            self._send(fault.status, fault.body, fault.headers)
            return
        reply = emulator.answer(self.path, self.headers.get("Accept"))
        body = b"" if reply.body is None else json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": f"{reply.media_type};charset=UTF-8", **reply.headers} if body else reply.headers
        self._send(reply.status, body, headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout) before we answered

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's signature)
        log = self.server.emulator.log
        if log is not None:
            log(format % args)


class Emulator:
    """The running server; use ``start_emulator()`` or ``with Emulator() as emulator``."""

    def __init__(
        self,
        fixtures_dir: Path = FIXTURES_DIR,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.log = log
        self.fixtures_dir = fixtures_dir
        self._load_fixtures()
        self.errors = _load_dir(fixtures_dir / "errors")
        self.requests: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.emulator = self
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The API root, like ``https://data.brreg.no/enhetsregisteret/api``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{API_PREFIX}"

    def start(self) -> Emulator:
        """Serve in a background thread."""
        if self._thread is None:
            # A short poll interval makes stop() quick; the loop is idle otherwise.
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="brreg-emulator", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging requests and close the socket (safe to call twice)."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- outages -------------------------------------------------------------------------------

    def respond_next(
        self,
        n: int = 1,
        status: int = 200,
        body: bytes | str = b"",
        *,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
        after: int = 0,
    ) -> None:
        """Answer the next ``n`` requests with this status and raw body instead of the fixtures (after letting
        ``after`` requests through as usual: "the second page fails")."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        self._add(n, _Fault("respond", status, raw, {"Content-Type": content_type, **(headers or {})}), after=after)

    def fail_next(self, n: int = 1, status: int = 503, *, retry_after: int | None = None, after: int = 0) -> None:
        """The next ``n`` requests fail with ``status`` (a proxy's HTML page), optionally with ``Retry-After``."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        page = f"<html><body><h1>{status} Service Unavailable</h1></body></html>"
        self.respond_next(n, status, page, headers=headers, after=after)

    def hang_next(self, n: int = 1, seconds: float = 30.0) -> None:
        """The next ``n`` requests get no answer for ``seconds`` (or until ``stop``), then the connection closes."""
        self._add(n, _Fault("hang", seconds=seconds))

    def close_next(self, n: int = 1) -> None:
        """The next ``n`` connections are closed without any answer."""
        self._add(n, _Fault("close"))

    def reset(self) -> None:
        """Forget pending outages and the request log, the change feed and every change made to the companies."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.request_headers.clear()
            self._load_fixtures()

    def _load_fixtures(self) -> None:
        self.entities = _load_dir(self.fixtures_dir / "enheter")
        self.subunits = _load_dir(self.fixtures_dir / "underenheter")
        self.roles = _load_dir(self.fixtures_dir / "roller")
        self.gone = {
            "enheter": _load_dir(self.fixtures_dir / "gone" / "enheter"),
            "underenheter": _load_dir(self.fixtures_dir / "gone" / "underenheter"),
        }
        self.feed: list[dict[str, Any]] = []
        self._next_update_id = FIRST_UPDATE_ID

    # --- the change feed and the changes behind it ------------------------------------------------

    def append_update(
        self,
        org_number: str,
        endringstype: str = "Endring",
        *,
        endringer: list[dict[str, Any]] | None = None,
        dato: datetime | None = None,
        update_id: int | None = None,
    ) -> int:
        """Add an update to the feed (ids increase; ``update_id`` forces one, for hostile tests); returns its id."""
        with self._lock:
            number = self._next_update_id if update_id is None else update_id
            self._next_update_id = max(self._next_update_id, number if isinstance(number, int) else 0) + 1
            moment = (dato or datetime.now(UTC)).astimezone(UTC)
            self.feed.append(
                {
                    "oppdateringsid": number,
                    "dato": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
                    "organisasjonsnummer": org_number,
                    "endringstype": endringstype,
                    "endringer": list(endringer or []),
                    "_moment": moment,
                }
            )
            return number

    def add_entity(self, org_number: str, name: str, form: str = "AS", **fields: Any) -> dict[str, Any]:
        """A new company in the register (and a "Ny" update in the feed)."""
        body = {
            "organisasjonsnummer": org_number,
            "navn": name,
            "organisasjonsform": {"kode": form, "beskrivelse": form},
            "konkurs": False,
            "underAvvikling": False,
            "underTvangsavviklingEllerTvangsopplosning": False,
            "respons_klasse": "Enhet",
            **fields,
        }
        self.entities[org_number] = body
        return body

    def change_entity(
        self, org_number: str, fields: dict[str, Any], *, dato: datetime | None = None, endringstype: str = "Endring"
    ) -> int:
        """Change fields of a company and publish the change in the feed (JSON-Patch ``endringer``); the update id."""
        entity = self.entities[org_number]
        patch = [
            {"op": "replace" if name in entity else "add", "path": f"/{name}", "value": copy.deepcopy(value)}
            for name, value in fields.items()
        ]
        entity.update(copy.deepcopy(fields))
        return self.append_update(org_number, endringstype, endringer=patch, dato=dato)

    def make_bankrupt(self, org_number: str, on: date, *, dato: datetime | None = None) -> int:
        return self.change_entity(org_number, {"konkurs": True, "konkursdato": on.isoformat()}, dato=dato)

    def start_winding_up(self, org_number: str, on: date, *, dato: datetime | None = None) -> int:
        return self.change_entity(org_number, {"underAvvikling": True, "underAvviklingDato": on.isoformat()}, dato=dato)

    def rename(self, org_number: str, name: str, *, dato: datetime | None = None) -> int:
        return self.change_entity(org_number, {"navn": name}, dato=dato)

    def move(
        self,
        org_number: str,
        address: dict[str, Any],
        *,
        which: str = "forretningsadresse",
        dato: datetime | None = None,
    ) -> int:
        return self.change_entity(org_number, {which: address}, dato=dato)

    def change_form(self, org_number: str, code: str, description: str = "", *, dato: datetime | None = None) -> int:
        return self.change_entity(
            org_number, {"organisasjonsform": {"kode": code, "beskrivelse": description or code}}, dato=dato
        )

    def delete_entity(self, org_number: str, on: date, *, dato: datetime | None = None) -> int:
        """The company is deleted: the register keeps number, name, form and ``slettedato`` (a "Sletting" update)."""
        old = self.entities[org_number]
        self.entities[org_number] = {
            "organisasjonsnummer": org_number,
            "navn": old.get("navn"),
            "organisasjonsform": old.get("organisasjonsform"),
            "slettedato": on.isoformat(),
            "respons_klasse": "SlettetEnhet",
        }
        return self.append_update(org_number, "Sletting", dato=dato)

    def remove_entity(self, org_number: str, on: date, *, dato: datetime | None = None) -> int:
        """The company is removed for legal reasons: 410 from now on (a "Fjernet" update)."""
        self.entities.pop(org_number, None)
        self.gone["enheter"][org_number] = {"organisasjonsnummer": org_number, "slettedato": on.isoformat()}
        return self.append_update(org_number, "Fjernet", dato=dato)

    def _add(self, n: int, fault: _Fault, *, after: int = 0) -> None:
        with self._lock:
            faults = [dataclasses.replace(fault) for _ in range(n)]
            if faults:
                faults[0].after = after
            self._faults.extend(faults)

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if self._faults and self._faults[0].after > 0:
                self._faults[0].after -= 1
                return None
            return self._faults.popleft() if self._faults else None

    def _record(self, raw_path: str, headers: dict[str, str]) -> None:
        path = raw_path[len(API_PREFIX) :] if raw_path.startswith(API_PREFIX) else raw_path
        with self._lock:
            self.requests.append(path)
            self.request_headers.append(headers)

    # --- the register ---------------------------------------------------------------------------

    def answer(self, raw_path: str, accept: str | None) -> _Reply:
        """The register's reply to a GET of ``raw_path`` (below the host)."""
        parts = urlsplit(raw_path)
        if not parts.path.startswith(API_PREFIX + "/"):
            return _Reply(404)
        segments = [s for s in parts.path[len(API_PREFIX) :].split("/") if s]
        query = parse_qs(parts.query, keep_blank_values=True)
        if segments == ["oppdateringer", "enheter"]:
            if not _acceptable(accept, MEDIA_TYPES["oppdateringer"]):
                return self._error(406, parts.path, "Not Acceptable", [])
            return self._updates(parts.path, query)
        kind = segments[0] if segments else ""
        if kind not in ("enheter", "underenheter") or len(segments) > 3:
            return _Reply(404)
        family = "roller" if segments[-1] == "roller" else kind
        if not _acceptable(accept, MEDIA_TYPES[family]):
            return self._error(406, parts.path, "Not Acceptable", [])
        if len(segments) == 1:
            return self._list(kind, parts.path, query)
        number = segments[1]
        if len(segments) == 3:
            if kind != "enheter" or family != "roller" or number not in self.roles:
                return _Reply(404)
            return _Reply(200, self.roles[number], MEDIA_TYPES["roller"])
        if number in self.gone[kind]:
            return _Reply(410, self.gone[kind][number], MEDIA_TYPES[kind])
        store = self.entities if kind == "enheter" else self.subunits
        if number not in store:
            return _Reply(404)
        return _Reply(200, store[number], MEDIA_TYPES[kind])

    def _list(self, kind: str, path: str, query: dict[str, list[str]]) -> _Reply:
        single = {key: values[-1] for key, values in query.items()}
        problems = []
        page = _non_negative(single.get("page", "0"))
        size = _non_negative(single.get("size", str(DEFAULT_PAGE_SIZE)))
        if page is None:
            problems.append(("Ugyldig verdi for page", ["page"], single["page"]))
        if size is None or size == 0:
            problems.append(("Ugyldig verdi for size", ["size"], single["size"]))
        method = single.get("navnMetodeForSoek")
        if method is not None and method not in NAME_METHODS:
            problems.append((f"Ugyldig navnMetodeForSoek {method}", ["navnMetodeForSoek"], method))
        listed = single.get("organisasjonsnummer")
        numbers = [n for n in listed.split(",") if n] if listed else None
        if numbers and not all(_NUMBER.fullmatch(n) for n in numbers):
            problems.append(("Ugyldig organisasjonsnummer", ["organisasjonsnummer"], f"[{listed}]"))
        industry = single.get("naeringskode")
        if industry is not None and not _INDUSTRY_CODE.fullmatch(industry):
            problems.append((f"Næringskode {industry} er ugyldig", ["naeringskode"], f"[{industry}]"))
        if problems:
            return self._error(400, path, "Feilaktig forespørsel", problems)
        if size * (page + 1) > SEARCH_WINDOW:
            body = dict(self.errors.get("400-size-page", {"status": 400, "feilmelding": "Feilaktig forespørsel"}))
            body.update({"tidsstempel": int(time.time() * 1000), "sti": path})
            return _Reply(400, body)

        store = self.entities if kind == "enheter" else self.subunits
        items = [store[n] for n in sorted(store)]
        if "navn" in single:
            items = [item for item in items if _name_matches(item.get("navn", ""), single["navn"], method)]
        if numbers is not None:
            wanted = set(numbers)
            items = [item for item in items if item.get("organisasjonsnummer") in wanted]
        if "organisasjonsform" in single:
            forms = set(single["organisasjonsform"].split(","))
            items = [item for item in items if (item.get("organisasjonsform") or {}).get("kode") in forms]
        if industry is not None:
            items = [item for item in items if (item.get("naeringskode1") or {}).get("kode", "").startswith(industry)]
        return _Reply(200, self._page(kind, items, page, size, single), MEDIA_TYPES[kind])

    def _page(self, kind: str, items: list[Any], page: int, size: int, query: dict[str, str]) -> dict[str, Any]:
        total = len(items)
        total_pages = math.ceil(total / size)
        chunk = items[page * size : (page + 1) * size]
        others = {key: value for key, value in query.items() if key not in ("page", "size")}

        def href(number: int | None) -> str:
            params = {**others, **({"page": number} if number is not None else {}), "size": size}
            return f"{self.base_url}/{kind}?{urlencode(params, safe=',')}"

        links = {"self": {"href": href(page)}}
        if total:
            links = {"first": {"href": href(0)}, **links, "last": {"href": href(total_pages - 1)}}
            if page + 1 < total_pages:
                links["next"] = {"href": href(page + 1)}
            if page > 0:
                links["prev"] = {"href": href(page - 1)}
        body: dict[str, Any] = {}
        if chunk:
            # Like the register: an empty page has no "_embedded" key at all.
            body["_embedded"] = {kind: chunk}
        body["_links"] = links
        body["page"] = {"size": size, "totalElements": total, "totalPages": total_pages, "number": page}
        return body

    def _updates(self, path: str, query: dict[str, list[str]]) -> _Reply:
        single = {key: values[-1] for key, values in query.items()}
        problems = []
        page = _non_negative(single.get("page", "0"))
        size = _non_negative(single.get("size", str(DEFAULT_PAGE_SIZE)))
        if page is None:
            problems.append(("Ugyldig verdi for page", ["page"], single["page"]))
        if size is None or not 0 < size <= MAX_UPDATES_PAGE:
            problems.append(("Ugyldig verdi for size", ["size"], single["size"]))
        since = None
        if "dato" in single:
            try:
                since = datetime.fromisoformat(single["dato"].replace("Z", "+00:00"))
                since = since if since.tzinfo else since.replace(tzinfo=UTC)
            except ValueError:
                problems.append(("Ugyldig dato", ["dato"], single["dato"]))
        from_id = _non_negative(single.get("oppdateringsid", "0"))
        if from_id is None:
            problems.append(("Ugyldig oppdateringsid", ["oppdateringsid"], single["oppdateringsid"]))
        sort = single.get("sort", "id,ASC")
        if sort not in ("id,ASC", "id,DESC", "id,asc", "id,desc", "id"):
            problems.append(("Ugyldig sortering", ["sort"], sort))
        if problems:
            return self._error(400, path, "Feilaktig forespørsel", problems)
        with self._lock:
            items = list(self.feed)
        if since is not None:
            items = [item for item in items if item["_moment"] >= since]
        if from_id:
            items = [
                item
                for item in items
                if not isinstance(item["oppdateringsid"], int) or item["oppdateringsid"] >= from_id
            ]
        if "organisasjonsnummer" in single:
            items = [item for item in items if item["organisasjonsnummer"] == single["organisasjonsnummer"]]
        descending = sort.lower() == "id,desc"
        items.sort(key=lambda item: _sort_id(item["oppdateringsid"]), reverse=descending)
        with_changes = single.get("includeChanges", "false").lower() == "true"
        shown = []
        for item in items[page * size : (page + 1) * size]:
            entry = {key: value for key, value in item.items() if not key.startswith("_")}
            if not with_changes:
                entry.pop("endringer", None)
            entry["_links"] = {"enhet": {"href": f"{self.base_url}/enheter/{item['organisasjonsnummer']}"}}
            shown.append(entry)
        total = len(items)
        body: dict[str, Any] = {}
        if shown:
            body["_embedded"] = {"oppdaterteEnheter": shown}
        body["_links"] = {"self": {"href": f"{self.base_url}/oppdateringer/enheter?{urlencode(single, safe=',:')}"}}
        body["page"] = {"size": size, "totalElements": total, "totalPages": math.ceil(total / size), "number": page}
        return _Reply(200, body, MEDIA_TYPES["oppdateringer"])

    def _error(self, status: int, path: str, message: str, problems: list[tuple[str, list[str], str]]) -> _Reply:
        body: dict[str, Any] = {"tidsstempel": int(time.time() * 1000), "status": status, "feilmelding": message}
        if problems:
            body["valideringsfeil"] = [
                {"feilmelding": text, "parametere": params, "feilaktigVerdi": value} for text, params, value in problems
            ]
        body.update({"sti": path, "antallFeil": len(problems)})
        return _Reply(status, body)


def _acceptable(accept: str | None, media_type: str) -> bool:
    if not accept:
        return True
    ranges = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(ranges & (ACCEPT_ANY | {media_type}))


def _sort_id(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _non_negative(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _name_matches(name: str, text: str, method: str | None) -> bool:
    name, text = name.casefold(), " ".join(text.split()).casefold()
    if method == "FORTLOEPENDE":
        return text in name
    return all(word in name for word in text.split())


def start_emulator(port: int = 0, *, host: str = "127.0.0.1", log: Callable[[str], None] | None = None) -> Emulator:
    """A started emulator on loopback (``port=0`` picks a free port); stop it, or use it as a context manager."""
    return Emulator(host=host, port=port, log=log).start()
