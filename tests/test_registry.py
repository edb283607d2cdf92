"""The company-register client, its CLI and the Enhetsregisteret emulator it is tested against (never the internet)."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app import create_app
from cli_registry import registry_group
from services.orgnumbers import valid_numbers
from services.registry import (
    BadRegistryAnswer,
    CompanyNotFound,
    CompanyStatus,
    HolderKind,
    InvalidOrgNumber,
    NonsenseAnswer,
    RegistryError,
    RegistryUnavailable,
    get_registry,
)
from services.registry.emulator import Emulator, start_emulator
from services.registry.norway import (
    DEFAULT_BASE_URL,
    ENTITY_ACCEPT,
    ROLE_ACCEPT,
    BrregRegistry,
    address_from,
    holders_from_roles,
    record_from_entity,
)

FULL_AS = "914375916"
BANKRUPT = "915330193"
WINDING_UP = "921000022"
FORCED_DISSOLUTION = "921000073"
RECONSTRUCTION = "921000081"
DELETED = "989566733"
DELETED_OLD_FORM = "821227062"
REMOVED = "921000014"
REMOVED_BRANCH = "433695968"
NUF = "921000006"
ENK = "999999905"
BRANCH = "973160834"
MINIMAL = "921000065"
EMPTY_ADDRESS_LINES = "921000030"
NO_BUSINESS_ADDRESS = "921000049"
PARTNERSHIP = "810005912"
UNKNOWN = "974760673"
INVALID = ["999999998", "112233445", "12345678", "abc"]

RECORD_KEYS = {
    "org_number",
    "name",
    "organisation_form",
    "business_address",
    "postal_address",
    "email",
    "phone",
    "website",
    "industry_code",
    "employees",
    "founded",
    "vat_registered",
    "status",
    "deleted_on",
    "remarks",
}
ADDRESS_KEYS = {"lines", "postal_code", "city", "municipality", "country_code", "country"}
HOLDER_KEYS = {"role", "role_name", "name", "kind", "org_number"}


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with start_emulator() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh_emulator(emulator: Emulator) -> Iterator[None]:
    emulator.reset()
    yield
    emulator.reset()


@pytest.fixture
def registry(emulator: Emulator) -> Iterator[BrregRegistry]:
    # Short timeouts and backoff keep the outage tests fast; production keeps the defaults.
    with BrregRegistry(emulator.base_url, timeout=(1, 0.5), backoff_factor=0.01) as registry:
        yield registry


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/enhetsregisteret/api"


def query_of(path: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlsplit(path).query).items()}


# --- lookups and normalisation ------------------------------------------------------------------


def test_full_company(registry, emulator):
    record = registry.lookup(FULL_AS)
    assert emulator.requests == [f"/enheter/{FULL_AS}"]
    assert record.to_json() == {
        "org_number": FULL_AS,
        "name": "TOLLBUGATA 17 OSLO AS",
        "organisation_form": "AS",
        "business_address": {
            "lines": ["Eksempelveien 2"],
            "postal_code": "0256",
            "city": "OSLO",
            "municipality": "0301",
            "country_code": "NO",
            "country": "Norge",
        },
        "postal_address": {
            "lines": ["c/o Eksempel Eiendom AS", "Postboks 1 Solli"],
            "postal_code": "0201",
            "city": "OSLO",
            "municipality": "0301",
            "country_code": "NO",
            "country": "Norge",
        },
        "email": "post@tollbugata17.example",
        "phone": "22 00 00 00",
        "website": "www.tollbugata17.example",
        "industry_code": "68.200",
        "employees": 3,
        "founded": "2014-10-09",
        "vat_registered": True,
        "status": "active",
        "deleted_on": None,
        "remarks": [
            "Foretaksregisteret har grunn til å anta at forretningsadressen er feil. "
            "Foretaket har fått pålegg om å melde endring."
        ],
    }
    assert record.founded == date(2014, 10, 9) and record.is_active


@pytest.mark.parametrize(
    ("number", "status"),
    [
        (FULL_AS, CompanyStatus.ACTIVE),
        (BANKRUPT, CompanyStatus.BANKRUPT),
        (WINDING_UP, CompanyStatus.WINDING_UP),
        (FORCED_DISSOLUTION, CompanyStatus.FORCED_DISSOLUTION),
        (RECONSTRUCTION, CompanyStatus.RECONSTRUCTION),
        (DELETED, CompanyStatus.DELETED),
        (DELETED_OLD_FORM, CompanyStatus.DELETED),
        (REMOVED, CompanyStatus.REMOVED),
        (REMOVED_BRANCH, CompanyStatus.REMOVED),
    ],
)
def test_status(registry, number, status):
    assert registry.lookup(number).status is status


def test_deleted_entity_has_only_number_name_form_and_date(registry):
    record = registry.lookup(DELETED)
    assert (record.name, record.organisation_form, record.deleted_on) == ("ROLS AS", "AS", date(2026, 9, 15))
    assert record.business_address is None and record.postal_address is None
    assert record.vat_registered is None and record.remarks == []


def test_removed_for_legal_reasons_is_a_record_without_name(registry, emulator):
    record = registry.lookup(REMOVED)
    assert emulator.requests == [f"/enheter/{REMOVED}"]
    assert (record.org_number, record.name, record.deleted_on) == (REMOVED, None, date(2025, 5, 24))


def test_branch_is_found_after_404_from_entities(registry, emulator):
    record = registry.lookup(BRANCH)
    assert emulator.requests == [f"/enheter/{BRANCH}", f"/underenheter/{BRANCH}"]
    assert record.organisation_form == "BEDR"
    assert record.business_address.lines == ["Løkkeveien 41"]
    assert (record.business_address.postal_code, record.employees, record.phone) == ("9510", 16, "55219020")
    assert record.founded == date(1975, 1, 1)  # oppstartsdato: branches are started, not founded


def test_removed_branch_answers_410_from_sub_units(registry, emulator):
    record = registry.lookup(REMOVED_BRANCH)
    assert emulator.requests == [f"/enheter/{REMOVED_BRANCH}", f"/underenheter/{REMOVED_BRANCH}"]
    assert record.status is CompanyStatus.REMOVED and record.name is None


def test_unknown_number_and_the_404_is_cached(registry, emulator):
    with pytest.raises(CompanyNotFound):
        registry.lookup(UNKNOWN)
    assert emulator.requests == [f"/enheter/{UNKNOWN}", f"/underenheter/{UNKNOWN}"]
    with pytest.raises(CompanyNotFound):
        registry.lookup(UNKNOWN)
    assert len(emulator.requests) == 2


def test_foreign_address_keeps_postcode_in_city(registry):
    address = registry.lookup(NUF).business_address
    assert address.to_json() == {
        "lines": ["Mlynské nivy 48"],
        "postal_code": None,
        "city": "821 09 BRATISLAVA",
        "municipality": None,
        "country_code": "SK",
        "country": "Slovakia",
    }


def test_sole_proprietorship_mobile_and_empty_address_line(registry):
    record = registry.lookup(ENK)
    assert (record.organisation_form, record.phone) == ("ENK", "400 00 000")
    assert record.business_address.lines == ["Eksempelveien 3"]
    assert record.founded is None and record.employees is None


def test_absent_fields_are_none(registry):
    record = registry.lookup(MINIMAL)
    assert (record.name, record.organisation_form, record.status) == ("MINIMAL REGNSKAP AS", "AS", "active")
    values = record.to_json()
    present = {"org_number", "name", "organisation_form", "status", "remarks"}
    assert all(values[key] is None for key in RECORD_KEYS - present)
    assert values["remarks"] == []


def test_empty_or_missing_addresses(registry):
    empty_lines = registry.lookup(EMPTY_ADDRESS_LINES).business_address
    assert (empty_lines.lines, empty_lines.postal_code, empty_lines.city) == ([], "9008", "TROMSØ")
    no_business = registry.lookup(NO_BUSINESS_ADDRESS)
    assert no_business.business_address is None
    assert no_business.postal_address.lines == ["Postboks 12"]


def test_normalisation_of_quirks_not_in_the_fixtures():
    base = {"organisasjonsnummer": FULL_AS, "navn": "X AS", "organisasjonsform": {"kode": "AS"}}
    both = record_from_entity({**base, "konkurs": True, "underAvvikling": True, "slettedato": "2026-01-02"})
    assert (both.status, both.deleted_on) == (CompanyStatus.DELETED, date(2026, 1, 2))
    assert record_from_entity({**base, "konkurs": True, "underAvvikling": True}).status is CompanyStatus.BANKRUPT
    assert address_from({"adresse": ["", "  "], "land": "Norge"}) is None
    assert address_from({"adresse": []}) is None
    assert address_from(None) is None
    odd = record_from_entity(
        {
            **base,
            "telefon": "",
            "mobil": "99 99 99 99",
            "stiftelsesdato": "not a date",
            "paategninger": [{"infotype": "FADR", "tekst": "  Adresse feil. "}, {"tekst": ""}, "Fritekst", 7],
        }
    )
    assert (odd.employees, odd.phone, odd.founded) == (None, "99 99 99 99", None)
    assert odd.remarks == ["Adresse feil.", "Fritekst"]
    for body in (None, [], {"navn": "no number"}, {"organisasjonsnummer": 914375916}):
        with pytest.raises(NonsenseAnswer):
            record_from_entity(body)
    # A field of the wrong type is the register answering nonsense, not a company without that field.
    for wrong in (
        {"antallAnsatte": True},
        {"antallAnsatte": "12"},
        {"navn": ["X AS"]},
        {"konkurs": "false"},
        {"forretningsadresse": "Storgata 1"},
        {"postadresse": {"adresse": "Postboks 1"}},
        {"organisasjonsnummer": "91437591"},
    ):
        with pytest.raises(NonsenseAnswer):
            record_from_entity({**base, **wrong})


# --- roles --------------------------------------------------------------------------------------


def test_roles_of_a_company_with_people_and_entities(registry, emulator):
    holders = registry.roles(FULL_AS)
    assert emulator.requests == [f"/enheter/{FULL_AS}/roller"]
    assert [holder.to_json() for holder in holders] == [
        {
            "role": "DAGL",
            "role_name": "Daglig leder",
            "name": "Siri Eksempel Dahl",
            "kind": "person",
            "org_number": None,
        },
        {"role": "LEDE", "role_name": "Styrets leder", "name": "Ola Nordmann", "kind": "person", "org_number": None},
        {"role": "MEDL", "role_name": "Styremedlem", "name": "Kari Nordmann", "kind": "person", "org_number": None},
        {"role": "MEDL", "role_name": "Styremedlem", "name": "Per Eksempel", "kind": "person", "org_number": None},
        {
            "role": "REVI",
            "role_name": "Revisor",
            "name": "PRICEWATERHOUSECOOPERS AS",
            "kind": "entity",
            "org_number": "987009713",
        },
        {
            "role": "REGN",
            "role_name": "Regnskapsfører",
            "name": "AIDER AS",
            "kind": "entity",
            "org_number": "922633452",
        },
    ]
    assert [h.name for h in holders if h.is_general_manager] == ["Siri Eksempel Dahl"]
    assert [h.name for h in holders if h.is_chair] == ["Ola Nordmann"]


def test_roles_of_a_bankrupt_company_include_the_estate_administrator(registry):
    holders = registry.roles(BANKRUPT)
    assert [(h.role, h.kind, h.name) for h in holders] == [
        ("DAGL", HolderKind.PERSON, "Lars Moe"),
        ("BOBE", HolderKind.ESTATE_ADMINISTRATOR, "Adv. Ola Nordmann"),
        ("LEDE", HolderKind.PERSON, "Kari Nordmann"),
    ]


def test_partners_that_are_entities(registry):
    holders = registry.roles(PARTNERSHIP)
    assert [(h.role, h.kind, h.name, h.org_number) for h in holders] == [
        ("DTPR", HolderKind.ENTITY, "Rolfsens Deltakerorganisasjon AS", "810006242"),
        ("DTPR", HolderKind.ENTITY, "Sult AS", "810004282"),
    ]


def test_no_roles_is_an_empty_list(registry):
    assert registry.roles(ENK) == []
    assert registry.roles(UNKNOWN) == []


def test_role_holders_quirks():
    group = {"type": {"kode": "STYR"}, "roller": []}
    group["roller"] = [
        {"type": {"kode": "MEDL"}, "person": {"navn": {"fornavn": "A", "etternavn": "B"}}, "fratraadt": True},
        {"type": {"kode": "MEDL"}, "person": {"navn": {"fornavn": "C", "etternavn": "D"}}, "avregistrert": True},
        {"type": {"kode": "MEDL"}, "enhet": {"organisasjonsnummer": "987009713", "navn": ["LANGT NAVN", "DEL TO AS"]}},
        {"type": {"kode": "MEDL"}, "ukjent": {}},
        {"person": {"navn": {"fornavn": "No", "etternavn": "Type"}}},
    ]
    holders = holders_from_roles({"rollegrupper": [group]})
    assert [(h.name, h.kind, h.org_number, h.group) for h in holders] == [
        ("LANGT NAVN DEL TO AS", HolderKind.ENTITY, "987009713", "STYR")
    ]
    assert holders_from_roles({"rollegrupper": []}) == []
    # No roles is a 404; a 200 without role groups is nonsense, never "no roles".
    for body in ({}, {"rollegrupper": {}}, {"rollegrupper": ["STYR"]}, {"rollegrupper": [{"roller": {}}]}):
        with pytest.raises(NonsenseAnswer):
            holders_from_roles(body)


def test_headers_differ_for_entities_and_roles(registry, emulator):
    registry.lookup(FULL_AS)
    registry.roles(FULL_AS)
    entity_headers, role_headers = emulator.request_headers
    assert entity_headers["Accept"] == ENTITY_ACCEPT
    assert role_headers["Accept"] == ROLE_ACCEPT
    assert entity_headers["User-Agent"].startswith("Klientadministrasjon/0.1 (+")


# --- search -------------------------------------------------------------------------------------


def test_search_pages_through_the_matches(registry, emulator):
    first = registry.search("regnskap")
    second = registry.search("regnskap", page=1)
    assert (first.total, len(first.records), first.page) == (13, 10, 0)
    assert (second.total, len(second.records), second.page) == (13, 3, 1)
    numbers = [r.org_number for r in first.records + second.records]
    assert len(set(numbers)) == 13 and PARTNERSHIP in numbers and WINDING_UP in numbers
    assert all("regnskap" in r.name.casefold() for r in first.records + second.records)
    assert [query_of(path) for path in emulator.requests] == [
        {"navn": "regnskap", "navnMetodeForSoek": "FORTLOEPENDE", "size": "10", "page": "0"},
        {"navn": "regnskap", "navnMetodeForSoek": "FORTLOEPENDE", "size": "10", "page": "1"},
    ]


def test_empty_search_has_no_embedded_key(registry, emulator):
    with requests.get(f"{emulator.base_url}/enheter?navn=jibberish", timeout=2) as raw:
        assert "_embedded" not in raw.json() and raw.json()["page"]["totalElements"] == 0
    page = registry.search("jibberish")
    assert (page.records, page.total) == ([], 0)


def test_nine_digits_are_looked_up_not_searched(registry, emulator):
    page = registry.search("914 375 916")
    assert [r.name for r in page.records] == ["TOLLBUGATA 17 OSLO AS"] and page.total == 1
    assert emulator.requests == [f"/enheter/{FULL_AS}"]
    assert registry.search(UNKNOWN).records == []
    with pytest.raises(InvalidOrgNumber):
        registry.search("999 999 998")


def test_blank_search_sends_nothing(registry, emulator):
    assert registry.search("   ").records == []
    assert emulator.requests == []


def test_search_never_asks_beyond_the_10000_window(registry, emulator):
    for page, size in ((1000, 10), (100, 100), (0, 10_001)):
        with pytest.raises(ValueError):
            registry.search("regnskap", page=page, size=size)
    assert emulator.requests == []
    assert registry.search("regnskap", page=999, size=10).records == []  # the last page allowed
    assert registry.search("regnskap", page=0, size=10_000).total == 13


def test_emulator_refuses_like_the_register(emulator):
    base = emulator.base_url
    with requests.get(f"{base}/enheter?navn=x&size=100&page=100", timeout=2) as window:
        assert window.status_code == 400
        assert window.json()["valideringsfeil"][0]["parametere"] == ["size", "page"]
    with requests.get(f"{base}/enheter?naeringskode=49410", timeout=2) as bad:
        assert (
            bad.status_code == 400 and bad.json()["valideringsfeil"][0]["feilmelding"] == "Næringskode 49410 er ugyldig"
        )
    with requests.get(f"{base}/enheter/{FULL_AS}/roller", headers={"Accept": ENTITY_ACCEPT}, timeout=2) as wrong:
        assert wrong.status_code == 406
    with requests.get(f"{base}/enheter/{UNKNOWN}", timeout=2) as unknown:
        assert unknown.status_code == 404 and unknown.content == b""


# --- invalid numbers are never sent -------------------------------------------------------------


@pytest.mark.parametrize("number", INVALID)
@pytest.mark.parametrize("call", ["lookup", "roles", "lookup_many"])
def test_invalid_number_sends_no_request(registry, emulator, number, call):
    with pytest.raises(InvalidOrgNumber):
        if call == "lookup_many":
            registry.lookup_many([FULL_AS, number])
        else:
            getattr(registry, call)(number)
    assert emulator.requests == []


# --- outages and nonsense -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_then_succeeds(registry, emulator, status):
    emulator.fail_next(2, status=status)
    assert registry.lookup(FULL_AS).name == "TOLLBUGATA 17 OSLO AS"
    assert emulator.requests == [f"/enheter/{FULL_AS}"] * 3


def test_retry_after_is_respected(registry, emulator):
    emulator.fail_next(1, status=503, retry_after=1)
    started = time.monotonic()
    registry.lookup(FULL_AS)
    assert time.monotonic() - started >= 0.9


def test_keeps_failing_after_retries(registry, emulator):
    emulator.fail_next(4, status=503)
    with pytest.raises(RegistryUnavailable, match="503"):
        registry.lookup(FULL_AS)
    assert len(emulator.requests) == 4  # the first try and three retries


def test_unreachable_register_fails_fast():
    started = time.monotonic()
    with BrregRegistry(closed_port_url(), backoff_factor=0.01) as registry, pytest.raises(RegistryUnavailable):
        registry.lookup(FULL_AS)
    assert time.monotonic() - started < 2


def test_hanging_register_times_out(emulator):
    emulator.hang_next(2, seconds=5)
    started = time.monotonic()
    with BrregRegistry(emulator.base_url, timeout=(1, 0.2), retries=1, backoff_factor=0) as registry:
        with pytest.raises(RegistryUnavailable, match="in time"):
            registry.lookup(FULL_AS)
    assert time.monotonic() - started < 2


def test_dropped_connection_is_retried_then_reported(registry, emulator):
    emulator.close_next(1)
    assert registry.lookup(FULL_AS).org_number == FULL_AS
    emulator.close_next(4)
    with pytest.raises(RegistryUnavailable):
        registry.lookup(BANKRUPT)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message"),
    [
        (200, "<html>Vedlikehold</html>", "text/html", "not JSON"),
        (200, b"\xff\xfe{", "application/json", "not JSON"),
        (200, "[1, 2]", "application/json", "not an object"),
        (200, '{"navn": "no number"}', "application/json", "no organisation number"),
        (200, json.dumps({"organisasjonsnummer": BANKRUPT, "navn": "X"}), "application/json", "answered with"),
        (403, "Forbidden", "text/plain", "HTTP 403"),
        (
            400,
            json.dumps({"valideringsfeil": [{"feilmelding": "Næringskode 49410 er ugyldig", "parametere": ["x"]}]}),
            "application/json",
            "Næringskode 49410 er ugyldig",
        ),
        (400, "not json", "text/plain", "HTTP 400"),
    ],
)
def test_nonsense_is_a_bad_answer(registry, emulator, status, body, content_type, message):
    emulator.respond_next(1, status, body, content_type=content_type)
    with pytest.raises(BadRegistryAnswer, match=message):
        registry.lookup(FULL_AS)


def test_registry_errors_share_one_base():
    for error in (InvalidOrgNumber, CompanyNotFound, RegistryUnavailable, BadRegistryAnswer):
        assert issubclass(error, RegistryError)


# --- cache --------------------------------------------------------------------------------------


def test_second_lookup_is_served_from_the_cache(registry, emulator):
    registry.lookup(FULL_AS)
    registry.roles(FULL_AS)
    registry.search("regnskap")
    registry.lookup(FULL_AS)
    registry.roles(FULL_AS)
    registry.search("regnskap")
    assert len(emulator.requests) == 3


def test_cache_expires_and_can_be_switched_off(emulator):
    with BrregRegistry(emulator.base_url, cache_ttl=0) as uncached:
        uncached.lookup(FULL_AS)
        uncached.lookup(FULL_AS)
    assert len(emulator.requests) == 2
    with BrregRegistry(emulator.base_url, cache_ttl=0.05) as short:
        short.lookup(FULL_AS)
        time.sleep(0.1)
        short.lookup(FULL_AS)
    assert len(emulator.requests) == 4


# --- several numbers ----------------------------------------------------------------------------


def test_lookup_many_in_batches_of_100(registry, emulator):
    known = [FULL_AS, BANKRUPT, DELETED, ENK, BRANCH, REMOVED]
    numbers = known + list(itertools.islice(valid_numbers(96_000_000), 250 - len(known)))
    found = registry.lookup_many(numbers)
    assert list(found) == [FULL_AS, BANKRUPT, DELETED, ENK, BRANCH]
    assert found[BRANCH].organisation_form == "BEDR" and found[DELETED].status is CompanyStatus.DELETED
    entity_calls = [query_of(p) for p in emulator.requests if p.startswith("/enheter?")]
    branch_calls = [query_of(p) for p in emulator.requests if p.startswith("/underenheter?")]
    assert [len(q["organisasjonsnummer"].split(",")) for q in entity_calls] == [100, 100, 50]
    assert all(int(q["size"]) == len(q["organisasjonsnummer"].split(",")) for q in entity_calls + branch_calls)
    assert [len(q["organisasjonsnummer"].split(",")) for q in branch_calls] == [100, 100, 46]
    assert len(emulator.requests) == 6


def test_lookup_many_compacts_and_deduplicates(registry, emulator):
    assert list(registry.lookup_many(["914 375 916", FULL_AS, BANKRUPT])) == [FULL_AS, BANKRUPT]
    assert emulator.requests == [f"/enheter?organisasjonsnummer={FULL_AS},{BANKRUPT}&size=2"]
    assert registry.lookup_many([]) == {}


# --- one registry per app -----------------------------------------------------------------------


def test_get_registry_builds_one_per_app(emulator, monkeypatch):
    monkeypatch.delenv("BRREG_BASE_URL", raising=False)
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "BRREG_BASE_URL": emulator.base_url})
    registry = get_registry(app)
    assert registry is get_registry(app) is app.extensions["registry"]
    assert registry.base_url == emulator.base_url
    registry.close()
    with get_registry({"BRREG_CONTACT": "drift@byra.example"}) as default:
        assert default.base_url == DEFAULT_BASE_URL
        assert default.user_agent == "Klientadministrasjon/0.1 (+drift@byra.example)"


# --- the CLI ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_app(emulator) -> Iterator[object]:
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "BRREG_BASE_URL": emulator.base_url, "TESTING": True})
    app.cli.add_command(registry_group)
    yield app
    get_registry(app).close()


@pytest.fixture
def cli(cli_app) -> Iterator[object]:
    get_registry(cli_app).cache.clear()
    # conftest's session-wide schema app may still have its context pushed, and Flask's CLI runs commands in
    # whatever app is current: push ours, or the commands would go to the default (real) register URL.
    with cli_app.app_context():
        yield cli_app.test_cli_runner()


@pytest.mark.parametrize(
    ("number", "status"),
    [
        (FULL_AS, "active"),
        (BANKRUPT, "bankrupt"),
        (WINDING_UP, "winding_up"),
        (FORCED_DISSOLUTION, "forced_dissolution"),
        (RECONSTRUCTION, "reconstruction"),
        (DELETED, "deleted"),
        (REMOVED, "removed"),
        (REMOVED_BRANCH, "removed"),
        (NUF, "active"),
        (ENK, "active"),
        (BRANCH, "active"),
        (MINIMAL, "active"),
        (NO_BUSINESS_ADDRESS, "active"),
    ],
)
def test_cli_lookup(cli, number, status):
    result = cli.invoke(args=["registry", "lookup", number])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == RECORD_KEYS
    assert (data["org_number"], data["status"]) == (number, status)
    for key in ("business_address", "postal_address"):
        assert data[key] is None or set(data[key]) == ADDRESS_KEYS
    assert isinstance(data["remarks"], list)
    assert data["vat_registered"] in (True, False, None)


def test_cli_lookup_foreign_address_and_unicode(cli):
    result = cli.invoke(args=["registry", "lookup", NUF])
    assert '"city": "821 09 BRATISLAVA"' in result.stdout and "Mlynské" in result.stdout
    assert json.loads(result.stdout)["business_address"]["postal_code"] is None


def test_cli_exit_codes(cli, cli_app, emulator):
    unknown = cli.invoke(args=["registry", "lookup", UNKNOWN])
    assert (unknown.exit_code, unknown.stdout) == (2, "")
    assert unknown.stderr.count("\n") == 1 and UNKNOWN in unknown.stderr

    emulator.reset()
    invalid = cli.invoke(args=["registry", "lookup", "999999998"])
    assert invalid.exit_code == 3 and "999999998" in invalid.stderr
    assert emulator.requests == []

    emulator.respond_next(1, 200, "<html>Vedlikehold</html>")
    nonsense = cli.invoke(args=["registry", "lookup", FULL_AS])
    assert nonsense.exit_code == 4 and "not JSON" in nonsense.stderr


def test_cli_unreachable_register(emulator):
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    app.cli.add_command(registry_group)
    # A registry with a short backoff, so the three retries against a closed port take no time.
    app.extensions["registry"] = BrregRegistry(closed_port_url(), backoff_factor=0.01)
    with app.extensions["registry"], app.app_context():
        result = app.test_cli_runner().invoke(args=["registry", "lookup", FULL_AS])
    assert result.exit_code == 4 and "could not be reached" in result.stderr


def test_cli_roles(cli, emulator):
    result = cli.invoke(args=["registry", "roles", BANKRUPT])
    assert result.exit_code == 0, result.output
    holders = json.loads(result.stdout)
    assert all(set(h) == HOLDER_KEYS for h in holders)
    assert {h["kind"] for h in holders} == {"person", "estate_administrator"}
    entities = json.loads(cli.invoke(args=["registry", "roles", FULL_AS]).stdout)
    assert {h["org_number"] for h in entities if h["kind"] == "entity"} == {"987009713", "922633452"}
    assert "Trond Fratrer" not in json.dumps(entities)
    branch = cli.invoke(args=["registry", "roles", BRANCH])
    assert (branch.exit_code, json.loads(branch.stdout)) == (0, [])
    assert cli.invoke(args=["registry", "roles", UNKNOWN]).exit_code == 2
    emulator.reset()
    assert cli.invoke(args=["registry", "roles", "112233445"]).exit_code == 3
    assert emulator.requests == []


def test_cli_search(cli):
    result = cli.invoke(args=["registry", "search", "regnskap"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len(records) == 10 and all(set(r) == RECORD_KEYS for r in records)
    empty = cli.invoke(args=["registry", "search", "jibberish"])
    assert (empty.exit_code, json.loads(empty.stdout)) == (0, [])
    assert cli.invoke(args=["registry", "search", "999 999 998"]).exit_code == 3


def test_cli_emulator_command(cli, monkeypatch):
    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("cli_registry.wait_for_interrupt", interrupt)
    result = cli.invoke(args=["registry", "emulator", "--port", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:" in result.stdout and "/enhetsregisteret/api" in result.stdout
