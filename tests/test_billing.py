"""The billing basis: the rules, the file (dialects, quoting, inert formulas), CLI = page, never truncated."""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from extensions import db
from models import PackageKind, PackagePrice, PersonKind, UserStatus
from services import billing
from tests.test_admin import page

PERIOD = billing.Period.parse("2026-10")
SEPT_30, OCT_1, OCT_15, OCT_31, NOV_1 = (
    date(2026, 9, 30),
    date(2026, 10, 1),
    date(2026, 10, 15),
    date(2026, 10, 31),
    date(2026, 11, 1),
)


@pytest.fixture
def book(bureau, make_client, make_user, make_package, assign):
    """A small bureau: who is billed in October 2026 and who is not, and why."""
    crm = make_package(code="CRM", name="CRM", rank=1, price=Decimal("149.00"))
    invoicing = make_package(code="FAKTURA", name="Fakturering", kind=PackageKind.ADDON, price=Decimal("99.00"))
    acme = make_client(name="Acme AS", org_number="974760673")
    whole = make_user(acme)  # whole month: billed
    assign(whole, crm, date(2026, 1, 1))
    assign(whole, invoicing, date(2026, 1, 1))
    one_day = make_user(acme)  # held CRM on 31 October only: billed
    assign(one_day, crm, OCT_31)
    ended = make_user(acme)  # ended 30 September: not billed
    assign(ended, crm, date(2026, 1, 1), SEPT_30)
    blocked = make_user(acme, status=UserStatus.BLOCKED, blocked_at=datetime(2026, 9, 20, tzinfo=UTC))
    assign(blocked, crm, date(2026, 1, 1))  # blocked the whole month: not billed
    late_block = make_user(acme, status=UserStatus.BLOCKED, blocked_at=datetime(2026, 10, 10, 12, tzinfo=UTC))
    assign(late_block, crm, date(2026, 1, 1))  # not blocked 1-9 October: billed
    expired = make_user(acme, PersonKind.EXTERNAL_USER, end_date=SEPT_30)
    assign(expired, crm, date(2026, 9, 1))  # external user ended in September: not billed
    formula = make_client(name='=HYPERLINK("x")', org_number="923456783")
    assign(make_user(formula), crm, OCT_15)
    demo = make_client(name="Demo AS", is_demo=True)
    assign(make_user(demo), crm, date(2026, 1, 1))
    return {"crm": crm, "invoicing": invoicing, "acme": acme, "formula": formula}


def export_text(**kwargs) -> str:
    out = io.StringIO(newline="")
    billing.export(db.engine, out, **{"period": PERIOD, "dialect": billing.Dialect.STANDARD, **kwargs})
    return out.getvalue()


def test_rules(book, bureau):
    text = export_text(bureau_id=bureau.id)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == billing.SUMMARY_HEADER
    assert rows[1:] == [
        ["2026-10", "923456783", '\'=HYPERLINK("x")', "CRM", "CRM", "main", "1", "149.00", "149.00"],
        ["2026-10", "974760673", "Acme AS", "CRM", "CRM", "main", "3", "149.00", "447.00"],
        ["2026-10", "974760673", "Acme AS", "FAKTURA", "Fakturering", "addon", "1", "99.00", "99.00"],
    ]
    assert "Demo AS" not in text and "Testbyrå" not in text  # demo and internal clients are never billed
    assert text.endswith("\r\n") and "\r\n" in text


def test_detail_counts_days(book, bureau):
    rows = list(csv.DictReader(io.StringIO(export_text(bureau_id=bureau.id, detail=True), newline="")))
    days = sorted(
        int(r["days_billable"]) for r in rows if r["client_org_number"] == "974760673" and r["package_code"] == "CRM"
    )
    assert days == [1, 9, 31]  # one day, blocked from the 10th, the whole month
    assert {r["client_name"] for r in rows} == {"Acme AS", '\'=HYPERLINK("x")'}


def test_norwegian_excel_dialect(book, bureau):
    text = export_text(bureau_id=bureau.id, dialect=billing.Dialect.EXCEL_NO)
    assert text.startswith("\ufeffperiod;client_org_number;")
    assert "2026-10;974760673;Acme AS;CRM;CRM;main;3;149,00;447,00\r\n" in text
    assert '\'=HYPERLINK(""x"")' in text  # RFC 4180 quoting of the inert value


def test_price_in_force_for_the_period(book, bureau):
    crm = book["crm"]
    db.session.execute(PackagePrice.__table__.delete().where(PackagePrice.package_id == crm.id))
    db.session.add(
        PackagePrice(bureau_id=bureau.id, package_id=crm.id, valid_from=date(2026, 1, 1), price=Decimal("149"))
    )
    db.session.commit()
    crm.price = Decimal("199.00")  # a later price change
    db.session.commit()
    assert db.session.scalars(select(PackagePrice.price).where(PackagePrice.package_id == crm.id)).all() == [
        Decimal("149.00"),
        Decimal("199.00"),
    ]
    assert "149.00,447.00" in export_text(bureau_id=bureau.id)  # October keeps its price
    november = billing.Period.parse("2026-11") if date.today() >= NOV_1 else None
    if november is not None and date.today() < date(2026, 12, 1):
        out = io.StringIO(newline="")
        billing.export(db.engine, out, bureau_id=bureau.id, period=november, dialect=billing.Dialect.STANDARD)
        assert ",149.00," in out.getvalue()  # the price in force on 1 November


def test_only_chosen_clients(book, bureau):
    text = export_text(bureau_id=bureau.id, client_ids=[book["formula"].id])
    assert "Acme AS" not in text and "HYPERLINK" in text


def test_page_summary_and_download_equal_the_cli(login_as, client, runner, book, bureau, tmp_path):
    login_as("staff")
    text = page(client.get("/admin/billing/?period=2026-10"))
    assert "Fakturagrunnlag" in text
    assert "695.00" in text  # 149 + 447 + 99
    for dialect in ("standard", "excel-no"):
        response = client.get(f"/admin/billing/download/?period=2026-10&dialect={dialect}")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert int(response.headers["Content-Length"]) == len(response.data)
        response.close()
        output = tmp_path / f"{dialect}.csv"
        args = ["billing", "export", "--bureau", bureau.org_number, "--period", "2026-10", "--dialect", dialect]
        result = runner.invoke(args=[*args, "--output", str(output)])
        assert result.exit_code == 0, result.output
        assert output.read_bytes() == response.data
        stdout = runner.invoke(args=args)
        assert stdout.stdout_bytes == response.data


def test_client_grid_action_and_pakker_tab_agree_with_the_export(login_as, client, book, bureau):
    login_as("staff")
    acme = book["acme"]
    response = client.post("/admin/clients/action/", data={"action": "export_packages", "rowid": [acme.id]})
    assert response.status_code == 302 and f"client={acme.id}" in response.headers["Location"]
    if date.today().strftime("%Y-%m") == "2026-10":
        tab = page(client.get(f"/admin/clients/manage/?id={acme.id}&tab=packages"))
        assert "447.00" in tab


def test_pakker_tab_lines_match_this_months_export(
    login_as, client, bureau, make_client, make_user, make_package, assign
):
    login_as("staff")
    crm = make_package(code="CRM", name="CRM", rank=1, price=Decimal("149.00"))
    customer = make_client(name="Denne Måned AS")
    for _ in range(2):
        assign(make_user(customer), crm, date.today().replace(day=1))
    month = date.today().strftime("%Y-%m")
    tab = page(client.get(f"/admin/clients/manage/?id={customer.id}&tab=packages"))
    assert "298.00" in tab
    response = client.get(f"/admin/billing/download/?period={month}&client={customer.id}")
    exported = response.get_data(as_text=True)
    response.close()
    assert f"{month},{customer.org_number},Denne Måned AS,CRM,CRM,main,2,149.00,298.00\r\n" in exported


def test_a_failing_export_never_looks_complete(login_as, client, runner, book, bureau, tmp_path, monkeypatch):
    def breaks_after_one_row(*args, **kwargs):
        yield ["2026-10", "974760673", "Acme AS", "CRM", "CRM", "main", "3", "149.00", "447.00"]
        # What psycopg says when the server goes away: several lines.
        raise RuntimeError("server closed the connection unexpectedly\n\tThis probably means the server terminated")

    monkeypatch.setattr(billing, "summary_rows", breaks_after_one_row)
    login_as("staff")
    response = client.get("/admin/billing/download/?period=2026-10")
    assert response.status_code == 500 and response.mimetype != "text/csv"
    output = tmp_path / "f.csv"
    args = ["billing", "export", "--bureau", bureau.org_number, "--period", "2026-10"]
    result = runner.invoke(args=[*args, "--output", str(output)])
    assert result.exit_code != 0 and not output.exists() and list(tmp_path.iterdir()) == []
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert result.stdout_bytes.endswith(b"447.00\r\n#INCOMPLETE\r\n")
    assert result.stdout.splitlines()[-1] == "#INCOMPLETE"
    assert "server closed the connection unexpectedly" in result.stderr
    assert "server closed" not in result.stdout


def test_bad_period_and_unknown_client(runner, bureau, client, login_as):
    result = runner.invoke(args=["billing", "export", "--bureau", bureau.org_number, "--period", "2026-13"])
    assert result.exit_code == 2 and "YYYY-MM" in result.output
    result = runner.invoke(
        args=["billing", "export", "--bureau", bureau.org_number, "--period", "2026-10", "--client", "974760673"]
    )
    assert result.exit_code == 2 and "974760673" in result.output
    login_as("staff")
    assert client.get("/admin/billing/?period=nonsense").status_code == 400


def test_export_reads_one_snapshot(book, bureau, make_client, make_user, assign):
    crm = book["crm"]
    with billing.snapshot(db.engine) as conn:
        rows = billing.summary_rows(conn, bureau.id, PERIOD, billing.Dialect.STANDARD)
        first = next(rows)
        # someone adds a billable client while the export is half way
        late = make_client(name="Zzz Sen AS")
        assign(make_user(late), crm, OCT_1)
        rest = list(rows)
    assert all("Zzz Sen AS" not in row for row in [first, *rest])
    assert "Zzz Sen AS" in export_text(bureau_id=bureau.id)


def test_period_parsing():
    assert billing.Period.parse("2026-02").end == date(2026, 2, 28)
    assert billing.Period.parse("2024-02").end == date(2024, 2, 29)
    assert billing.Period.parse("2026-12").end == date(2026, 12, 31)
    assert str(billing.Period.previous_month(date(2026, 1, 15))) == "2025-12"
    for bad in ("2026-13", "26-10", "2026/10", "2026-1", ""):
        with pytest.raises(ValueError):
            billing.Period.parse(bad)


def test_one_day_before_period_end_is_inclusive():
    period = billing.Period.parse("2026-10")
    assert billing.billable_days(period, OCT_31, None, "active", None, None) == 1
    assert billing.billable_days(period, date(2026, 1, 1), OCT_15, "active", None, None) == 15
    assert billing.billable_days(period, date(2026, 1, 1), None, "blocked", "2026-10-01", None) == 0
    assert billing.billable_days(period, date(2026, 1, 1), None, "active", None, OCT_1 - timedelta(days=1)) == 0


def test_package_grid_counts_holders(login_as, client, book):
    from services.packages import holders_today

    counts = holders_today(db.session, [book["crm"].id, book["invoicing"].id])
    # CRM today: Acme (whole month, from 31 Oct), the formula client and the demo client; the ended,
    # blocked and expired users do not hold it.
    assert counts[book["crm"].id] == (3, 4)
    assert counts[book["invoicing"].id] == (1, 1)
    login_as("staff")
    text = page(client.get("/admin/packages/"))
    rows = re.findall(r"<tr>(.*?)</tr>", text, re.S)
    crm_row = next(r for r in rows if re.search(r"col-code[^>]*>\s*CRM\s*<", r))
    cells = dict(re.findall(r'class="col-(clients|users)">\s*(\d+)\s*</td>', crm_row))
    assert cells == {"clients": "3", "users": "4"}


def test_a_failure_mid_stream_releases_the_connection(book, bureau, monkeypatch):
    real_inert, calls = billing.inert, []

    def fails_on_the_second_row(value):
        calls.append(value)
        if len(calls) > 3:
            raise RuntimeError("disk full")
        return real_inert(value)

    monkeypatch.setattr(billing, "inert", fails_on_the_second_row)
    with pytest.raises(RuntimeError, match="disk full"):
        export_text(bureau_id=bureau.id)
    monkeypatch.setattr(billing, "inert", real_inert)
    assert "Acme AS" in export_text(bureau_id=bureau.id)  # the pool's connection works again
