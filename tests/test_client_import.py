"""Bulk create from a spreadsheet: per-row report, nothing half-created, CSV and XLSX, page and command."""

import io
import json

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from extensions import db
from models import Client, OutboxMessage, Person
from services.client_import import HEADER

ROWS = [
    ["914375916", "", "", "no", "Kari", "Nordmann", "kari@tollbugata.example", "", "daglig_leder"],  # created
    ["923456783", "", "", "no", "", "", "", "", ""],  # duplicate of an existing client
    ["123456789", "", "", "no", "", "", "", "", ""],  # invalid number
    ["974760673", "", "", "no", "", "", "", "", ""],  # valid, but not in the register
    ["", "Nystartet Kafé AS", "", "yes", "", "", "", "", ""],  # by hand
    ["", "Feil Demo AS", "", "kanskje", "", "", "", "", ""],  # bad demo value
    ["921000022", "", "", "no", "Ola", "Nordmann", "ikke-epost", "", "styreleder"],  # bad e-mail: nothing created
]
EXPECTED = ["created", "duplicate", "invalid_number", "not_found", "created", "invalid", "invalid"]


def csv_bytes(rows, delimiter=",") -> bytes:
    lines = [delimiter.join(HEADER)] + [delimiter.join(row) for row in rows]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def xlsx_bytes(rows) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(HEADER))
    for row in rows:
        sheet.append([int(v) if v.isdigit() else (v or None) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["csv", "csv-semicolon", "xlsx"])
def test_import_page_reports_every_row(login_as, client, make_client, kind):
    login_as("staff")
    make_client(org_number="923456783", name="Nordlys Regnskap AS")
    data = {"csv": csv_bytes(ROWS), "csv-semicolon": csv_bytes(ROWS, ";"), "xlsx": xlsx_bytes(ROWS)}[kind]
    filename = "kunder.xlsx" if kind == "xlsx" else "kunder.csv"
    response = client.post(
        "/admin/clients/import/", data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data"
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'id="import-report"' in text
    assert text.count("<tr class=") == len(ROWS)
    names = set(db.session.scalars(select(Client.name)))
    assert {"TOLLBUGATA 17 OSLO AS", "Nystartet Kafé AS"} <= names
    assert "FJORDREGNSKAP AS" not in names  # the row with a bad e-mail created nothing
    assert db.session.scalar(select(func.count()).select_from(Person).where(Person.email == "ikke-epost")) == 0
    tollbugata = db.session.scalar(select(Client).where(Client.org_number == "914375916"))
    assert tollbugata.business_city == "OSLO" and tollbugata.contact_person.first_name == "Kari"
    assert (
        db.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.client_id == tollbugata.id)
        )
        == 1
    )
    kafe = db.session.scalar(select(Client).where(Client.name == "Nystartet Kafé AS"))
    assert kafe.is_demo and kafe.org_number is None


def test_import_refuses_wrong_header_and_format(login_as, client):
    login_as("staff")
    bad_header = b"orgnr,navn\r\n914375916,x\r\n"
    response = client.post(
        "/admin/clients/import/", data={"file": (io.BytesIO(bad_header), "k.csv")}, content_type="multipart/form-data"
    )
    assert "org_number" in response.get_data(as_text=True)
    response = client.post(
        "/admin/clients/import/", data={"file": (io.BytesIO(b"x"), "k.pdf")}, content_type="multipart/form-data"
    )
    assert ".csv" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.is_internal.is_(False))) == 0


def test_template_download(login_as, client):
    login_as("staff")
    response = client.get("/admin/clients/import/template.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith("\ufeff".encode()) and ",".join(HEADER).encode() in response.data


def test_import_command_prints_report_and_exit_status(runner, tmp_path, bureau, make_client):
    make_client(org_number="923456783")
    mixed = tmp_path / "kunder.csv"
    mixed.write_bytes(csv_bytes(ROWS))
    result = runner.invoke(args=["clients", "import", str(mixed), "--bureau", bureau.org_number])
    report = json.loads(result.stdout)
    assert [r["status"] for r in report] == EXPECTED
    assert [r["row"] for r in report] == list(range(2, 2 + len(ROWS)))
    assert all(set(r) == {"row", "status", "message"} for r in report)
    assert result.exit_code == 1

    good = tmp_path / "gode.xlsx"
    good.write_bytes(xlsx_bytes([ROWS[1], ["921000030", "", "", "no", "", "", "", "", ""]]))
    result = runner.invoke(args=["clients", "import", str(good), "--bureau", bureau.org_number])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in json.loads(result.stdout)] == ["duplicate", "created"]


def test_import_command_with_register_down(app, runner, tmp_path, bureau):
    app.config["BRREG_BASE_URL"] = "http://127.0.0.1:9"
    path = tmp_path / "k.csv"
    path.write_bytes(csv_bytes([ROWS[0], ROWS[4]]))
    result = runner.invoke(args=["clients", "import", str(path), "--bureau", bureau.org_number])
    assert [r["status"] for r in json.loads(result.stdout)] == ["registry_unavailable", "created"]
    assert result.exit_code == 1
