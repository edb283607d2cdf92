"""Hjem: each to-do item's count and the grid its link opens hold the same rows; alerts acknowledged from Hjem; the
kept numbers (bureau counters) stay exact on every path that writes clients and users; the chart's months."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from admin_views.outbox import OutboxView
from extensions import db
from models import (
    AlertKind,
    BillingMonth,
    BillingTotal,
    BureauCounter,
    Client,
    ConsentStatus,
    Job,
    JobKind,
    JobStatus,
    OutboxMessage,
    OutboxStatus,
    PersonKind,
    RegistryAlert,
    StaffRole,
    UserStatus,
    utcnow,
)
from services import archive, home
from services.clients import NewClient, create_client, mark_demo
from services.invitations import block_expired, deactivate, reactivate
from tests.conftest import PASSWORD

TODO = re.compile(
    r'data-todo="(\w+)" data-count="(\d+)">(.*?)</li>\s*(?=<li class="list-group-item home-todo|</ul>\s*</section>)',
    re.S,
)


def todos(body: str) -> dict[str, tuple[int, str | None]]:
    """Each to-do item on the page: its count and its link (None without one)."""
    found = {}
    for key, count, item in TODO.findall(body):
        label = re.search(r'home-todo-label">(.*?)</span>', item, re.S).group(1)
        link = re.search(r'<a href="([^"]+)"', label)
        found[key] = (int(count), html.unescape(link.group(1)) if link else None)
    return found


def numbers(body: str) -> dict[str, str]:
    found = {}
    for key, value in re.findall(
        r'data-number="(\w+)">\s*<div class="h5 mb-0 home-number-value">(.*?)</div>', body, re.S
    ):
        found[key] = re.sub(r"<[^>]+>", "", value).strip()
    return found


def page(client) -> str:
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def alert(bureau_id: int, client: Client, kind=AlertKind.BANKRUPT, seen=None, key="k") -> RegistryAlert:
    row = RegistryAlert(
        bureau_id=bureau_id,
        client_id=client.id,
        kind=kind,
        change_key=key,
        org_number=client.org_number,
        client_name=client.name,
        details={"old": "Gammelt Navn AS", "new": "Nytt Navn AS"} if kind is AlertKind.NAME_CHANGED else {},
        seen_at=seen or utcnow(),
    )
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def world(app, bureau, make_bureau, make_client, make_user):
    """One bureau's to-do rows, each with a near miss that must not count, and the same rows in another bureau."""
    now, today = utcnow(), date.today()

    def fill(target_bureau, make, prefix: str) -> dict[str, set[str]]:
        names: dict[str, set[str]] = {}
        waiting = make(name=f"{prefix} Venter AS", consent_status=ConsentStatus.PENDING)
        waiting.consent_requested_at = now - timedelta(days=9)
        archived = make(name=f"{prefix} Arkivert AS", consent_status=ConsentStatus.PENDING, archived_at=now)
        declined = make(name=f"{prefix} Nei AS", consent_status=ConsentStatus.DECLINED)
        make(name=f"{prefix} Ja AS", consent_status=ConsentStatus.GIVEN)
        names["consent_pending"] = {waiting.name}
        names["consent_declined"] = {declined.name}
        del archived
        customer = make(name=f"{prefix} Kunde AS")
        soon = make_user(customer, PersonKind.EXTERNAL_USER, status=UserStatus.ACTIVE, end_date=today + timedelta(10))
        make_user(customer, PersonKind.EXTERNAL_USER, status=UserStatus.BLOCKED, end_date=today + timedelta(10))
        make_user(customer, PersonKind.EXTERNAL_USER, status=UserStatus.ACTIVE, end_date=today + timedelta(60))
        names["expiring"] = {soon.person.email}
        slow = make_user(customer, status=UserStatus.INVITED)
        slow.invitation_sent_at, slow.invitation_nonce = now - timedelta(days=5), "n1"
        fresh = make_user(customer, status=UserStatus.INVITED)
        fresh.invitation_sent_at, fresh.invitation_nonce = now - timedelta(days=1), "n2"
        old = make_user(customer, status=UserStatus.INVITED)
        old.invitation_sent_at, old.invitation_nonce = now - timedelta(days=40), "n3"
        withdrawn = make_user(customer, status=UserStatus.INVITED)
        withdrawn.invitation_sent_at = now - timedelta(days=2)
        names["invitations_waiting"] = {slow.person.email}
        names["invitations_expired"] = {old.person.email, withdrawn.person.email}
        for status, n in ((OutboxStatus.FAILED, 1), (OutboxStatus.HELD, 2), (OutboxStatus.SENT, 3)):
            for i in range(n):
                db.session.add(
                    OutboxMessage(
                        bureau_id=target_bureau.id,
                        message_id=f"<{prefix}-{status}-{i}@x>",
                        recipient=f"{prefix.lower()}-{status}-{i}@mottaker.example",
                        subject="Emne",
                        body_text="Tekst",
                        kind="invitation",
                        status=status,
                    )
                )
        names["outbox_failed"] = {f"{prefix.lower()}-failed-0@mottaker.example"}
        names["outbox_held"] = {f"{prefix.lower()}-held-{i}@mottaker.example" for i in range(2)}
        for status, created, title in (
            (JobStatus.RUNNING, now, "kjorer"),
            (JobStatus.FAILED, now - timedelta(days=1), "feilet"),
            (JobStatus.FAILED, now - timedelta(days=30), "gammel"),
            (JobStatus.DONE, now, "ferdig"),
        ):
            db.session.add(
                Job(
                    bureau_id=target_bureau.id,
                    kind=JobKind.CLIENT_IMPORT,
                    created_by_label="x",
                    title=f"{prefix} {title}",
                    status=status,
                    created_at=created,
                )
            )
        names["jobs_running"] = {f"{prefix} kjorer"}
        names["jobs_failed"] = {f"{prefix} feilet"}
        db.session.commit()
        return names

    ours = fill(bureau, make_client, "Vår")
    other = make_bureau()

    def make_other(**overrides):
        customer = Client(bureau_id=other.id, **overrides)
        db.session.add(customer)
        db.session.commit()
        return customer

    theirs = fill(other, make_other, "Deres")
    return ours, theirs


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_each_item_counts_the_rows_its_link_shows_and_nothing_of_another_bureau(client, login_as, world, role):
    ours, theirs = world
    login_as(role)
    found = todos(page(client))
    for key, expected in ours.items():
        count, link = found[key]
        assert count == len(expected), key
        assert link is not None, key
        grid = client.get(link)
        assert grid.status_code == 200, (key, link)
        body = grid.get_data(as_text=True)
        assert "Ukjent filterverdi" not in body and "Invalid" not in body, key
        for name in expected:
            assert html.escape(name) in body or name in body, (key, name)
        for name in theirs[key]:
            assert name not in body and html.escape(name) not in body, (key, name)
    # The near misses are not in the grids either: exactly the counted rows.
    users_body = client.get(found["expiring"][1]).get_data(as_text=True)
    assert users_body.count('name="rowid"') == 1
    jobs_body = client.get(found["jobs_failed"][1]).get_data(as_text=True)
    assert "Vår gammel" not in jobs_body and "Vår feilet" in jobs_body and "Vår ferdig" not in jobs_body


def test_consent_waiting_lists_the_oldest_request_with_its_age(client, login_as, world):
    login_as()
    body = page(client)
    item = re.search(r'data-todo="consent_pending".*?</li>\s*</ul>', body, re.S).group(0)
    assert "Vår Venter AS" in item and "spurt for 9 dag(er) siden" in item
    assert "Arkivert" not in item and "Deres" not in item


def test_staff_see_a_count_without_a_link_to_a_grid_they_cannot_open(
    client, login_as, world, monkeypatch, app, bureau, make_staff
):
    monkeypatch.setattr(OutboxView, "admin_only", True)
    login_as("staff")
    found = todos(page(client))
    assert found["outbox_failed"] == (1, None) and found["outbox_held"] == (2, None)
    assert found["consent_pending"][1] is not None
    administrator = make_staff(bureau, StaffRole.ADMIN)
    other_client = app.test_client()
    other_client.post("/login", data={"email": administrator.person.email, "password": PASSWORD})
    found = todos(page(other_client))
    assert found["outbox_failed"][1] is not None


def test_an_empty_bureau_shows_zeros_and_no_figures(client, login_as, bureau):
    login_as()
    body = page(client)
    assert set(todos(body).values()) == {(0, None)}
    shown = numbers(body)
    assert shown["clients"] == "1" and shown["demo_clients"] == "0" and shown["active_users"] == "1"
    assert 'id="home-no-alerts"' in body and "<svg" in body and 'id="home-chart-table"' in body
    assert body.count('data-state="none"') == 2 * 11  # eleven past months without figures (bar and table row)


def test_alerts_newest_first_and_acknowledged_from_home(client, login_as, bureau, make_client, make_bureau):
    user = login_as()
    customer = make_client(name="Konkurs AS")
    old = alert(bureau.id, customer, AlertKind.NAME_CHANGED, seen=utcnow() - timedelta(days=2), key="a")
    new = alert(bureau.id, customer, AlertKind.BANKRUPT, key="b")
    other_bureau = make_bureau()
    stranger = Client(bureau_id=other_bureau.id, name="Fremmed AS")
    db.session.add(stranger)
    db.session.commit()
    foreign = alert(other_bureau.id, stranger, key="c")
    body = page(client)
    shown = re.findall(r'data-alert="(\d+)"', body)
    assert shown == [str(new.id), str(old.id)]
    assert "Fremmed" not in body and "Gammelt Navn AS → Nytt Navn AS" in body
    assert 'id="home-alert-count">2<' in body

    response = client.post("/admin/alerts/acknowledge/", data={"alert_id": str(new.id)})
    assert response.status_code == 302
    db.session.expire_all()
    first = db.session.get(RegistryAlert, new.id)
    assert first.acknowledged_at is not None and first.acknowledged_by_id == user.id
    stamped = first.acknowledged_at
    body = client.get("/admin/").get_data(as_text=True)
    assert "Varselet er kvittert ut." in body
    assert re.findall(r'data-alert="(\d+)"', body) == [str(old.id)]

    # A double submit changes nothing and says so.
    client.post("/admin/alerts/acknowledge/", data={"alert_id": str(new.id)})
    db.session.expire_all()
    assert db.session.get(RegistryAlert, new.id).acknowledged_at == stamped
    assert "allerede kvittert ut" in client.get("/admin/").get_data(as_text=True)

    # Another bureau's alert, and hostile ids: nothing changes, a clear message, never a 500.
    for value in (str(foreign.id), "", "abc", "1\x00", str(2**63), "-1", "9" * 40, str(2**63 - 1)):
        response = client.post("/admin/alerts/acknowledge/", data={"alert_id": value})
        assert response.status_code == 302, value
    client.post("/admin/alerts/acknowledge/", data={})
    db.session.expire_all()
    assert db.session.get(RegistryAlert, foreign.id).acknowledged_at is None
    assert db.session.get(RegistryAlert, old.id).acknowledged_at is None
    assert client.get("/admin/alerts/acknowledge/").status_code == 405


def test_acknowledge_needs_a_login(client, bureau, make_client):
    target = alert(bureau.id, make_client(name="Anonym AS"))
    response = client.post("/admin/alerts/acknowledge/", data={"alert_id": str(target.id)})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    db.session.expire_all()
    assert db.session.get(RegistryAlert, target.id).acknowledged_at is None


def test_hostile_job_filters_show_every_job_with_a_message(client, login_as):
    login_as()
    for query in ("status=x", "status=failed&days=abc", f"status=failed&days={2**63}", "status=failed&days=0"):
        response = client.get(f"/admin/jobs/?{query}")
        assert response.status_code == 200, query
        assert "Ukjent filterverdi" in response.get_data(as_text=True)


def test_hostile_invitation_filter_values_change_nothing(client, login_as, app):
    from admin_views.people import InvitationFilter

    login_as()
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "users")
    index = next(i for i, flt in enumerate(view._filters) if isinstance(flt, InvitationFilter))
    for value in ("bogus", "waiting\x00", "", "expired" * 300):
        response = client.get("/admin/users/", query_string={f"flt0_{index}": value})
        assert response.status_code == 200, value
        assert "Ugyldig verdi i filteret" in response.get_data(as_text=True) or value == "", value


def test_numbers_come_from_the_kept_counters(client, login_as, bureau, make_client, make_user):
    login_as()
    make_client(name="Demo AS", is_demo=True)
    customer = make_client(name="Ekte AS")
    make_user(customer, status=UserStatus.ACTIVE)
    make_user(customer, PersonKind.EXTERNAL_USER, status=UserStatus.ACTIVE, end_date=date.today() - timedelta(1))
    make_user(customer, status=UserStatus.INVITED)
    shown = numbers(page(client))
    # internal + 2 clients; the staff member and one user (the one past the end date is blocked in effect)
    assert (shown["clients"], shown["demo_clients"], shown["active_users"]) == ("3", "1", "2")
    # The page reads the kept row: a wrong kept count would show (it is not recounted).
    db.session.execute(text("UPDATE bureau_counters SET clients = clients + 40 WHERE bureau_id = :b"), {"b": bureau.id})
    db.session.commit()
    assert numbers(page(client))["clients"] == "43"


def test_chart_closed_months_from_snapshots_and_the_running_month_so_far(
    client, login_as, bureau, make_client, make_user, make_package, assign
):
    login_as()
    today = date.today()
    periods = home._periods(today)
    db.session.add(
        BillingMonth(
            bureau_id=bureau.id,
            period=periods[-2],
            closed_by_label="Revisor",
            clients=3,
            users=7,
            rows=4,
            amount=Decimal("1234.50"),
        )
    )
    db.session.add(
        BillingTotal(
            bureau_id=bureau.id,
            period=periods[-3],
            clients=1,
            users=2,
            rows=1,
            amount_ore=9900,
            computed_at=utcnow(),
        )
    )
    db.session.commit()
    package = make_package(price=Decimal("300.00"))
    customer = make_client(name="Betaler AS")
    assign(make_user(customer, status=UserStatus.ACTIVE), package, valid_from=today.replace(day=1))
    assign(make_user(customer, status=UserStatus.ACTIVE), package, valid_from=today.replace(day=1))
    body = page(client)
    rows = dict(
        (period, (state, re.sub(r"<[^>]+>", "|", cells)))
        for period, state, cells in re.findall(r'<tr data-period="([\d-]+)" data-state="(\w+)">(.*?)</tr>', body, re.S)
    )
    assert rows[periods[-2]][0] == "closed" and "|7|" in rows[periods[-2]][1]
    assert "1\u00a0234,50\u00a0kr" in rows[periods[-2]][1]
    assert rows[periods[-3]][0] == "open" and "99,00" in rows[periods[-3]][1]
    assert rows[periods[-4]][0] == "none"  # neither closed nor computed: no figures rather than zeros
    assert rows[periods[-1]][0] == "running" and "|2|" in rows[periods[-1]][1]
    assert "600,00" in rows[periods[-1]][1] and "(så langt)" in rows[periods[-1]][1]
    shown = numbers(body)
    assert shown["billable_users"] == "2" and shown["billing_amount"] == "600,00\u00a0kr"
    bars = dict(re.findall(r'<g class="home-bar" data-period="([\d-]+)" data-state="(\w+)">', body))
    assert bars[periods[-1]] == "running" and bars[periods[-2]] == "closed"
    assert "url(#home-so-far)" in body


# --- the kept counters -----------------------------------------------------------------------------------------


def assert_exact(bureau_id: int) -> None:
    db.session.commit()
    db.session.expire_all()
    today = date.today()
    assert home.kept_counters(db.session, bureau_id, today) == home.exact_counts(db.session, bureau_id, today)


def test_counters_stay_exact_on_every_path(
    app, client, login_as, bureau, make_bureau, make_client, make_user, make_staff, runner
):
    admin = login_as("admin")
    assert_exact(bureau.id)
    customer = create_client(db.session, bureau.id, NewClient(name="Skjema AS"), ask_consent=False)
    assert_exact(bureau.id)
    mark_demo(db.session, [make_client(name="Blir demo AS")])
    assert_exact(bureau.id)
    users = [make_user(customer, status=UserStatus.ACTIVE) for _ in range(3)]
    assert_exact(bureau.id)
    deactivate(db.session, users[:2], actor=admin)
    assert_exact(bureau.id)
    reactivate(db.session, users[:1], actor=admin)
    assert_exact(bureau.id)
    expired = make_user(customer, PersonKind.EXTERNAL_USER, status=UserStatus.ACTIVE, end_date=date.today())
    expired.end_date = date.today() - timedelta(days=1)
    assert_exact(bureau.id)
    block_expired(db.session, date.today())
    assert_exact(bureau.id)
    # The grids' bulk actions: archive and restore clients, archive a user.
    doomed = make_client(name="Arkiveres AS")
    make_user(doomed, status=UserStatus.ACTIVE)
    client.post("/admin/clients/action/", data={"action": "archive", "rowid": [doomed.id]})
    assert_exact(bureau.id)
    client.post("/admin/clients/action/", data={"action": "restore", "rowid": [doomed.id]})
    assert_exact(bureau.id)
    client.post("/admin/users/action/", data={"action": "archive", "rowid": [users[2].id]})
    assert_exact(bureau.id)
    # Deleted for good, and a raw delete that bypasses the ORM.
    archive.delete_permanently(db.session, make_client(name="Slettes AS"), actor=admin)
    assert_exact(bureau.id)
    gone = make_client(name="Rå sletting AS", is_demo=True)
    db.session.execute(text("DELETE FROM clients WHERE id = :id"), {"id": gone.id})
    assert_exact(bureau.id)
    # The CLI's bulk loader (raw multi-row inserts) into a bureau of its own.
    db.session.rollback()  # end this session's transaction (SQLite's are IMMEDIATE), as a request would
    result = runner.invoke(args=["seed-synthetic", "--clients", "25"])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    for bureau_id in db.session.scalars(text("SELECT id FROM bureaus")):
        assert_exact(bureau_id)
    # Another bureau's writes leave this one's counts alone.
    other = make_bureau()
    make_staff(other)
    db.session.add(Client(bureau_id=other.id, name="Andres AS"))
    assert_exact(bureau.id)
    assert_exact(other.id)


def test_counters_follow_the_cli(app, bureau, make_client, make_user, runner, tmp_path):
    from tests.test_client_import import csv_bytes

    customer = make_client(name="Utløper AS")
    expired = make_user(customer, PersonKind.EXTERNAL_USER, status=UserStatus.ACTIVE, end_date=date.today())
    expired.end_date = date.today() - timedelta(days=3)
    assert_exact(bureau.id)
    db.session.rollback()
    result = runner.invoke(args=["users", "block-expired"])
    assert result.exit_code == 0 and '"blocked": 1' in result.output, result.output
    assert_exact(bureau.id)
    path = tmp_path / "kunder.csv"
    path.write_bytes(csv_bytes([["", "Fra Fil AS", "", "yes", "", "", "", "", ""], ["914375916"] + [""] * 7 + [""]]))
    db.session.rollback()
    result = runner.invoke(args=["clients", "import", str(path), "--bureau", bureau.org_number])
    assert result.exit_code in (0, 1), result.output
    db.session.rollback()
    assert db.session.scalar(select(Client.id).where(Client.name == "Fra Fil AS")) is not None
    assert_exact(bureau.id)
    # A user removed by a raw statement (no ORM, no hook) is taken off too.
    active = make_user(customer, status=UserStatus.ACTIVE)
    assert_exact(bureau.id)
    db.session.execute(text("DELETE FROM users WHERE id = :id"), {"id": active.id})
    assert_exact(bureau.id)


def test_counters_follow_an_import(app, bureau):
    from services.client_import import HEADER, import_clients
    from services.registry import get_registry

    rows = [
        ["914375916", "", "", "no", "Kari", "Nordmann", "kari@tollbugata.example", "", "daglig_leder"],
        ["", "Nystartet Kafé AS", "", "yes", "", "", "", "", ""],
    ]
    import_clients(db.session, bureau.id, [dict(zip(HEADER, row, strict=True)) for row in rows], get_registry(app))
    assert_exact(bureau.id)
    assert home.kept_counters(db.session, bureau.id, date.today()).demo_clients == 1


def test_counter_rows_follow_their_bureau(app, make_bureau):
    doomed = make_bureau()
    db.session.add(Client(bureau_id=doomed.id, name="Borte AS"))  # beside its internal client
    db.session.commit()
    assert db.session.scalar(select(BureauCounter.clients).where(BureauCounter.bureau_id == doomed.id)) == 2
    doomed_id = doomed.id
    db.session.execute(text("DELETE FROM bureaus WHERE id = :id"), {"id": doomed_id})
    db.session.commit()
    db.session.expunge_all()
    assert db.session.scalars(select(BureauCounter).where(BureauCounter.bureau_id == doomed_id)).all() == []


def test_home_reads_few_statements(client, login_as, world, count_queries):
    login_as()
    client.get("/admin/")  # the month's totals are computed on the first visit of a small bureau
    with count_queries() as counted:
        assert client.get("/admin/").status_code == 200
    assert counted.count <= 40, counted.statements


def test_staff_role_is_irrelevant_to_the_page_content(client, login, bureau, make_staff, world):
    staff = make_staff(bureau, StaffRole.STAFF)
    login(staff)
    assert todos(page(client))["consent_pending"][0] == 1
