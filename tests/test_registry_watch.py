"""The register watch: the change feed read through the real CLI against the emulator, alerts per bureau, no
duplicates, no lookups of companies that are not clients, and nothing skipped when the register fails midway."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from extensions import db
from models import AuditEntry, Client, RegistryAlert, RegistryWatchState, StaffRole
from services import alerts as alert_service
from services.registry import NonsenseAnswer, get_registry
from services.registry_watch import WatchBusy, run_watch

BANKRUPT_SOON = "914375916"  # TOLLBUGATA 17 OSLO AS
DELETED_SOON = "921000057"  # BJØRK REGNSKAP AS
RENAMED_SOON = "921000103"  # ØKONOMI OG REGNSKAP SA
NOT_A_CLIENT = "921000138"  # HAUGALAND REGNSKAP OG RÅDGIVNING AS
MOVED_SOON = "810005912"  # ROLFSEN OG SULT REGNSKAP ANS

WATCH = ["registry", "watch", "--once"]


def run_cli(runner, *args: str):
    result = runner.invoke(args=list(args))
    db.session.expire_all()
    return result


def watch(runner) -> dict:
    result = run_cli(runner, *WATCH)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def position() -> int | None:
    db.session.expire_all()
    return db.session.scalar(select(RegistryWatchState.position).where(RegistryWatchState.id == 1))


def stored_alerts(bureau_id: int | None = None) -> list[tuple[str, str, str]]:
    query = select(RegistryAlert.org_number, RegistryAlert.kind, RegistryAlert.change_key).order_by(
        RegistryAlert.org_number, RegistryAlert.kind
    )
    if bureau_id is not None:
        query = query.where(RegistryAlert.bureau_id == bureau_id)
    return [(org, kind.value, key) for org, kind, key in db.session.execute(query)]


def entity_requests(emulator) -> list[str]:
    return [path for path in emulator.requests if not path.startswith("/oppdateringer")]


@pytest.fixture
def clients(make_client):
    """Three clients whose stored data is the register's (as "+ Ny kunde" fills it in)."""
    return {
        BANKRUPT_SOON: make_client(name="Tollbugata 17 Oslo AS", org_number=BANKRUPT_SOON, organisation_form="AS"),
        DELETED_SOON: make_client(name="Bjørk Regnskap AS", org_number=DELETED_SOON, organisation_form="AS"),
        RENAMED_SOON: make_client(name="Økonomi og Regnskap SA", org_number=RENAMED_SOON, organisation_form="SA"),
    }


def test_the_watch_raises_exactly_the_expected_alerts_once_and_never_looks_up_a_non_client(
    app, runner, registry_emulator, clients, bureau
):
    """The issue's proof: start the watch, the register publishes four changes, one run raises exactly three alerts,
    a second run none, and the company that is no client is never looked up."""
    first = watch(runner)  # starts the watch: from now on
    assert first == {"updates_read": 0, "clients_matched": 0, "alerts_created": 0, "position": None}
    started = db.session.scalar(select(RegistryWatchState.started_from))
    assert started is not None

    registry_emulator.make_bankrupt(BANKRUPT_SOON, date(2026, 11, 30))
    registry_emulator.delete_entity(DELETED_SOON, date(2026, 12, 1))
    registry_emulator.rename(RENAMED_SOON, "NORDIC ØKONOMI SA")
    last = registry_emulator.rename(NOT_A_CLIENT, "HAUGALAND NYTT NAVN AS")
    registry_emulator.requests.clear()

    report = watch(runner)
    assert report == {"updates_read": 4, "clients_matched": 3, "alerts_created": 3, "position": last}
    assert stored_alerts() == [
        (BANKRUPT_SOON, "bankrupt", "2026-11-30"),
        (DELETED_SOON, "deleted", "2026-12-01"),
        (RENAMED_SOON, "name_changed", stored_alerts()[2][2]),
    ]
    renamed = db.session.scalar(select(RegistryAlert).where(RegistryAlert.org_number == RENAMED_SOON))
    assert renamed.details == {"old": "Økonomi og Regnskap SA", "new": "NORDIC ØKONOMI SA"}
    assert renamed.client_name == "Økonomi og Regnskap SA" and renamed.bureau_id == bureau.id
    bankrupt = db.session.scalar(select(RegistryAlert).where(RegistryAlert.org_number == BANKRUPT_SOON))
    assert bankrupt.register_date == date(2026, 11, 30) and bankrupt.acknowledged_at is None
    assert bankrupt.details == {"date": "2026-11-30", "previous": "active"}

    # Statuses are recorded on the client at once, with history; a new name is not applied.
    by_number = {c.org_number: c for c in db.session.scalars(select(Client).where(Client.bureau_id == bureau.id))}
    assert by_number[BANKRUPT_SOON].registry_status == "bankrupt"
    assert by_number[DELETED_SOON].registry_status == "deleted"
    assert by_number[RENAMED_SOON].name == "Økonomi og Regnskap SA"
    assert by_number[RENAMED_SOON].registry_status is None
    history = db.session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "clients", AuditEntry.entity_id == by_number[BANKRUPT_SOON].id)
    ).all()
    assert any(
        e.changes.get("registry_status") == {"from": None, "to": "bankrupt"} and e.actor_label == "registry watch"
        for e in history
    ), [e.changes for e in history]

    # One batched lookup of the three clients; the non-client is never asked for.
    lookups = entity_requests(registry_emulator)
    assert len(lookups) == 1 and lookups[0].startswith("/enheter?organisasjonsnummer=")
    assert sorted(lookups[0].split("organisasjonsnummer=")[1].split("&")[0].split(",")) == sorted(clients)
    assert not any(NOT_A_CLIENT in path for path in lookups)

    # A second run: nothing new; a further update about the same bankruptcy makes no second alert either.
    assert watch(runner) == {"updates_read": 0, "clients_matched": 0, "alerts_created": 0, "position": last}
    again = registry_emulator.change_entity(BANKRUPT_SOON, {"antallAnsatte": 3})
    assert watch(runner) == {"updates_read": 1, "clients_matched": 1, "alerts_created": 0, "position": again}
    assert len(stored_alerts()) == 3


def test_a_register_failing_on_the_second_page_leaves_the_position_and_skips_nothing(
    app, runner, registry_emulator, clients
):
    app.config["REGISTRY_WATCH_PAGE_SIZE"] = 2
    watch(runner)
    registry_emulator.make_bankrupt(BANKRUPT_SOON, date(2026, 11, 30))
    registry_emulator.change_entity(NOT_A_CLIENT, {"antallAnsatte": 7})
    registry_emulator.delete_entity(DELETED_SOON, date(2026, 12, 1))
    last = registry_emulator.rename(RENAMED_SOON, "NORDIC ØKONOMI SA")
    before = position()

    # The second page answers nonsense (an HTML page with 200).
    registry_emulator.respond_next(1, 200, "<html><body>Vedlikehold</body></html>", after=1)
    result = run_cli(runner, *WATCH)
    assert result.exit_code == 4, result.output
    assert "nonsense" in result.output
    assert position() == before is None
    assert stored_alerts() == []
    assert db.session.scalar(select(Client.registry_status).where(Client.org_number == BANKRUPT_SOON)) is None
    state = db.session.get(RegistryWatchState, 1)
    assert state.last_error and state.locked_until is None

    # The second page answers 503 (after the background client's retries): the same.
    registry_emulator.fail_next(4, 503, after=1)
    result = run_cli(runner, *WATCH)
    assert result.exit_code == 4, result.output
    assert position() is None and stored_alerts() == []

    # The register unreachable at the lookup, after every feed page was read: the same.
    registry_emulator.fail_next(4, 503, after=2)
    result = run_cli(runner, *WATCH)
    assert result.exit_code == 4, result.output
    assert position() is None and stored_alerts() == []

    # Once it answers again, the next run reads everything from where it was.
    report = watch(runner)
    assert report == {"updates_read": 4, "clients_matched": 3, "alerts_created": 3, "position": last}
    assert [kind for _org, kind, _key in stored_alerts()] == ["bankrupt", "deleted", "name_changed"]


def test_paging_over_several_pages_reads_every_update_once(app, runner, registry_emulator, clients):
    app.config["REGISTRY_WATCH_PAGE_SIZE"] = 3
    watch(runner)
    for n in range(10):
        registry_emulator.change_entity(NOT_A_CLIENT, {"antallAnsatte": n})
    last = registry_emulator.make_bankrupt(BANKRUPT_SOON, date(2026, 11, 30))
    registry_emulator.requests.clear()
    report = watch(runner)
    assert report == {"updates_read": 11, "clients_matched": 1, "alerts_created": 1, "position": last}
    feed = [path for path in registry_emulator.requests if path.startswith("/oppdateringer")]
    assert len(feed) == 4  # 3 + 3 + 3 + 2: the last page says it is the last
    assert "dato=" in feed[0] and all("oppdateringsid=" in path for path in feed[1:])

    # A run is bounded: at most REGISTRY_WATCH_MAX_PAGES pages, the next run goes on from there.
    app.config["REGISTRY_WATCH_MAX_PAGES"] = 2
    for n in range(8):
        registry_emulator.change_entity(NOT_A_CLIENT, {"antallAnsatte": 100 + n})
    end = registry_emulator.rename(RENAMED_SOON, "NORDIC ØKONOMI SA")
    first = watch(runner)
    assert first["updates_read"] == 6 and first["position"] == last + 6
    second = watch(runner)
    assert second == {"updates_read": 3, "clients_matched": 1, "alerts_created": 1, "position": end}


def test_two_bureaus_with_the_same_client_both_get_the_alert_and_see_only_their_own(
    app, runner, registry_emulator, make_bureau, make_client, make_staff
):
    first, second = make_bureau(name="Første Byrå AS"), make_bureau(name="Andre Byrå AS")
    ours = make_client(bureau=first, name="Tollbugata 17 Oslo AS", org_number=BANKRUPT_SOON)
    theirs = make_client(bureau=second, name="Tollbugata 17 AS (kunde)", org_number=BANKRUPT_SOON)
    watch(runner)
    registry_emulator.make_bankrupt(BANKRUPT_SOON, date(2026, 11, 30))
    report = watch(runner)
    assert report["clients_matched"] == 2 and report["alerts_created"] == 2
    assert stored_alerts(first.id) == [(BANKRUPT_SOON, "bankrupt", "2026-11-30")]
    assert stored_alerts(second.id) == [(BANKRUPT_SOON, "bankrupt", "2026-11-30")]

    listed = json.loads(run_cli(runner, "alerts", "list", "--bureau", first.org_number).output)
    assert [(a["client_name"], a["kind"]) for a in listed] == [("Tollbugata 17 Oslo AS", "bankrupt")]
    listed = json.loads(run_cli(runner, "alerts", "list", "--bureau", second.org_number).output)
    assert [(a["client_name"], a["kind"]) for a in listed] == [("Tollbugata 17 AS (kunde)", "bankrupt")]

    # Acknowledging one bureau's alert with the other bureau's user changes nothing.
    other_admin = make_staff(second, StaffRole.ADMIN)
    our_alert = db.session.scalar(select(RegistryAlert).where(RegistryAlert.client_id == ours.id))
    assert alert_service.acknowledge(db.session, second.id, [our_alert.id], other_admin) == 0
    db.session.commit()
    db.session.expire_all()
    assert our_alert.acknowledged_at is None
    their_alert = db.session.scalar(select(RegistryAlert).where(RegistryAlert.client_id == theirs.id))
    assert alert_service.acknowledge(db.session, second.id, [their_alert.id], other_admin) == 1
    db.session.commit()
    listed = json.loads(run_cli(runner, "alerts", "list", "--bureau", second.org_number, "--open").output)
    assert listed == []
    listed = json.loads(run_cli(runner, "alerts", "list", "--bureau", second.org_number).output)
    assert listed[0]["acknowledged_by"] == str(other_admin) and listed[0]["acknowledged_at"]
    listed = json.loads(run_cli(runner, "alerts", "list", "--bureau", first.org_number, "--open").output)
    assert len(listed) == 1 and listed[0]["acknowledged_at"] is None


def test_alerts_list_prints_the_contract_and_refuses_unknown_or_invalid_bureaus(
    app, runner, registry_emulator, clients, bureau
):
    watch(runner)
    registry_emulator.rename(RENAMED_SOON, "NORDIC ØKONOMI SA")
    watch(runner)
    result = run_cli(runner, "alerts", "list", "--bureau", bureau.org_number)
    assert result.exit_code == 0, result.output
    (alert,) = json.loads(result.output)
    assert set(alert) == {
        "org_number",
        "client_name",
        "kind",
        "details",
        "register_date",
        "seen_at",
        "acknowledged_at",
        "acknowledged_by",
    }
    assert alert["org_number"] == RENAMED_SOON and alert["kind"] == "name_changed"
    assert alert["details"] == {"old": "Økonomi og Regnskap SA", "new": "NORDIC ØKONOMI SA"}
    assert alert["register_date"] == datetime.now(UTC).astimezone().date().isoformat() or alert["register_date"]
    assert alert["acknowledged_at"] is None and alert["acknowledged_by"] is None
    for bad in ("974760673", "123", "", "9\x0074760673", "1" * 5000, "' OR 1=1 --"):
        result = run_cli(runner, "alerts", "list", "--bureau", bad)
        assert result.exit_code != 0 and result.exception is None or isinstance(result.exception, SystemExit)
        assert "--bureau" in result.output, result.output


def test_garbage_in_the_feed_is_nonsense_and_moves_nothing(app, runner, registry_emulator, clients):
    watch(runner)
    registry_emulator.make_bankrupt(BANKRUPT_SOON, date(2026, 11, 30))
    registry_emulator.append_update(RENAMED_SOON, update_id=2**63)  # beyond any database's BIGINT
    result = run_cli(runner, *WATCH)
    assert result.exit_code == 4 and "oppdateringsid" in result.output
    assert position() is None and stored_alerts() == []

    registry_emulator.reset()
    watch_from = position()
    assert watch_from is None
    for garbage in ("abc", None, -1, 0, True, 1.5, "25300000"):
        registry_emulator.reset()
        registry_emulator.append_update(RENAMED_SOON)
        registry_emulator.feed[-1]["oppdateringsid"] = garbage
        result = run_cli(runner, *WATCH)
        assert result.exit_code == 4, (garbage, result.output)
        assert position() is None and stored_alerts() == []
    registry_emulator.reset()
    registry_emulator.append_update("12345", "Endring")
    assert run_cli(runner, *WATCH).exit_code == 4


def test_tolerant_parts_of_the_feed_are_read_tolerantly(app, registry_emulator):
    registry = get_registry(app.config | {"BRREG_BASE_URL": registry_emulator.base_url})
    since = datetime.now(UTC) - timedelta(seconds=1)
    registry_emulator.append_update(NOT_A_CLIENT, "Noe nytt", endringer=[{"op": "replace", "path": "/navn"}, "x"])
    page = registry.updates(since=since)
    (update,) = page.updates
    assert update.kind.value == "Ukjent" and update.changes == [{"op": "replace", "path": "/navn"}]
    assert update.at is not None and not page.has_more
    # An empty page has no _embedded; an answer counting updates but listing none is nonsense.
    assert registry.updates(after_id=update.update_id).updates == []
    registry_emulator.respond_next(
        1, 200, json.dumps({"page": {"size": 20, "totalElements": 3, "totalPages": 1, "number": 0}}), after=0
    )
    with pytest.raises(NonsenseAnswer):
        registry.updates(after_id=1)
    # Asked for updates after an id, answered an older one: nonsense, never a loop.
    older = {
        "_embedded": {"oppdaterteEnheter": [{"oppdateringsid": 5, "organisasjonsnummer": NOT_A_CLIENT}]},
        "page": {"size": 20, "totalElements": 1, "totalPages": 1, "number": 0},
    }
    registry_emulator.respond_next(1, 200, json.dumps(older), content_type="application/json")
    with pytest.raises(NonsenseAnswer):
        registry.updates(after_id=100)


def test_one_run_at_a_time(app, registry_emulator, clients):
    registry = get_registry(app.config | {"BRREG_BASE_URL": registry_emulator.base_url})
    run_watch(db.session, registry)
    db.session.execute(
        RegistryWatchState.__table__.update().values(
            locked_until=datetime.now(UTC) + timedelta(minutes=5), lock_token="another-worker"
        )
    )
    db.session.commit()
    registry_emulator.make_bankrupt(BANKRUPT_SOON, date(2026, 11, 30))
    with pytest.raises(WatchBusy):
        run_watch(db.session, registry)
    assert stored_alerts() == [] and registry_emulator.requests.count("x") == 0
    # A lease that ran out (a worker that died) is taken over.
    db.session.execute(
        RegistryWatchState.__table__.update().values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
    )
    db.session.commit()
    assert run_watch(db.session, registry).alerts_created == 1


def test_the_cli_says_busy_with_exit_5(app, runner, registry_emulator):
    watch(runner)
    db.session.execute(
        RegistryWatchState.__table__.update().values(
            locked_until=datetime.now(UTC) + timedelta(minutes=5), lock_token="another-worker"
        )
    )
    db.session.commit()
    result = run_cli(runner, *WATCH)
    assert result.exit_code == 5 and "in progress" in result.output


def test_registry_watch_since_and_its_refusal(app, runner, registry_emulator, clients):
    earlier = datetime.now(UTC) - timedelta(days=2)
    registry_emulator.make_bankrupt(BANKRUPT_SOON, date(2026, 11, 30), dato=earlier)
    app.config["REGISTRY_WATCH_SINCE"] = (earlier - timedelta(hours=1)).isoformat()
    assert watch(runner)["alerts_created"] == 1
    app.config["REGISTRY_WATCH_SINCE"] = "i går"
    db.session.execute(RegistryWatchState.__table__.delete())
    db.session.commit()
    result = run_cli(runner, *WATCH)
    assert result.exit_code == 2 and "REGISTRY_WATCH_SINCE" in result.output


def test_address_form_removal_and_archived_clients(app, runner, registry_emulator, make_client, bureau):
    moved = make_client(
        name="Rolfsen og Sult Regnskap ANS",
        org_number=MOVED_SOON,
        organisation_form="ANS",
        business_address_lines="Storgata 1",
        business_postal_code="0155",
        business_city="OSLO",
    )
    removed = make_client(name="Bjørk Regnskap AS", org_number=DELETED_SOON)
    archived = make_client(name="Økonomi og Regnskap SA", org_number=RENAMED_SOON, archived_at=datetime.now(UTC))
    watch(runner)
    registry_emulator.move(
        MOVED_SOON, {"adresse": ["Kongens gate 9"], "postnummer": "7011", "poststed": "TRONDHEIM", "landkode": "NO"}
    )
    registry_emulator.change_form(MOVED_SOON, "AS", "Aksjeselskap")
    registry_emulator.remove_entity(DELETED_SOON, date(2026, 12, 1))
    registry_emulator.rename(RENAMED_SOON, "NORDIC ØKONOMI SA")
    registry_emulator.requests.clear()
    report = watch(runner)
    assert report["clients_matched"] == 2 and report["alerts_created"] == 3
    alerts = {a.kind.value: a for a in db.session.scalars(select(RegistryAlert))}
    assert set(alerts) == {"address_changed", "organisation_form_changed", "removed"}
    assert alerts["address_changed"].details == {
        "address": "business",
        "old": "Storgata 1, 0155 OSLO",
        "new": "Kongens gate 9, 7011 TRONDHEIM",
    }
    assert alerts["organisation_form_changed"].details == {"old": "ANS", "new": "AS"}
    assert alerts["removed"].register_date == date(2026, 12, 1)
    db.session.expire_all()
    assert db.session.get(Client, removed.id).registry_status == "removed"
    assert db.session.get(Client, moved.id).business_city == "OSLO"  # not applied: "Oppdater fra Brønnøysund"
    assert not any(RENAMED_SOON in path for path in entity_requests(registry_emulator))
    assert db.session.scalar(select(func.count()).where(RegistryAlert.client_id == archived.id)) == 0


def test_the_installed_command_in_its_own_process(app, registry_emulator, clients):
    """`flask --app app registry watch --once` as an operator runs it: its own process, the JSON line, exit 0 and 4."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **os.environ,
        "DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "BRREG_BASE_URL": registry_emulator.base_url,
        "MAIL_SERVER": "",
    }
    env.pop("APP_ENV", None)
    db.session.commit()

    def run() -> subprocess.CompletedProcess:
        db.session.rollback()  # on SQLite this test's open read would keep the command from writing
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *WATCH],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = run()
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"updates_read": 0, "clients_matched": 0, "alerts_created": 0, "position": None}
    registry_emulator.make_bankrupt(BANKRUPT_SOON, date(2026, 11, 30))
    registry_emulator.respond_next(1, 200, "<html>nonsense</html>")
    failed = run()
    assert failed.returncode == 4 and "nonsense" in failed.stderr
    assert position() is None
    db.session.rollback()
    done = run()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["alerts_created"] == 1 and report["position"] == position() is not None
    assert stored_alerts() == [(BANKRUPT_SOON, "bankrupt", "2026-11-30")]
