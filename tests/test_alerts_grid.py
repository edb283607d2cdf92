"""The alerts grid (Registervarsler), the client page's register notes and the daily alert digest: a bureau sees and
acknowledges only its own alerts, on every surface, and nothing about an alert can be edited or deleted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cli_outbox import registry_chores, send_alert_digests, watch_registry
from extensions import db
from models import AlertKind, OutboxMessage, RegistryAlert, StaffRole
from services.alert_digest import digest_due, send_digests_if_due
from services.alerts import acknowledge

OPEN_URL = "/admin/alerts/?flt0_0=open"


@pytest.fixture
def make_alert(app, bureau, make_client):
    counter = iter(range(1, 10_000))

    def make(client=None, kind: AlertKind = AlertKind.BANKRUPT, **overrides) -> RegistryAlert:
        client = client or make_client()
        n = next(counter)
        values = {
            "bureau_id": client.bureau_id,
            "client_id": client.id,
            "kind": kind,
            "change_key": f"key-{n}",
            "org_number": client.org_number,
            "client_name": client.name,
            "details": {"date": "2026-11-30", "previous": "active"},
            "register_date": date(2026, 11, 30),
            "seen_at": datetime.now(UTC) - timedelta(minutes=n),
        }
        values.update(overrides)
        alert = RegistryAlert(**values)
        db.session.add(alert)
        db.session.commit()
        return alert

    return make


def reload(alert: RegistryAlert) -> RegistryAlert:
    db.session.expire_all()
    return db.session.get(RegistryAlert, alert.id)


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_and_administrators_list_their_bureaus_alerts_newest_first(
    client, login_as, make_alert, make_client, make_bureau, role
):
    user = login_as(role)
    older = make_alert(make_client(name="Eldre Kunde AS"), seen_at=datetime.now(UTC) - timedelta(days=2))
    newer = make_alert(make_client(name="Nyere Kunde AS"), AlertKind.NAME_CHANGED, details={"old": "A", "new": "B"})
    other = make_bureau(name="Fremmed Byrå AS")
    make_alert(make_client(bureau=other, name="Fremmed Kunde AS"))
    page = client.get("/admin/alerts/").get_data(as_text=True)
    assert page.index("Nyere Kunde AS") < page.index("Eldre Kunde AS")
    assert "Fremmed Kunde AS" not in page
    assert "Nytt navn" in page and "A → B" in page and "Konkurs" in page
    assert f"/admin/clients/manage/?id={newer.client_id}" in page
    assert user.bureau_id == older.bureau_id


def test_anonymous_is_sent_to_the_login(client):
    response = client.get("/admin/alerts/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_open_filter_by_url_and_hostile_filter_values(client, login_as, make_alert, make_client):
    user = login_as("staff")
    open_alert = make_alert(make_client(name="Åpen Kunde AS"))
    done = make_alert(make_client(name="Kvittert Kunde AS"))
    acknowledge(db.session, user.bureau_id, [done.id], user)
    db.session.commit()
    page = client.get(OPEN_URL).get_data(as_text=True)
    assert "Åpen Kunde AS" in page and "Kvittert Kunde AS" not in page
    page = client.get("/admin/alerts/?flt0_0=acknowledged").get_data(as_text=True)
    assert "Kvittert Kunde AS" in page and "Åpen Kunde AS" not in page
    page = client.get("/admin/alerts/?flt0_1=bankrupt").get_data(as_text=True)
    assert "Åpen Kunde AS" in page
    page = client.get("/admin/alerts/?flt0_1=name_changed").get_data(as_text=True)
    assert "Åpen Kunde AS" not in page
    page = client.get("/admin/alerts/?flt0_2=Åpen").get_data(as_text=True)
    assert "Åpen Kunde AS" in page and "Kvittert Kunde AS" not in page
    for hostile in ("flt0_0=bogus", "flt0_1=unknown_kind", "flt0_2=%00", f"flt0_3={2**63}", "page=99999999999999999"):
        response = client.get(f"/admin/alerts/?{hostile}")
        assert response.status_code == 200, hostile
    assert open_alert.id


def test_acknowledge_row_and_bulk_twice_other_bureau_and_hostile_ids(
    client, login_as, make_alert, make_client, make_bureau
):
    user = login_as("staff")
    mine = make_alert(make_client())
    second = make_alert(make_client())
    foreign_bureau = make_bureau(name="Fremmed Byrå AS")
    foreign = make_alert(make_client(bureau=foreign_bureau))
    response = client.post("/admin/alerts/action/", data={"action": "acknowledge", "rowid": [mine.id]})
    assert response.status_code == 302
    first = reload(mine)
    assert first.acknowledged_at is not None and first.acknowledged_by_id == user.id
    assert first.acknowledged_by_label == str(user)
    when = first.acknowledged_at
    # Twice (a double submit): nothing changes the second time.
    client.post("/admin/alerts/action/", data={"action": "acknowledge", "rowid": [mine.id]})
    assert reload(mine).acknowledged_at == when
    # Another bureau's id, junk, NUL, 2^63: nothing of theirs changes, no error page.
    response = client.post(
        "/admin/alerts/action/",
        data={"action": "acknowledge", "rowid": [foreign.id, "junk", "1\x00", str(2**63), str(2**63 - 1), second.id]},
    )
    assert response.status_code == 302
    assert reload(foreign).acknowledged_at is None
    assert reload(second).acknowledged_at is not None
    assert client.get(OPEN_URL).get_data(as_text=True).count('data-acknowledge="') == 0


def test_nothing_about_an_alert_can_be_created_edited_or_deleted(client, login_as, make_alert):
    login_as("admin")
    alert = make_alert(client_name="Uendret Kunde AS")
    for method, url, data in (
        ("get", f"/admin/alerts/edit/?id={alert.id}", None),
        ("post", f"/admin/alerts/edit/?id={alert.id}", {"client_name": "Endret", "kind": "deleted"}),
        ("get", "/admin/alerts/new/", None),
        ("post", "/admin/alerts/new/", {"client_name": "Ny", "kind": "deleted"}),
        ("post", "/admin/alerts/delete/", {"id": alert.id}),
        ("post", "/admin/alerts/action/", {"action": "delete", "rowid": [alert.id]}),
        ("get", f"/admin/alerts/details/?id={alert.id}", None),
    ):
        response = getattr(client, method)(url, data=data)
        assert response.status_code in (302, 403, 404, 405), (url, response.status_code)
    stored = reload(alert)
    assert stored is not None and stored.client_name == "Uendret Kunde AS" and stored.kind is AlertKind.BANKRUPT
    assert db.session.scalar(select(func.count()).select_from(RegistryAlert)) == 1
    page = client.get("/admin/alerts/").get_data(as_text=True)
    assert "/admin/alerts/edit/" not in page and "/admin/alerts/new/" not in page
    assert 'value="delete"' not in page


def test_the_client_page_offers_the_refresh_for_open_name_alerts(client, login_as, make_alert, make_client):
    user = login_as("staff")
    renamed = make_client(name="Gammelt Navn AS")
    alert = make_alert(renamed, AlertKind.NAME_CHANGED, details={"old": "Gammelt Navn AS", "new": "NYTT NAVN AS"})
    page = client.get(f"/admin/clients/manage/?id={renamed.id}").get_data(as_text=True)
    assert 'id="register-changes"' in page and "Gammelt Navn AS → NYTT NAVN AS" in page
    assert f"/admin/clients/refresh/?id={renamed.id}" in page
    acknowledge(db.session, user.bureau_id, [alert.id], user)
    db.session.commit()
    page = client.get(f"/admin/clients/manage/?id={renamed.id}").get_data(as_text=True)
    assert 'id="register-changes"' not in page


def test_the_clients_grid_shows_the_register_status_badge(client, login_as, make_client):
    login_as("staff")
    make_client(name="Konkursbo Kunde AS", registry_status="bankrupt")
    make_client(name="Frisk Kunde AS", registry_status="active")
    page = client.get("/admin/clients/").get_data(as_text=True)
    assert "Konkursbo Kunde AS" in page
    assert 'Konkursbo Kunde AS<span class="badge badge-danger ml-1">bankrupt (konkurs)</span>' in page or (
        'Konkursbo Kunde AS<span class="badge badge-danger ml-1">konkurs' in page
    ), page[page.index("Konkursbo") - 50 : page.index("Konkursbo") + 150]
    assert "Frisk Kunde AS<span" not in page


# --- the daily digest ---------------------------------------------------------------------------------------------

MORNING = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)  # 08:30 in Oslo


def test_digest_is_due_once_a_day_from_the_morning():
    assert not digest_due(None, datetime(2026, 12, 2, 5, 0, tzinfo=UTC))  # 06:00 in Oslo
    assert digest_due(None, MORNING)
    assert not digest_due(MORNING, MORNING + timedelta(hours=10))
    assert digest_due(MORNING, MORNING + timedelta(days=1))


def test_the_digest_goes_to_the_administrators_once(app, bureau, make_staff, make_alert, make_client, make_bureau):
    admin = make_staff(bureau, StaffRole.ADMIN)
    make_staff(bureau, StaffRole.STAFF)
    blocked_admin = make_staff(bureau, StaffRole.ADMIN, end_date=date(2020, 1, 1))
    other = make_bureau(name="Annet Byrå AS")
    make_staff(other, StaffRole.ADMIN)
    new = make_alert(make_client(name="Konkurs Kunde AS"))
    gone = make_alert(make_client(name="Kvittert Kunde AS"))
    acknowledge(db.session, bureau.id, [gone.id], admin)
    db.session.commit()

    assert send_digests_if_due(db.session, MORNING) == 1
    (message,) = db.session.scalars(select(OutboxMessage)).all()
    assert message.recipient == admin.person.email and message.kind == "alert_digest"
    assert message.bureau_id == bureau.id and blocked_admin.person.email != message.recipient
    assert "Konkurs Kunde AS" in message.body_text and "Kvittert Kunde AS" not in message.body_text
    assert "Konkurs" in message.body_text and "/admin/alerts/?flt0_0=open" in message.body_text
    assert "registervarsler" in message.subject.lower()
    assert reload(new).digested_at is not None and reload(gone).digested_at is not None

    # Never twice: the same day, or the next day without new alerts.
    assert send_digests_if_due(db.session, MORNING + timedelta(hours=2)) == 0
    assert send_digests_if_due(db.session, MORNING + timedelta(days=1)) == 0
    later = make_alert(make_client(name="Ny Adresse AS"), AlertKind.ADDRESS_CHANGED, details={"old": "A", "new": "B"})
    assert send_digests_if_due(db.session, MORNING + timedelta(days=1, hours=1)) == 0  # today's turn was taken
    assert send_digests_if_due(db.session, MORNING + timedelta(days=2)) == 1
    last = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert "Ny Adresse AS" in last.body_text and "Konkurs Kunde AS" not in last.body_text
    assert reload(later).digested_at is not None


def test_the_worker_runs_the_watch_and_the_digest_as_configured(app, registry_emulator):
    app.config.update(REGISTRY_WATCH_MINUTES=60, ALERT_DIGEST="daily")
    assert [chore for chore, _every in registry_chores(app.config)] == [watch_registry, send_alert_digests]
    assert dict(registry_chores(app.config))[watch_registry] == 3600
    app.config.update(REGISTRY_WATCH_MINUTES=0, ALERT_DIGEST="off")
    assert registry_chores(app.config) == []
    watch_registry()  # a first run: starts the watch
    assert any(path.startswith("/oppdateringer/enheter?dato=") for path in registry_emulator.requests)


def test_alert_digest_setting_is_checked(monkeypatch):
    from config import Config

    monkeypatch.setenv("ALERT_DIGEST", "weekly")
    with pytest.raises(ValueError, match="ALERT_DIGEST"):
        Config()
    monkeypatch.setenv("ALERT_DIGEST", "OFF")
    assert Config().ALERT_DIGEST == "off"
