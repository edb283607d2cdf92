"""The company register misbehaving behind a real fault proxy: pages answer within their budget, without retries.

Every surface that reaches the register is driven through ``tests/faults/proxy.py`` in front of the emulator: the
"+ Ny kunde" typeahead and role suggestions, the single refresh page, the bulk refresh service (and its action),
the CLI. Times are measured, but asserted only against generous bounds; the sharp evidence is the proxy's request
count (no retry on a page) and the stored rows (``registry_checked_at`` untouched when nothing was really checked).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from extensions import db
from models import Client
from services import client_refresh
from services.registry import (
    NonsenseAnswer,
    RegistryTooSlow,
    background_registry,
    request_registry,
)
from tests.faults.proxy import Fault, FaultProxy
from tests.test_admin import page

# A short budget keeps the suite quick; the default (3 s) and its setting are checked separately.
BUDGET = 1.0
# Far below the hangs and delays below (30 s and more), far above the budget: generous, so never flaky.
BOUND = BUDGET * 5
FULL_AS = "914375916"
BANKRUPT = "915330193"
WINDING_UP = "921000022"

SLOW = "tregt"  # "Enhetsregisteret er tregt akkurat nå …"
DOWN = "svarer ikke"  # "Enhetsregisteret svarer ikke akkurat nå."
NONSENSE = "meningsløst"  # "Enhetsregisteret svarte med noe meningsløst …"
MANUAL = "Fyll inn selskapet manuelt"


def _page_body(items: list | None = None, *, total: int | None = None) -> dict:
    items = items or []
    body: dict = {"page": {"size": 10, "totalElements": len(items) if total is None else total, "number": 0}}
    if items:
        body["_embedded"] = {"enheter": items}
    return body


# Answers with a 200 status that are not what the register documents, for a list (search / several numbers).
NONSENSE_LISTS = {
    "html": Fault.respond(200, "<html><body>Vedlikehold</body></html>", "text/html"),
    "empty object": Fault.respond(200, "{}"),
    "array": Fault.respond(200, "[]"),
    "embedded list": Fault.respond(200, json.dumps({"_embedded": [], "page": _page_body()["page"]})),
    "counts without hits": Fault.respond(200, json.dumps(_page_body(total=3))),
    "number as integer": Fault.respond(200, json.dumps(_page_body([{"organisasjonsnummer": 914375916}]))),
    "name as number": Fault.respond(200, json.dumps(_page_body([{"organisasjonsnummer": FULL_AS, "navn": 7}]))),
    "truncated": Fault.truncate(),
}
# The same for one company.
NONSENSE_ENTITIES = {
    "html": Fault.respond(200, "<html><body>Vedlikehold</body></html>", "text/html"),
    "empty object": Fault.respond(200, "{}"),
    "bankrupt as text": Fault.respond(200, json.dumps({"organisasjonsnummer": FULL_AS, "navn": "X", "konkurs": "ja"})),
    "address as text": Fault.respond(
        200, json.dumps({"organisasjonsnummer": FULL_AS, "navn": "X", "forretningsadresse": "Storgata 1"})
    ),
    "another company": Fault.respond(200, json.dumps({"organisasjonsnummer": BANKRUPT, "navn": "X"})),
    "truncated": Fault.truncate(),
}


@pytest.fixture
def proxy(registry_emulator):
    parts = urlsplit(registry_emulator.base_url)
    with FaultProxy((parts.hostname, parts.port)) as proxy:
        yield proxy


@pytest.fixture
def register(app, proxy):
    """The app reaches the register only through the proxy, with a short page budget."""
    app.config.update(BRREG_BASE_URL=proxy.base_url, REGISTRY_REQUEST_BUDGET=BUDGET)
    _forget_registries(app)
    yield proxy
    _forget_registries(app)


def _forget_registries(app) -> None:
    for key in ("registry", "registry.request", "registry.cache"):
        registry = app.extensions.pop(key, None)
        if hasattr(registry, "close"):
            registry.close()


def requests_seen(register, settle: float = 0.5) -> list[str]:
    """The requests the proxy saw for this test's call. A page that gave up at its budget may answer before its
    abandoned call has even reached the proxy on a busy machine, so wait (up to 10 s) for the first request, then a
    moment longer for a retry that should not come."""
    deadline = time.monotonic() + 10
    while not register.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(settle)
    return list(register.requests)


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def search(client, text="tollbugata"):
    return client.get(f"/admin/clients/registry/search/?q={text}")


def snapshot(record: Client) -> tuple:
    db.session.expire_all()
    return (
        record.name,
        record.organisation_form,
        record.business_city,
        record.registry_status,
        record.registry_checked_at,
        record.version,
    )


# --- "+ Ny kunde": the typeahead -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind", "text"),
    [
        (Fault.hang(30), "slow", SLOW),
        (Fault.delay(30), "slow", SLOW),
        (Fault.trickle(0.5), "slow", SLOW),
        (Fault.reset(), "unavailable", DOWN),
        (Fault.respond(429, "", headers={"Retry-After": "30"}), "unavailable", DOWN),
        (Fault.respond(503, "<html>503</html>", "text/html", headers={"Retry-After": "30"}), "unavailable", DOWN),
    ],
    ids=["hang", "delay", "trickle", "reset", "429-retry-after", "503-retry-after"],
)
def test_typeahead_answers_within_budget_without_retry(login_as, client, register, fault, kind, text):
    login_as("staff")
    register.always(fault)
    response, elapsed = timed(lambda: search(client))
    assert response.status_code == 503
    data = response.get_json()
    assert data["results"] == [] and data["kind"] == kind
    assert text in data["error"] and MANUAL in data["error"]
    assert requests_seen(register) == ["/enheter?navn=tollbugata&navnMetodeForSoek=FORTLOEPENDE&size=10&page=0"]
    assert elapsed < BOUND


def test_manual_entry_keeps_working_while_the_register_hangs(login_as, client, register):
    login_as("staff")
    register.always(Fault.hang(30))
    assert search(client).get_json()["kind"] == "slow"
    response = client.post(
        "/admin/clients/new/",
        data={
            "name": "Helt Ny Kafé AS",
            "org_number": "",
            "contact_first_name": "Kari",
            "contact_last_name": "Nordmann",
            "contact_email": "kari@kafe.example",
            "contact_role": "daglig_leder",
            "business_country_code": "NO",
            "postal_country_code": "NO",
        },
    )
    assert response.status_code == 302, page(response)
    created = db.session.scalar(select(Client).where(Client.name == "Helt Ny Kafé AS"))
    assert created is not None and created.org_number is None
    assert len(register.requests) == 1  # creating by hand asks the register nothing


@pytest.mark.parametrize("fault", NONSENSE_LISTS.values(), ids=NONSENSE_LISTS.keys())
def test_typeahead_reports_nonsense_never_an_empty_list(login_as, client, register, fault):
    login_as("staff")
    register.next(fault)
    response = search(client)
    assert response.status_code == 502
    data = response.get_json()
    assert data["kind"] == "nonsense" and NONSENSE in data["error"] and MANUAL in data["error"]
    assert data["results"] == []
    # The register healed: the nonsense was not kept as an answer.
    assert search(client).get_json()["results"][0]["org_number"] == FULL_AS
    assert len(register.requests) == 2


def test_typeahead_by_number_reports_nonsense(login_as, client, register):
    login_as("staff")
    register.next(NONSENSE_ENTITIES["empty object"])
    data = search(client, FULL_AS).get_json()
    assert data["kind"] == "nonsense" and data["results"] == []


def test_role_suggestions_within_budget_and_nonsense(login_as, client, register):
    login_as("staff")
    register.next(Fault.hang(30))
    response, elapsed = timed(lambda: client.get(f"/admin/clients/registry/roles/?org={FULL_AS}"))
    data = response.get_json()
    assert data["holders"] == [] and data["kind"] == "slow" and SLOW in data["error"]
    assert elapsed < BOUND and len(register.requests) == 1
    register.next(Fault.respond(200, json.dumps({"_links": {}})))
    data = client.get(f"/admin/clients/registry/roles/?org={FULL_AS}").get_json()
    assert data["holders"] == [] and data["kind"] == "nonsense" and NONSENSE in data["error"]


def test_a_waiting_call_is_not_retried_by_the_next_keystroke_either(app, register):
    """Past the per-process limit of waiting calls, one more is refused at once and never reaches the register."""
    import threading

    register.always(Fault.hang(30))
    registry = request_registry(app)
    errors: list[Exception] = []

    def typeahead(text: str) -> None:
        try:
            registry.search(text)
        except Exception as exc:  # noqa: BLE001 (collected for the assertion)
            errors.append(exc)

    waiting = [threading.Thread(target=typeahead, args=(f"firma {n}",)) for n in range(registry.concurrency)]
    for thread in waiting:
        thread.start()
    assert register.wait_for_requests(registry.concurrency, timeout=BOUND)
    with pytest.raises(RegistryTooSlow):
        registry.search("en til")
    for thread in waiting:
        thread.join()
    assert len(register.requests) == registry.concurrency
    assert len(errors) == registry.concurrency and all(isinstance(e, RegistryTooSlow) for e in errors)


# --- "Oppdater fra Brønnøysund": the single refresh page --------------------------------------------


@pytest.mark.parametrize(
    ("fault", "text"),
    [(Fault.hang(30), SLOW), (Fault.reset(), DOWN), (Fault.respond(429, "", headers={"Retry-After": "30"}), DOWN)],
    ids=["hang", "reset", "429"],
)
def test_refresh_page_with_the_register_failing_changes_nothing(login_as, client, make_client, register, fault, text):
    login_as("staff")
    record = make_client(org_number=FULL_AS, name="Gammelt Navn AS")
    before = snapshot(record)
    register.always(fault)
    response, elapsed = timed(lambda: client.get(f"/admin/clients/refresh/?id={record.id}", follow_redirects=True))
    assert response.status_code == 200
    assert text in page(response) and "Ingenting ble endret" in page(response)
    assert elapsed < BOUND
    assert requests_seen(register) == [f"/enheter/{FULL_AS}"]  # no retry, and no branch lookup after a failure
    response = client.post(f"/admin/clients/refresh/?id={record.id}", data={"version_check": str(record.version)})
    assert response.status_code == 302
    assert snapshot(record) == before


@pytest.mark.parametrize("fault", NONSENSE_ENTITIES.values(), ids=NONSENSE_ENTITIES.keys())
def test_refresh_page_reports_nonsense(login_as, client, make_client, register, fault):
    login_as("staff")
    record = make_client(org_number=FULL_AS, name="Gammelt Navn AS")
    before = snapshot(record)
    register.next(fault)
    text = page(client.get(f"/admin/clients/refresh/?id={record.id}", follow_redirects=True))
    assert NONSENSE in text and "finnes ikke" not in text
    assert snapshot(record) == before


def test_refresh_page_never_passes_a_kept_answer_off_as_a_check(login_as, client, make_client, register):
    login_as("staff")
    record = make_client(org_number=FULL_AS, name="Gammelt Navn AS")
    manage = page(client.get(f"/admin/clients/manage/?id={record.id}"))
    assert "Aldri kontrollert mot Enhetsregisteret" in manage

    asked = datetime.now(UTC)
    preview = page(client.get(f"/admin/clients/refresh/?id={record.id}"))
    answered = datetime.now(UTC)
    assert "TOLLBUGATA 17 OSLO AS" in preview and "Registeret ga dette svaret" in preview
    # Confirming applies what the preview showed, stamped with when the register gave it: no second request.
    client.post(f"/admin/clients/refresh/?id={record.id}", data={"version_check": str(record.version)})
    assert len(register.requests) == 1
    db.session.expire_all()
    checked = record.registry_checked_at.replace(tzinfo=record.registry_checked_at.tzinfo or UTC)
    assert asked <= checked <= answered
    assert record.name == "TOLLBUGATA 17 OSLO AS"
    assert "Sist kontrollert mot Enhetsregisteret" in page(client.get(f"/admin/clients/manage/?id={record.id}"))

    # The answer is still kept, but a new preview asks the register: down now, so nothing is shown or stamped.
    before = snapshot(record)
    register.always(Fault.reset())
    text = page(client.get(f"/admin/clients/refresh/?id={record.id}", follow_redirects=True))
    assert DOWN in text and "Registeret ga dette svaret" not in text  # back on the client page, no preview
    assert requests_seen(register) == [f"/enheter/{FULL_AS}", f"/enheter/{FULL_AS}"]
    assert snapshot(record) == before


# --- the bulk refresh service (and, unchanged, the action that calls it) -----------------------------


def test_bulk_refresh_does_not_stamp_from_the_cache_when_the_register_is_down(app, make_client, register):
    clients = [make_client(org_number=n, name="Gammelt Navn AS") for n in (FULL_AS, BANKRUPT, WINDING_UP)]
    registry = background_registry(app)
    summary = client_refresh.refresh_many(db.session, registry, clients)
    db.session.commit()
    assert len(summary.updated) == 3 and summary.failed is None
    first = [snapshot(c) for c in clients]
    assert all(s[4] is not None for s in first)

    # The same batch again with the register down: its answer is kept, but a refresh must really ask.
    register.always(Fault.reset())
    summary = client_refresh.refresh_many(db.session, request_registry(app), clients)
    db.session.commit()
    assert summary.failed_kind == "unavailable" and DOWN in summary.failed
    assert summary.not_checked == clients and summary.not_found == [] and summary.updated == []
    assert [snapshot(c) for c in clients] == first


@pytest.mark.parametrize("fault", NONSENSE_LISTS.values(), ids=NONSENSE_LISTS.keys())
def test_bulk_refresh_reports_nonsense_not_not_found(app, make_client, register, fault):
    clients = [make_client(org_number=n, name="Gammelt Navn AS") for n in (FULL_AS, BANKRUPT)]
    before = [snapshot(c) for c in clients]
    register.next(fault)
    summary = client_refresh.refresh_many(db.session, request_registry(app), clients)
    db.session.commit()
    assert summary.failed_kind == "nonsense" and NONSENSE in summary.failed
    assert summary.not_found == [] and summary.not_checked == clients
    assert [snapshot(c) for c in clients] == before


def test_bulk_refresh_action_says_nonsense_and_changes_nothing(login_as, client, make_client, register, run_jobs):
    login_as("staff")
    clients = [make_client(org_number=n, name="Gammelt Navn AS") for n in (FULL_AS, BANKRUPT, WINDING_UP)]
    before = [snapshot(c) for c in clients]
    register.next(NONSENSE_LISTS["empty object"])
    response, elapsed = timed(
        lambda: client.post(
            "/admin/clients/action/",
            data={"action": "refresh_registry", "rowid": [c.id for c in clients]},
            follow_redirects=True,
        )
    )
    assert response.status_code == 200  # the job's page: the refresh runs in the background
    run_jobs()
    text = page(client.get(response.request.path))
    assert NONSENSE in text and "3 ikke funnet" not in text
    assert [snapshot(c) for c in clients] == before
    register.always(Fault.hang(30))
    response, elapsed = timed(
        lambda: client.post(
            "/admin/clients/action/", data={"action": "refresh_registry", "rowid": [c.id for c in clients]}
        )
    )
    assert response.status_code == 302 and elapsed < BOUND
    assert [snapshot(c) for c in clients] == before


# --- background work: retries, honouring Retry-After ------------------------------------------------


def test_background_registry_retries_after_429_but_a_page_does_not(app, register):
    register.next(Fault.respond(429, "", headers={"Retry-After": "1"}))
    assert background_registry(app).lookup(FULL_AS, max_age=0).name == "TOLLBUGATA 17 OSLO AS"
    assert requests_seen(register) == [f"/enheter/{FULL_AS}"] * 2
    register.reset()
    register.next(Fault.respond(429, "", headers={"Retry-After": "1"}))
    with pytest.raises(Exception, match="429"):
        request_registry(app).lookup(FULL_AS, max_age=0)
    assert requests_seen(register) == [f"/enheter/{FULL_AS}"]


def test_cli_reports_nonsense_with_its_exit_code(app, runner, register):
    register.next(NONSENSE_ENTITIES["html"])
    result = runner.invoke(args=["registry", "lookup", FULL_AS])
    assert result.exit_code == 4
    assert "nonsense" in result.stderr
    register.next(NONSENSE_LISTS["empty object"])
    result = runner.invoke(args=["registry", "search", "tollbugata"])
    assert result.exit_code == 4 and "nonsense" in result.stderr


def test_a_kept_answer_keeps_the_time_the_register_gave_it(app, register):
    registry = request_registry(app)
    first = registry.lookup(FULL_AS)
    again = registry.lookup(FULL_AS)
    assert len(register.requests) == 1
    assert again.fetched_at == first.fetched_at is not None
    assert registry.lookup(FULL_AS, max_age=0).fetched_at > first.fetched_at
    assert len(register.requests) == 2


def test_nonsense_is_its_own_error_everywhere(app, register):
    register.next(NONSENSE_ENTITIES["truncated"])
    with pytest.raises(NonsenseAnswer, match="cut off"):
        request_registry(app).lookup(FULL_AS)


def test_budget_comes_from_the_configuration(app):
    from services.registry import build_registry

    assert build_registry({}, for_request=True).budget == 3.0
    assert build_registry({"REGISTRY_REQUEST_BUDGET": "1.5"}, for_request=True).budget == 1.5
    assert build_registry({}).budget is None and build_registry({}).retries == 3
    assert build_registry({}, for_request=True).retries == 0
    for bad in ("0", "-1", "nan"):
        with pytest.raises(ValueError):
            build_registry({"REGISTRY_REQUEST_BUDGET": bad}, for_request=True)
