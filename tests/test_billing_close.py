"""Closed billing months: closing once, the same bytes forever, and nothing that can alter a closed month."""

# ruff: noqa: F811 - test_billing's ``book`` fixture is imported and then requested by name

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from extensions import db
from models import (
    AuditEntry,
    BillingMonth,
    BillingSnapshotDetail,
    BillingSnapshotRow,
    Client,
    PackageAssignment,
    PackagePrice,
    Person,
    PersonKind,
    User,
    UserStatus,
)
from services import billing, billing_close, policy
from services.errors import DomainError
from tests.test_admin import page
from tests.test_billing import PERIOD, book, read_xlsx  # noqa: F401 - the October 2026 bureau

OCTOBER = "2026-10"
REFUSED = "Faktureringsmåneden 2026-10 er lukket"


def close(runner, bureau, period: str = OCTOBER):
    org_number = bureau.org_number
    db.session.rollback()  # on SQLite the test's own session must not hold the write lock the command needs
    result = runner.invoke(args=["billing", "close", "--bureau", org_number, "--period", period])
    return result


def all_exports(runner, bureau, clients: tuple[str, ...] = ()) -> dict[tuple, bytes]:
    """Every file the CLI makes for October: both dialects, summary and detail, whole and per client."""
    files, org_number = {}, bureau.org_number
    db.session.rollback()  # see close()
    for dialect in ("standard", "excel-no"):
        for detail in (False, True):
            for chosen in ((), *((c,) for c in clients)):
                args = ["billing", "export", "--bureau", org_number, "--period", OCTOBER, "--dialect", dialect]
                args += ["--detail"] if detail else []
                for org in chosen:
                    args += ["--client", org]
                result = runner.invoke(args=args)
                assert result.exit_code == 0, result.output
                files[dialect, detail, chosen] = result.stdout_bytes
    return files


def utc(moment: datetime) -> datetime:
    """SQLite gives back the stored UTC time without its zone."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def month_of(bureau) -> BillingMonth | None:
    db.session.expire_all()
    return db.session.scalar(
        select(BillingMonth).where(BillingMonth.bureau_id == bureau.id, BillingMonth.period == OCTOBER)
    )


# --- closing ---------------------------------------------------------------------------------------


def test_close_prints_json_and_stores_what_the_open_month_exported(runner, book, bureau):
    before = all_exports(runner, bureau, clients=("974760673",))
    result = close(runner, bureau)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("bureau", "period", "status", "clients", "users", "rows", "amount")} == {
        "bureau": bureau.org_number,
        "period": OCTOBER,
        "status": "closed",
        "clients": 2,
        "users": 4,
        "rows": 3,
        "amount": "695.00",
    }
    month = month_of(bureau)
    assert month.closed_by_label == "billing close (CLI)"
    assert utc(datetime.fromisoformat(summary["closed_at"])) == utc(month.closed_at)
    assert db.session.scalar(select(func.count()).where(BillingSnapshotRow.month_id == month.id)) == 3
    assert db.session.scalar(select(func.count()).where(BillingSnapshotDetail.month_id == month.id)) == 5
    # the closed month's files are the bytes the open month gave at the moment of closing
    assert all_exports(runner, bureau, clients=("974760673",)) == before
    history = db.session.scalar(select(AuditEntry).where(AuditEntry.entity == "billing_months"))
    assert history.entity_id == month.id and history.actor_label == "billing close (CLI)"


def test_closing_again_changes_nothing(runner, book, bureau):
    assert close(runner, bureau).exit_code == 0
    first = month_of(bureau)
    rows = count(BillingSnapshotRow)
    again = close(runner, bureau)
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["status"] == "already_closed"
    assert utc(datetime.fromisoformat(summary["closed_at"])) == utc(first.closed_at)
    assert count(BillingMonth) == 1 and count(BillingSnapshotRow) == rows
    assert month_of(bureau).closed_at == first.closed_at


@pytest.mark.parametrize("period", ["running", "2099-01"])
def test_the_running_and_future_months_cannot_be_closed(runner, bureau, period):
    month = date.today().strftime("%Y-%m") if period == "running" else period
    result = close(runner, bureau, month)
    assert result.exit_code == 2 and "bare en måned som er over" in result.output
    assert count(BillingMonth) == 0


def test_malformed_period_and_unknown_bureau_are_usage_errors(runner, bureau):
    for bad in ("2026-13", "2026-1", "oktober"):
        result = close(runner, bureau, bad)
        assert result.exit_code == 2 and "YYYY-MM" in result.output
    result = runner.invoke(args=["billing", "close", "--bureau", "974760673", "--period", OCTOBER])
    assert result.exit_code == 2 and count(BillingMonth) == 0


def test_a_close_that_loses_the_race_reports_already_closed(book, bureau, monkeypatch):
    first = billing_close.close_or_report(db.session, bureau.id, PERIOD, actor=None, today=date(2026, 12, 1))
    assert not first.already_closed
    real, calls = billing_close._stored_month, []

    def not_yet_seen(session, bureau_id, period):  # the other close had not committed when this one looked
        calls.append(period)
        return None if len(calls) == 1 else real(session, bureau_id, period)

    monkeypatch.setattr(billing_close, "_stored_month", not_yet_seen)
    second = billing_close.close_or_report(db.session, bureau.id, PERIOD, actor=None, today=date(2026, 12, 1))
    assert second.already_closed and utc(second.closed_at) == utc(first.closed_at)
    assert count(BillingMonth) == 1
    assert count(BillingSnapshotRow) == 3 and count(BillingSnapshotDetail) == 5


def test_the_database_refuses_to_update_a_closed_month(runner, book, bureau):
    assert close(runner, bureau).exit_code == 0
    db.session.rollback()
    for statement in (
        "UPDATE billing_months SET amount = 1",
        "UPDATE billing_snapshot_rows SET users = 99",
        "UPDATE billing_snapshot_details SET days_billable = 99",
    ):
        with db.engine.connect() as conn, pytest.raises(DBAPIError, match="closed_billing_month_is_immutable"):
            conn.execute(text(statement))
    month = month_of(bureau)
    assert month.amount == Decimal("695.00")
    assert db.session.scalars(select(BillingSnapshotRow.users).order_by(BillingSnapshotRow.position)).all() == [
        1,
        3,
        1,
    ]


# --- the proof: the same bytes forever -------------------------------------------------------------


def test_a_closed_month_exports_the_same_bytes_whatever_happens_later(
    runner,
    login_as,
    client,
    book,
    bureau,
    make_client,
    make_user,
    assign,
):
    crm = book["crm"]
    gone = make_client(name="Borte AS")
    leaving = make_user(gone)
    assign(leaving, crm, date(2026, 10, 3))
    acme_people = db.session.scalars(
        select(User).join(Person).where(Person.client_id == book["acme"].id).order_by(User.id)
    ).all()
    assert close(runner, bureau).exit_code == 0
    gone_org = gone.org_number
    closed = all_exports(runner, bureau, clients=("974760673", gone_org))
    assert b"Borte AS" in closed["standard", False, ()]

    # prices: the package and the price October was billed at
    crm.price = Decimal("999.00")
    db.session.execute(PackagePrice.__table__.delete().where(PackagePrice.package_id == crm.id))
    db.session.add(PackagePrice(bureau_id=bureau.id, package_id=crm.id, valid_from=date(2000, 1, 1), price=1))
    db.session.commit()
    # a client deleted, and a person with its user
    db.session.delete(db.session.get(Client, gone.id))
    db.session.commit()
    db.session.delete(db.session.get(Person, acme_people[1].person_id))  # the one-day user of 31 October
    db.session.commit()
    # assignments edited outside October, a new one from November, an open one ended on 31 October
    whole = acme_people[0]
    first_crm = next(a for a in whole.assignments if a.package_id == crm.id)
    first_crm.valid_to = date(2026, 10, 31)
    assign(whole, book["invoicing"], date(2026, 11, 1))
    db.session.commit()
    # users blocked, one back-dated into October; a client renamed
    late = db.session.get(User, acme_people[4].id)
    late.status, late.blocked_at = UserStatus.BLOCKED, datetime(2026, 10, 2, tzinfo=UTC)
    whole.status, whole.blocked_at = UserStatus.BLOCKED, datetime(2026, 12, 1, tzinfo=UTC)
    db.session.get(Client, book["acme"].id).name = "Acme Omdøpt AS"
    db.session.commit()

    with billing.snapshot(db.engine) as conn:  # the live data really did change under the closed month
        live = list(billing.summary_rows(conn, bureau.id, PERIOD, billing.Dialect.STANDARD))
    assert all(row[2] != "Borte AS" for row in live) and any(row[7] == "1.00" for row in live)

    assert all_exports(runner, bureau, clients=("974760673", gone_org)) == closed
    login_as("staff")
    for dialect in ("standard", "excel-no"):
        for detail in (False, True):
            suffix = "&detail=1" if detail else ""
            response = client.get(f"/admin/billing/download/?period={OCTOBER}&dialect={dialect}{suffix}")
            assert response.data == closed[dialect, detail, ()]
            response.close()
    acme = book["acme"].id
    response = client.get(f"/admin/billing/download/?period={OCTOBER}&client={acme}&detail=1")
    assert response.data == closed["standard", True, ("974760673",)]
    response.close()
    text_ = page(client.get(f"/admin/billing/?period={OCTOBER}"))
    assert "Borte AS" in text_ and "695,00\xa0kr" not in text_  # Borte AS added 149.00 before the close
    assert "844,00\xa0kr" in text_
    # The workbook of the closed month: the snapshot's lines too (compared by value: a workbook holds its date).
    for detail in (False, True):
        response = client.get(f"/admin/billing/download/xlsx/?period={OCTOBER}{'&detail=1' if detail else ''}")
        workbook = [[cell.value for cell in row] for row in read_xlsx(response.data).iter_rows()][1:]
        response.close()
        lines = list(csv.reader(io.StringIO(closed["standard", detail, ()].decode(), newline="")))[1:]
        kind = 7 if detail else 5
        expected = [[*line[:kind], billing.KIND_NO[line[kind]], *line[kind + 1 :]] for line in lines]
        amounts = () if detail else (7, 8)
        assert [
            [f"{Decimal(str(value)):.2f}" if index in amounts else str(value) for index, value in enumerate(row)]
            for row in workbook
        ] == expected


# --- the page ---------------------------------------------------------------------------------------


def test_staff_see_no_close_button_and_are_refused(login_as, client, book, bureau):
    login_as("staff")
    text_ = page(client.get(f"/admin/billing/?period={OCTOBER}"))
    assert 'id="billing-close"' not in text_ and "Åpen" in text_
    response = client.post("/admin/billing/close/", data={"period": OCTOBER, "confirm": "1"}, follow_redirects=True)
    assert str(policy.REFUSALS["admin_only"]) in page(response)
    assert month_of(bureau) is None and count(BillingSnapshotRow) == 0


def test_an_administrator_closes_from_the_page(login_as, client, book, bureau, run_jobs):
    admin = login_as("admin")
    assert 'id="billing-close"' in page(client.get(f"/admin/billing/?period={OCTOBER}"))
    unconfirmed = client.post("/admin/billing/close/", data={"period": OCTOBER}, follow_redirects=True)
    assert "Kryss av" in page(unconfirmed) and month_of(bureau) is None
    queued = client.post("/admin/billing/close/", data={"period": OCTOBER, "confirm": "1"})
    assert queued.status_code == 302 and "/admin/jobs/" in queued.headers["Location"]  # the close runs as a job
    assert month_of(bureau) is None
    run_jobs()
    assert "2026-10 er lukket" in page(client.get(queued.headers["Location"]))
    text_ = page(client.get(f"/admin/billing/?period={OCTOBER}"))
    assert 'id="billing-close"' not in text_
    month = month_of(bureau)
    assert month.closed_by_id == admin.id and month.closed_by_label == str(admin)
    assert re.search(r"<td>oktober 2026</td><td>Lukket</td><td>\d\d\.\d\d\.\d{4}, \d\d:\d\d</td>", text_)
    assert "695,00\xa0kr" in text_
    history = page(client.get("/admin/auditlog/"))  # the event log names the closing and who did it
    rows = re.findall(r"<tr>.*?</tr>", history, re.S)
    assert [r for r in rows if html.escape(str(admin)) in r and "Lukkede faktureringsmåneder" in r]
    again = client.post("/admin/billing/close/", data={"period": OCTOBER, "confirm": "1"}, follow_redirects=True)
    assert "allerede lukket" in page(again) and count(BillingMonth) == 1
    running = date.today().strftime("%Y-%m")
    assert 'id="billing-close"' not in page(client.get(f"/admin/billing/?period={running}"))
    refused = client.post("/admin/billing/close/", data={"period": running, "confirm": "1"}, follow_redirects=True)
    assert "bare en måned som er over" in page(refused) and count(BillingMonth) == 1


def test_a_closed_months_page_reads_no_assignments(login_as, client, runner, book, bureau, count_queries):
    assert close(runner, bureau).exit_code == 0
    login_as("staff")
    for url in (f"/admin/billing/?period={OCTOBER}", f"/admin/billing/?period={OCTOBER}&client={book['acme'].id}"):
        with count_queries() as counter:
            text_ = page(client.get(url))
        assert "Acme AS" in text_
        assert not [s for s in counter.statements if "package_assignments" in s]
    assert "447,00\xa0kr" in text_ and "HYPERLINK" not in text_  # only the chosen client, from the snapshot


# --- the worker -------------------------------------------------------------------------------------


def test_the_worker_closes_the_previous_month_from_the_close_day(
    app,
    runner,
    book,
    bureau,
    make_bureau,
    monkeypatch,
):
    import cli_outbox

    other = make_bureau()
    app.config["BILLING_CLOSE_DAY"] = 5
    worker = ["outbox", "worker", "--max-passes", "1", "--interval", "0.1"]
    monkeypatch.setattr(cli_outbox, "housekeeping_today", lambda: date(2026, 11, 4))
    assert runner.invoke(args=worker).exit_code == 0
    assert count(BillingMonth) == 0
    monkeypatch.setattr(cli_outbox, "housekeeping_today", lambda: date(2026, 11, 5))
    db.session.rollback()
    result = runner.invoke(args=worker)
    assert result.exit_code == 0, result.output
    months = db.session.scalars(select(BillingMonth).order_by(BillingMonth.bureau_id)).all()
    assert [(m.bureau_id, m.period, m.closed_by_label) for m in months] == [
        (bureau.id, OCTOBER, "outbox worker: billing close"),
        (other.id, OCTOBER, "outbox worker: billing close"),
    ]
    assert months[0].amount == Decimal("695.00") and months[1].rows == 0
    monkeypatch.setattr(cli_outbox, "housekeeping_today", lambda: date(2026, 11, 20))
    db.session.rollback()
    assert runner.invoke(args=worker).exit_code == 0
    assert count(BillingMonth) == 2 and count(BillingSnapshotRow) == 3


def test_one_bureaus_failure_does_not_keep_the_others_open(book, bureau, make_bureau, monkeypatch):
    other = make_bureau()
    real = billing_close.close_month

    def fails_for_the_first(session, bureau_id, *args, **kwargs):
        if bureau_id == bureau.id:
            raise RuntimeError("disk full")
        return real(session, bureau_id, *args, **kwargs)

    monkeypatch.setattr(billing_close, "close_month", fails_for_the_first)
    results = billing_close.close_previous_months(db.session, date(2026, 11, 1), 1, "worker")
    assert [r.bureau_id for r in results] == [other.id]
    assert month_of(bureau) is None


# --- the guard: nothing alters a closed month ---------------------------------------------------


@pytest.fixture
def closed_october(book, bureau):
    """The October bureau; call ``close()`` on it once the test's own October data is in place."""

    def close_now() -> None:
        billing_close.close_or_report(db.session, bureau.id, PERIOD, actor=None, today=date(2026, 12, 1))

    return {**book, "close": close_now}


def assignments_of(user_id: int) -> list[tuple]:
    db.session.expire_all()
    return [
        (a.package_id, a.valid_from, a.valid_to)
        for a in db.session.scalars(
            select(PackageAssignment).where(PackageAssignment.user_id == user_id).order_by(PackageAssignment.id)
        )
    ]


def refused(change) -> str:
    with pytest.raises(DomainError) as caught:
        change()
        db.session.commit()
    db.session.rollback()
    return str(caught.value)


def test_assignments_dated_into_a_closed_month_are_refused(closed_october, make_client, make_user, assign):
    crm = closed_october["crm"]
    user = make_user(closed_october["acme"])
    closed_october["close"]()
    message = refused(lambda: assign(user, crm, date(2026, 10, 20)))
    assert "2026-10" in message and assignments_of(user.id) == []
    assign(user, crm, date(2026, 11, 1))  # after the closed month: fine
    assert assignments_of(user.id) == [(crm.id, date(2026, 11, 1), None)]
    demo_user = make_user(make_client(name="Demo 2 AS", is_demo=True))
    assign(demo_user, crm, date(2026, 10, 20))  # a demo client is never billed: nothing to alter


def test_back_dated_ends_and_starts_are_refused_but_ending_yesterday_on_the_first_works(
    closed_october, make_user, assign
):
    crm = closed_october["crm"]
    user = make_user(closed_october["acme"])
    held = assign(user, crm, date(2026, 1, 1))
    held_id = held.id
    closed_october["close"]()

    def end(day):
        def change():
            db.session.get(PackageAssignment, held_id).valid_to = day

        return change

    assert "2026-10" in refused(end(date(2026, 10, 30)))
    assert "2026-10" in refused(end(date(2026, 9, 30)))
    assert assignments_of(user.id) == [(crm.id, date(2026, 1, 1), None)]

    def later_start():
        db.session.get(PackageAssignment, held_id).valid_from = date(2026, 10, 2)

    assert "2026-10" in refused(later_start)
    # on 1 November, ending it "yesterday" leaves October whole: allowed
    end(date(2026, 10, 31))()
    db.session.commit()
    assert assignments_of(user.id) == [(crm.id, date(2026, 1, 1), date(2026, 10, 31))]
    # deleting an assignment that held October is refused; one wholly after it may go
    assert "2026-10" in refused(lambda: db.session.delete(db.session.get(PackageAssignment, held_id)))
    after = assign(user, crm, date(2026, 11, 10))
    db.session.delete(after)
    db.session.commit()
    assert assignments_of(user.id) == [(crm.id, date(2026, 1, 1), date(2026, 10, 31))]


def test_moving_a_users_end_date_into_a_closed_month_is_refused(closed_october, make_user, assign):
    crm = closed_october["crm"]
    external = make_user(closed_october["acme"], PersonKind.EXTERNAL_USER, end_date=date(2027, 1, 31))
    assign(external, crm, date(2026, 9, 1))
    user_id = external.id
    closed_october["close"]()

    def end_on(day):
        def change():
            db.session.get(User, user_id).end_date = day

        return change

    assert "2026-10" in refused(end_on(date(2026, 10, 15)))
    db.session.expire_all()
    assert db.session.get(User, user_id).end_date == date(2027, 1, 31)
    end_on(date(2026, 11, 20))()  # after October: fine
    db.session.commit()
    end_on(date(2026, 10, 31))()  # the last day of October bills the same days
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(User, user_id).end_date == date(2026, 10, 31)


# --- every surface shows the message and saves nothing ----------------------------------------------


def test_surfaces_show_the_closed_month_and_save_nothing(
    login_as, client, closed_october, make_user, make_package, assign, monkeypatch
):
    login_as("admin")
    crm = closed_october["crm"]
    acme = closed_october["acme"]
    user = make_user(acme)
    held = assign(user, crm, date(2026, 1, 1))
    held_id, user_id = held.id, user.id
    external = make_user(acme, PersonKind.EXTERNAL_USER, end_date=date(2027, 1, 31))
    assign(external, crm, date(2026, 9, 1))
    closed_october["close"]()
    before = assignments_of(user_id)

    # the Pakketildelinger grid: create, edit, delete
    addon = make_package(code="EKSTRA", kind=closed_october["invoicing"].kind, rank=None)
    created = client.post(
        "/admin/assignments/new/", data={"user": user_id, "package": addon.id, "valid_from": "2026-10-05"}
    )
    assert REFUSED in page(created)
    edited = client.post(
        f"/admin/assignments/edit/?id={held_id}",
        data={
            "user": user_id,
            "package": crm.id,
            "valid_from": "2026-01-01",
            "valid_to": "2026-10-10",
            "version_check": str(held.version),
        },
        follow_redirects=True,
    )
    assert REFUSED in page(edited)
    deleted = client.post("/admin/assignments/delete/", data={"id": held_id}, follow_redirects=True)
    assert REFUSED in page(deleted)
    assert assignments_of(user_id) == before

    # the Brukere bulk "Grant a package" page with a start date in October
    granted = client.post(
        f"/admin/users/grant-package/?id={user_id}",
        data={"package": str(addon.id), "valid_from": "2026-10-05"},
        follow_redirects=True,
    )
    assert REFUSED in page(granted) and assignments_of(user_id) == before

    # the Brukere edit form's end date
    edit = client.post(
        f"/admin/users/edit/?id={external.id}",
        data={
            "person": external.person_id,
            "status": "active",
            "end_date": "2026-10-15",
            "version_check": str(external.version),
        },
        follow_redirects=True,
    )
    assert REFUSED in page(edit)
    db.session.expire_all()
    assert db.session.get(User, external.id).end_date == date(2027, 1, 31)

    # the Personer tab's change of access, as if today were inside the closed month (the guard does not ask)
    import admin_views.client_page.people as people_tab

    class October20(date):
        @classmethod
        def today(cls):
            return date(2026, 10, 20)

    monkeypatch.setattr(people_tab, "date", October20)
    url = f"/admin/clients/people/{user.person_id}/access/?id={acme.id}"
    response = client.post(url, data={"main_package": ""}, follow_redirects=True)
    assert REFUSED in page(response) and assignments_of(user_id) == before


def test_the_people_tab_ends_a_package_yesterday_on_the_first_after_a_closed_month(
    login_as, client, closed_october, make_user, assign, monkeypatch
):
    import admin_views.client_page.people as people_tab

    class November1(date):
        @classmethod
        def today(cls):
            return date(2026, 11, 1)

    login_as("staff")
    crm, acme = closed_october["crm"], closed_october["acme"]
    user = make_user(acme)
    assign(user, crm, date(2026, 1, 1))
    closed_october["close"]()
    monkeypatch.setattr(people_tab, "date", November1)
    url = f"/admin/clients/people/{user.person_id}/access/?id={acme.id}"
    response = client.post(url, data={"main_package": ""})
    assert response.status_code == 302, page(response)
    assert assignments_of(user.id) == [(crm.id, date(2026, 1, 1), date(2026, 10, 31))]


def test_a_close_day_past_the_months_end_means_its_last_day(bureau):
    assert billing_close.close_previous_months(db.session, date(2027, 2, 27), 31, "worker") == []
    results = billing_close.close_previous_months(db.session, date(2027, 2, 28), 31, "worker")
    assert [(r.bureau_id, r.period, r.already_closed) for r in results] == [(bureau.id, "2027-01", False)]


def test_a_failing_close_on_the_page_says_so_and_stores_nothing(login_as, client, book, bureau, monkeypatch, run_jobs):
    from sqlalchemy.exc import OperationalError

    def breaks(*args, **kwargs):
        raise OperationalError("INSERT INTO billing_months", {}, Exception("disk I/O error"))

    login_as("admin")
    monkeypatch.setattr(billing_close, "close_month", breaks)
    response = client.post("/admin/billing/close/", data={"period": OCTOBER, "confirm": "1"}, follow_redirects=True)
    assert response.status_code == 200
    run_jobs()  # the job's chunk fails and is rolled back; it waits before it is tried again
    text_ = page(client.get(response.request.path))
    assert "INSERT" not in text_ and "disk I/O" not in text_
    assert "ingenting av den ble lagret" in text_
    assert month_of(bureau) is None
