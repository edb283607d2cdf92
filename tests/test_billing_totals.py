"""Kept billing totals and package holder counts: recorded with the change, applied by the worker, equal to the export."""

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, event, select

from extensions import db
from models import (
    BillingChange,
    BillingClientTotal,
    BillingTotal,
    PackageAssignment,
    PackageHolderCount,
    PackageKind,
    StaffRole,
    UserStatus,
)
from services import billing, billing_totals
from services.archive import archive
from services.formats import format_money
from services.packages import holders_today
from tests.test_admin import page

PERIOD = billing.Period.parse("2026-10")


def changes(bureau_id: int) -> list[int | None]:
    db.session.rollback()
    return list(db.session.scalars(select(BillingChange.client_id).where(BillingChange.bureau_id == bureau_id)))


def kept(bureau_id: int, period: billing.Period = PERIOD) -> BillingTotal | None:
    db.session.rollback()
    return db.session.scalar(
        select(BillingTotal).where(BillingTotal.bureau_id == bureau_id, BillingTotal.period == str(period))
    )


def exported(bureau_id: int, period: billing.Period = PERIOD) -> tuple[int, Decimal]:
    """The summary export's line count and total amount, read back from the file itself."""
    out = io.StringIO(newline="")
    billing.export(db.engine, out, bureau_id=bureau_id, period=period, dialect=billing.Dialect.STANDARD)
    lines = list(csv.DictReader(io.StringIO(out.getvalue())))
    return len(lines), sum((Decimal(line["amount"]) for line in lines), Decimal("0"))


def assert_agrees_with_export(bureau_id: int, period: billing.Period = PERIOD) -> BillingTotal:
    total = kept(bureau_id, period)
    assert total is not None and total.computed_at is not None
    rows, amount = exported(bureau_id, period)
    assert (total.rows, Decimal(total.amount_ore) / 100) == (rows, amount)
    with billing.snapshot(db.engine) as conn:
        live = billing.summarise(conn, bureau_id, period)
    assert (total.clients, total.users, total.rows) == (live.clients, live.users, live.rows)
    shares = db.session.execute(
        select(BillingClientTotal).where(
            BillingClientTotal.bureau_id == bureau_id, BillingClientTotal.period == str(period)
        )
    ).scalars()
    assert sum(share.amount_ore for share in shares) == total.amount_ore
    return total


def kroner(ore: int) -> str:
    """An amount in øre as the Norwegian page writes it (10 253,00 kr)."""
    return format_money(Decimal(ore) / 100, locale="no")


def ask(bureau_id: int, period: billing.Period) -> None:
    db.session.commit()  # on SQLite the session's transaction holds the write lock
    with db.engine.begin() as conn:
        billing_totals.request_period(conn, bureau_id, str(period))


def worker_step() -> list[billing_totals.BureauRefresh]:
    db.session.commit()
    return billing_totals.refresh_due(db.engine, today=date.today())


@pytest.fixture
def ledger(bureau, make_client, make_user, make_package, assign):
    """Two billed clients in October 2026 and a package on each user."""
    crm = make_package(code="CRM", name="CRM", rank=1, price=Decimal("149.90"))
    addon = make_package(code="FAKTURA", name="Fakturering", kind=PackageKind.ADDON, price=Decimal("99.00"))
    acme, beta = make_client(name="Acme AS"), make_client(name="Beta AS")
    users = [make_user(acme), make_user(acme), make_user(beta)]
    for user in users:
        assign(user, crm, date(2026, 1, 1))
    assign(users[0], addon, date(2026, 10, 5))
    ask(bureau.id, PERIOD)
    worker_step()
    return {"crm": crm, "addon": addon, "acme": acme, "beta": beta, "users": users}


def test_a_change_is_recorded_in_its_own_transaction(ledger, bureau, assign):
    assert changes(bureau.id) == []
    user = ledger["users"][2]
    assignment = assign(user, ledger["addon"], date(2026, 10, 1))
    assert changes(bureau.id) == [ledger["beta"].id]
    worker_step()
    assignment = db.session.get(type(assignment), assignment.id)
    assignment.valid_to = date(2026, 10, 20)
    db.session.flush()
    db.session.rollback()  # a change that is rolled back leaves no trace for the worker
    assert changes(bureau.id) == []


def test_kept_totals_follow_every_kind_of_change_to_the_ore(ledger, bureau, make_user, assign, make_staff):
    first = assert_agrees_with_export(bureau.id)
    assert (first.clients, first.users, first.rows) == (2, 3, 3)
    acme, beta, users = ledger["acme"], ledger["beta"], ledger["users"]

    assign(make_user(beta), ledger["addon"], date(2026, 10, 31))  # assign
    ended = db.session.scalars(select(PackageAssignment).filter_by(user_id=users[1].id)).one()
    ended.valid_to = date(2026, 9, 30)  # end before the month
    blocked = db.session.get(type(users[2]), users[2].id)
    blocked.status, blocked.blocked_at = UserStatus.BLOCKED, datetime(2026, 10, 1, 8, tzinfo=UTC)  # block
    db.session.commit()
    results = worker_step()
    (result,) = [r for r in results if r.bureau_id == bureau.id]
    assert result.periods_recomputed == () and result.clients == 2  # applied per client, not recomputed
    assert_agrees_with_export(bureau.id)

    db.session.get(type(acme), acme.id).is_demo = True  # mark demo: never billed
    db.session.commit()
    worker_step()
    assert assert_agrees_with_export(bureau.id).clients == 1

    admin = make_staff(bureau, role=StaffRole.ADMIN)
    archive(db.session, db.session.get(type(beta), beta.id), actor=admin)  # archive: blocks its users from today
    db.session.commit()
    assert changes(bureau.id)
    worker_step()
    assert_agrees_with_export(bureau.id)

    db.session.get(type(ledger["addon"]), ledger["addon"].id).price = Decimal("89.50")  # price: the whole bureau
    db.session.commit()
    assert None in changes(bureau.id)
    (result,) = [r for r in worker_step() if r.bureau_id == bureau.id]
    assert result.periods_recomputed == (str(PERIOD),)
    total = assert_agrees_with_export(bureau.id)
    assert (total.rows, total.amount_ore) == (1, 8950)  # Beta's new user's add-on; Acme is a demo now
    assert changes(bureau.id) == []


def test_another_bureaus_changes_never_touch_this_bureaus_totals(
    ledger, bureau, make_bureau, make_client, make_user, make_package, assign
):
    before = kept(bureau.id)
    other = make_bureau(name="Annet byrå AS")
    package = make_package(bureau=other, code="CRM", price=Decimal("10.00"))
    assign(make_user(make_client(bureau=other)), package, date(2026, 10, 1))
    db.session.get(type(package), package.id).price = Decimal("20.00")
    db.session.commit()
    assert changes(bureau.id) == [] and changes(other.id)
    worker_step()
    after = kept(bureau.id)
    assert (after.version, after.amount_ore, after.computed_at) == (
        before.version,
        before.amount_ore,
        before.computed_at,
    )


def test_a_month_never_computed_is_asked_for_and_computed_by_the_worker(bureau, ledger):
    november = billing.Period.parse("2026-11")
    assert kept(bureau.id, november) is None
    ask(bureau.id, november)
    assert kept(bureau.id, november).computed_at is None
    (result,) = [r for r in worker_step() if r.bureau_id == bureau.id]
    assert result.periods_recomputed == (str(november),)
    assert_agrees_with_export(bureau.id, november)


def test_closed_months_are_dropped_from_the_kept_totals(bureau, ledger):
    from services.billing_close import close_or_report

    close_or_report(db.session, bureau.id, PERIOD, actor=None, actor_label="test", today=date(2026, 12, 1))
    worker_step()
    assert kept(bureau.id) is None
    assert (
        db.session.scalar(select(BillingClientTotal.client_id).where(BillingClientTotal.bureau_id == bureau.id)) is None
    )


@pytest.fixture
def large(monkeypatch):
    """The page treats every bureau as large: it only reads what the worker kept."""
    monkeypatch.setattr(billing_totals, "INLINE_CLIENTS", 0)


class Statements:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.seen.append(" ".join(statement.split()))

    def touching(self, table: str) -> list[str]:
        return [s for s in self.seen if re.search(rf"\b{table}\b", s)]


@pytest.fixture
def statements(app):
    recorder = Statements()
    event.listen(db.engine, "before_cursor_execute", recorder)
    yield recorder
    event.remove(db.engine, "before_cursor_execute", recorder)


def test_page_reads_kept_totals_says_when_and_never_scans_the_month(
    login_as, client, bureau, ledger, large, statements, assign, make_user
):
    login_as("staff")
    text = page(client.get("/admin/billing/?period=2026-09"))
    assert 'id="billing-pending"' in text  # never computed: the worker is asked, and the page says so
    assert kept(bureau.id, billing.Period.parse("2026-09")).computed_at is None

    statements.seen.clear()
    text = page(client.get("/admin/billing/?period=2026-10"))
    total = kept(bureau.id).amount_ore
    assert 'id="billing-pending"' not in text
    assert kroner(total) in text
    assert re.search(r"Oppdatert \d{2}\.\d{2}\.\d{4} kl\. \d{2}:\d{2}", text)
    # Every statement that reads assignments is restricted to a batch of client ids (the preview's lines).
    reads = statements.touching("package_assignments")
    assert reads and all(re.search(r"clients\.id IN \(", s) for s in reads), reads
    assert "Acme AS" in text  # the preview still shows the first lines

    assign(make_user(ledger["beta"]), ledger["crm"], date(2026, 10, 2))
    text = page(client.get("/admin/billing/?period=2026-10"))
    assert re.search(r"1 endring\(er\) venter", text)
    assert kroner(total) in text  # the kept figures until the worker has run
    worker_step()
    text = page(client.get("/admin/billing/?period=2026-10"))
    assert "venter" not in text and kroner(total + 14990) in text


def test_a_small_bureau_sees_its_changes_at_once(login_as, client, bureau, ledger, assign, make_user):
    login_as("staff")
    assign(make_user(ledger["beta"]), ledger["crm"], date(2026, 10, 2))
    text = page(client.get("/admin/billing/?period=2026-10"))
    assert "venter" not in text
    assert_agrees_with_export(bureau.id)


def test_holder_counts_are_kept_and_recounted(login_as, client, bureau, ledger, large, statements, assign, make_user):
    today = date.today()
    package_ids = [ledger["crm"].id, ledger["addon"].id]
    db.session.execute(delete(PackageHolderCount))
    db.session.commit()
    login_as("staff")
    text = page(client.get("/admin/packages/"))
    assert 'id="package-holders-note"' in text and "telles av bakgrunnsjobben" in text  # never counted yet

    db.session.commit()
    assert billing_totals.refresh_holder_counts(db.engine, today=today) == [bureau.id]
    statements.seen.clear()
    text = page(client.get("/admin/packages/"))
    assert statements.touching("package_assignments") == []  # the grid reads the kept counts only
    assert re.search(r"talt kl\. \d{2}:\d{2}", text)
    stored = {
        row.package_id: (row.clients, row.users)
        for row in db.session.scalars(select(PackageHolderCount).where(PackageHolderCount.bureau_id == bureau.id))
    }
    expected = {ledger["crm"].id: (2, 3), ledger["addon"].id: (1, 1)}
    assert stored == holders_today(db.session, package_ids, today) == expected

    assign(make_user(ledger["beta"]), ledger["addon"], today)
    worker_step()  # applies the change and marks the counts stale
    assert all(row.stale for row in db.session.scalars(select(PackageHolderCount)))
    db.session.commit()
    assert billing_totals.refresh_holder_counts(db.engine, today=today) == []  # stale for under HOLDER_REFRESH
    # a new day always recounts (assignments start and end with the date alone)
    tomorrow = date.fromordinal(today.toordinal() + 1)
    assert billing_totals.refresh_holder_counts(db.engine, today=tomorrow) == [bureau.id]
    db.session.rollback()
    stored = {
        row.package_id: (row.clients, row.users, row.stale) for row in db.session.scalars(select(PackageHolderCount))
    }
    assert stored == {ledger["crm"].id: (2, 3, False), ledger["addon"].id: (2, 2, False)}


def test_pakker_tab_reads_only_that_clients_rows(login_as, client, bureau, ledger, statements):
    login_as("staff")
    acme = ledger["acme"]
    statements.seen.clear()
    page(client.get(f"/admin/clients/manage/?id={acme.id}&tab=packages"))
    reads = statements.touching("package_assignments")
    assert reads and all(re.search(r"persons\.client_id = |clients\.id IN \(", s) for s in reads), reads


def test_cli_refresh_totals(runner, bureau, ledger):
    result = runner.invoke(args=["billing", "refresh-totals", "--bureau", bureau.org_number, "--period", "2026-10"])
    assert result.exit_code == 0, result.output
    assert '"2026-10"' in result.output  # recomputed from scratch
    assert_agrees_with_export(bureau.id)
    bad = runner.invoke(args=["billing", "refresh-totals", "--period", "2026-13"])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output


def test_deleting_and_moving_people_reach_the_totals(ledger, bureau, make_client, make_user, assign):
    acme, beta = ledger["acme"], ledger["beta"]
    mover = make_user(acme)
    assign(mover, ledger["crm"], date(2026, 10, 1))
    worker_step()
    person = db.session.get(type(mover.person), mover.person_id)
    person.client_id = beta.id  # the person (and so its user) now belongs to Beta
    db.session.commit()
    assert sorted(changes(bureau.id)) == sorted([acme.id, beta.id])
    worker_step()
    assert_agrees_with_export(bureau.id)

    gone = make_client(name="Gamma AS")
    assign(make_user(gone), ledger["crm"], date(2026, 10, 1))
    worker_step()
    assert assert_agrees_with_export(bureau.id).clients == 3
    db.session.delete(db.session.get(type(gone), gone.id))  # the database deletes its people and packages
    db.session.commit()
    worker_step()
    assert assert_agrees_with_export(bureau.id).clients == 2


def test_a_small_bureaus_package_grid_counts_its_changes_at_once(login_as, client, ledger, assign, make_user):
    login_as("staff")
    page(client.get("/admin/packages/"))
    assign(make_user(ledger["beta"]), ledger["addon"], date.today())
    page(client.get("/admin/packages/"))
    db.session.rollback()
    counted = db.session.get(PackageHolderCount, ledger["addon"].id)
    assert (counted.clients, counted.users, counted.stale) == (2, 2, False)
