"""The billing basis: the rules, the file (dialects, quoting, inert formulas), CLI = page, never truncated."""

import csv
import html
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from flask_babel import refresh
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


def test_the_standard_dialect_keeps_the_contract_header(book, bureau):
    summary = export_text(bureau_id=bureau.id)
    assert summary.startswith(
        "period,client_org_number,client_name,package_code,package_name,package_kind,users,unit_price,amount\r\n"
    )
    detail = export_text(bureau_id=bureau.id, detail=True)
    assert detail.startswith(
        "period,client_org_number,client_name,user_name,user_email,package_code,package_name,package_kind,"
        "days_billable\r\n"
    )
    assert "\ufeff" not in summary + detail and ";" not in summary.splitlines()[0]


def test_norwegian_excel_dialect(book, bureau):
    text = export_text(bureau_id=bureau.id, dialect=billing.Dialect.EXCEL_NO)
    assert text.startswith(
        "\ufeffPeriode;Organisasjonsnummer;Klient;Pakkekode;Pakke;Pakketype;Brukere;Enhetspris;Beløp\r\n"
    )
    # The period as a formula whose result is the text (Excel would make a date of a bare 2026-10), unquoted.
    assert '="2026-10";974760673;Acme AS;CRM;CRM;Hovedpakke;3;149,00;447,00\r\n' in text
    assert '="2026-10";974760673;Acme AS;FAKTURA;Fakturering;Tilleggspakke;1;99,00;99,00\r\n' in text
    assert '="2026-10";923456783;"\'=HYPERLINK(""x"")";' in text  # RFC 4180 quoting of the inert value
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=";"))
    assert {row[0] for row in rows[1:]} == {'="2026-10"'} and len(rows) == 4
    assert all(len(row) == 9 for row in rows)


def test_norwegian_excel_dialect_of_the_details(book, bureau):
    text = export_text(bureau_id=bureau.id, dialect=billing.Dialect.EXCEL_NO, detail=True)
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=";"))
    assert tuple(rows[0]) == billing.DETAIL_HEADER_NO
    assert rows[0][-1] == "Fakturerbare dager" and rows[0][3:5] == ["Bruker", "E-post"]
    assert {row[0] for row in rows[1:]} == {'="2026-10"'}
    assert {row[7] for row in rows[1:]} == {"Hovedpakke", "Tilleggspakke"}
    standard = list(csv.reader(io.StringIO(export_text(bureau_id=bureau.id, detail=True), newline="")))
    # the same lines as the standard dialect, only the period, the kind and the header written for Excel
    assert [row[1:7] + row[8:] for row in rows[1:]] == [row[1:7] + row[8:] for row in standard[1:]]


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
    assert "695,00\xa0kr" in text  # 149 + 447 + 99, as Norwegian writes it
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
        assert "447,00\xa0kr" in tab


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
    assert "298,00\xa0kr" in tab and "149,00\xa0kr" in tab
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


# --- downloads: every file in every dialect, and the Excel workbook ------------------------------------


def cli_export(runner, bureau, *args: str) -> bytes:
    db.session.rollback()  # on SQLite the test's own session must not hold the write lock
    result = runner.invoke(args=["billing", "export", "--bureau", bureau.org_number, "--period", "2026-10", *args])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


@pytest.mark.parametrize("dialect", ["standard", "excel-no"])
@pytest.mark.parametrize("detail", [False, True])
def test_every_download_in_both_dialects_equals_the_cli(login_as, client, runner, book, bureau, dialect, detail):
    login_as("staff")
    acme = book["acme"]
    suffix = "&detail=1" if detail else ""
    for chosen, cli_args in (("", ()), (f"&client={acme.id}", ("--client", acme.org_number))):
        response = client.get(f"/admin/billing/download/?period=2026-10&dialect={dialect}{suffix}{chosen}")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        disposition = response.headers["Content-Disposition"]
        assert ("detaljer-2026-10" if detail else "fakturagrunnlag-2026-10") in disposition
        assert disposition.endswith("-excel.csv") == (dialect == "excel-no")
        data = response.data
        response.close()
        assert data == cli_export(runner, bureau, "--dialect", dialect, *(["--detail"] if detail else []), *cli_args)
        if chosen:
            assert b"HYPERLINK" not in data and b"Acme AS" in data


def test_the_page_offers_every_download(login_as, client, book, bureau):
    login_as("staff")
    text = page(client.get("/admin/billing/?period=2026-10"))
    links = set(re.findall(r'href="(/admin/billing/download/[^"]*)"', text))
    assert {
        "/admin/billing/download/?dialect=standard&period=2026-10",
        "/admin/billing/download/?dialect=excel-no&period=2026-10",
        "/admin/billing/download/xlsx/?period=2026-10",
        "/admin/billing/download/?dialect=standard&detail=1&period=2026-10",
        "/admin/billing/download/?dialect=excel-no&detail=1&period=2026-10",
        "/admin/billing/download/xlsx/?detail=1&period=2026-10",
    } <= {html.unescape(link) for link in links}
    acme = book["acme"].id
    tab = html.unescape(page(client.get(f"/admin/clients/manage/?id={acme}&tab=packages")))
    month = date.today().strftime("%Y-%m")
    for href in (
        f"/admin/billing/download/?dialect=standard&period={month}&client={acme}",
        f"/admin/billing/download/?dialect=excel-no&period={month}&client={acme}",
        f"/admin/billing/download/xlsx/?period={month}&client={acme}",
    ):
        assert f'href="{href}"' in tab


def read_xlsx(data: bytes):
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data))
    return workbook.active


def test_the_excel_workbook_has_number_cells_and_agrees_with_the_csv(login_as, client, book, bureau):
    login_as("staff")
    response = client.get("/admin/billing/download/xlsx/?period=2026-10")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "fakturagrunnlag-2026-10.xlsx" in response.headers["Content-Disposition"]
    assert int(response.headers["Content-Length"]) == len(response.data)
    sheet = read_xlsx(response.data)
    response.close()
    rows = list(sheet.iter_rows())
    assert [cell.value for cell in rows[0]] == list(billing.SUMMARY_HEADER_NO)
    assert all(cell.font.b for cell in rows[0])
    for row in rows[1:]:
        period, org, name, code, package, kind, users, unit_price, amount = row
        assert period.value == "2026-10" and period.data_type == "s"  # text: Excel never makes a date of it
        assert org.data_type == "s" and kind.value in ("Hovedpakke", "Tilleggspakke")
        assert users.data_type == "n" and isinstance(users.value, int)
        for cell in (unit_price, amount):
            assert cell.data_type == "n" and cell.number_format == "#,##0.00"
    assert not [cell for row in rows for cell in row if cell.data_type == "f"]  # no formula, not even the inert name
    # To the øre: every line and the total equal the CSV export's.
    csv_rows = list(csv.reader(io.StringIO(export_text(bureau_id=bureau.id), newline="")))[1:]

    def ore(value) -> int:
        return int((Decimal(str(value)) * 100).to_integral_value())

    assert [
        [r[0].value, r[1].value, r[2].value, r[3].value, r[4].value, r[6].value, ore(r[7].value), ore(r[8].value)]
        for r in rows[1:]
    ] == [[c[0], c[1], c[2], c[3], c[4], int(c[6]), ore(c[7]), ore(c[8])] for c in csv_rows]
    assert sum(ore(r[8].value) for r in rows[1:]) == 69500 == sum(ore(c[8]) for c in csv_rows)


def test_the_excel_workbook_of_the_details_and_of_one_client(
    login_as, client, book, bureau, make_bureau, make_client, make_user, make_package, assign
):
    other = make_bureau()
    stranger = make_client(bureau=other, name="Fremmed AS")  # another bureau's client, billed in October
    assign(make_user(stranger), make_package(bureau=other), date(2026, 10, 1))
    login_as("staff")
    acme, formula = book["acme"], book["formula"]
    url = f"/admin/billing/download/xlsx/?period=2026-10&detail=1&client={acme.id}&client={stranger.id}"
    response = client.get(url)
    assert response.status_code == 200 and "detaljer-2026-10.xlsx" in response.headers["Content-Disposition"]
    rows = [[cell.value for cell in row] for row in read_xlsx(response.data).iter_rows()]
    response.close()
    assert rows[0] == list(billing.DETAIL_HEADER_NO)
    assert {row[2] for row in rows[1:]} == {"Acme AS"}  # only the chosen client; another bureau's id is ignored
    assert sorted(row[8] for row in rows[1:] if row[5] == "CRM") == [1, 9, 31]
    assert "Fremmed" not in str(rows) and formula.name not in str(rows)


def test_a_month_too_big_for_excel_gives_a_reason_and_no_workbook(login_as, client, book, bureau, monkeypatch):
    from openpyxl.worksheet._writer import ALL_TEMP_FILES

    monkeypatch.setattr(billing, "XLSX_MAX_ROWS", 2)  # the month has three lines
    login_as("staff")
    acme = book["acme"].id
    response = client.get(f"/admin/billing/download/xlsx/?period=2026-10&client={acme}")
    assert response.status_code == 200  # Acme's two lines fit
    response.close()
    response = client.get("/admin/billing/download/xlsx/?period=2026-10")
    assert response.status_code == 302 and "Content-Disposition" not in response.headers
    assert response.headers["Location"].endswith("/admin/billing/?period=2026-10")
    back = page(client.get(response.headers["Location"]))
    assert "flere linjer enn et Excel-ark kan romme; last ned CSV-filen" in back
    assert ALL_TEMP_FILES == []  # the sheet's temporary file went with the refused workbook


def test_downloads_refuse_bad_periods_and_strangers(client, login_as, book):
    for url in ("/admin/billing/download/xlsx/?period=2026-10", "/admin/billing/download/?period=2026-10"):
        response = client.get(url)
        assert response.status_code in (302, 403) and not response.data.startswith(b"PK")
    login_as("staff")
    assert client.get("/admin/billing/download/xlsx/?period=nonsense").status_code == 400
    assert client.get("/admin/billing/download/xlsx/?period=2026-13").status_code == 400
    assert client.get("/admin/billing/download/?period=2026-10&dialect=xlsx").status_code == 400


def test_package_grid_shows_prices_in_the_users_language(login_as, client, make_package):
    package = make_package(code="CRM", name="CRM", rank=1, price=Decimal("10253.00"))
    login_as("staff")
    assert "10\xa0253,00\xa0kr" in page(client.get("/admin/packages/"))
    assert "10\xa0253,00\xa0kr" in page(client.get(f"/admin/packages/details/?id={package.id}"))
    client.get("/language/en")
    refresh()  # the test client shares one application context, where Flask-Babel caches the locale
    text = page(client.get("/admin/packages/"))
    assert "NOK\xa010,253.00" in text and "10253.00" not in text
