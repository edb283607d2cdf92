"""Importer kunder, the service and the command: every row created, a duplicate (skipped) or refused with the reason
(the pages' preview and import are in tests/test_import_pages.py)."""

import io
import json

import pytest
from flask_babel import force_locale
from openpyxl import Workbook
from sqlalchemy import func, select

from extensions import db
from models import Client, OutboxMessage, Person
from services.client_import import HEADER, TEMPLATE_HEADER, import_clients
from services.registry import get_registry

ROWS = [
    ["914375916", "", "", "no", "Kari", "Nordmann", "kari@tollbugata.example", "", "daglig_leder"],  # created
    ["923456783", "", "", "no", "", "", "", "", ""],  # duplicate of an existing client
    ["123456789", "", "", "no", "", "", "", "", ""],  # invalid number
    ["974760673", "", "", "no", "", "", "", "", ""],  # valid, but not in the register
    ["", "Nystartet Kafé AS", "", "yes", "", "", "", "", ""],  # by hand
    ["", "Feil Demo AS", "", "kanskje", "", "", "", "", ""],  # bad demo value
    ["921000022", "", "", "no", "Ola", "Nordmann", "ikke-epost", "", "styreleder"],  # bad e-mail: nothing created
]
EXPECTED = ["created", "duplicate", "refused", "refused", "created", "refused", "refused"]


def csv_bytes(rows, delimiter=",", header=HEADER) -> bytes:
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in rows]
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


def as_dicts(rows) -> list[dict[str, str]]:
    return [dict(zip(HEADER, row, strict=True)) for row in rows]


def customer_names() -> set[str]:
    return set(db.session.scalars(select(Client.name).where(Client.is_internal.is_(False))))


def test_every_row_is_created_skipped_or_refused_with_the_reason(app, bureau, make_client):
    make_client(org_number="923456783", name="Nordlys Regnskap AS")
    with force_locale("en"):
        results = import_clients(db.session, bureau.id, as_dicts(ROWS), get_registry(app))
    db.session.commit()
    assert [str(r.status) for r in results] == EXPECTED
    assert [r.row for r in results] == list(range(2, 2 + len(ROWS)))
    messages = [r.message for r in results]
    assert messages[1] == "Already a client: Nordlys Regnskap AS."
    assert messages[2] == "123456789 is not a valid organisation number."
    assert messages[3] == "974760673 is not in the company register."
    assert messages[5] == "demo: must be ja or nei, not kanskje."
    assert "ikke-epost" in messages[6]
    assert customer_names() == {"Nordlys Regnskap AS", "TOLLBUGATA 17 OSLO AS", "Nystartet Kafé AS"}
    assert db.session.scalar(select(func.count()).select_from(Person).where(Person.email == "ikke-epost")) == 0
    tollbugata = db.session.scalar(select(Client).where(Client.org_number == "914375916"))
    assert results[0].target_id == tollbugata.id and results[1].target_id is not None
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1  # Tollbugata's consent request


def test_a_dry_run_reports_the_same_and_keeps_nothing(app, bureau, make_client):
    make_client(org_number="923456783", name="Nordlys Regnskap AS")
    preview = import_clients(db.session, bureau.id, as_dicts(ROWS), get_registry(app), dry_run=True)
    db.session.rollback()
    assert customer_names() == {"Nordlys Regnskap AS"}
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert all(r.target_id is None for r in preview if str(r.status) == "created")
    results = import_clients(db.session, bureau.id, as_dicts(ROWS), get_registry(app))
    assert [str(r.status) for r in preview] == [str(r.status) for r in results] == EXPECTED


def test_rows_repeating_a_client_in_the_file_are_duplicates(app, bureau):
    rows = [
        ["914375916", "", "", "nei", "", "", "", "", ""],
        ["914 375 916", "", "", "nei", "", "", "", "", ""],
        ["", "Kafé AS", "", "nei", "", "", "", "", ""],
        ["", "KAFÉ AS", "", "ja", "", "", "", "", ""],
    ]
    with force_locale("en"):
        results = import_clients(db.session, bureau.id, as_dicts(rows), get_registry(app), dry_run=True)
    assert [str(r.status) for r in results] == ["created", "duplicate", "created", "duplicate"]
    assert results[1].message == "The same client as row 2." and results[3].message == "The same client as row 4."


@pytest.mark.parametrize("kind", ["csv", "csv-semicolon", "xlsx", "norwegian"])
def test_command_prints_the_report_and_skips_duplicates_the_second_time(runner, tmp_path, bureau, make_client, kind):
    make_client(org_number="923456783")
    path = tmp_path / ("kunder.xlsx" if kind == "xlsx" else "kunder.csv")
    path.write_bytes(
        {
            "csv": lambda: csv_bytes(ROWS),
            "csv-semicolon": lambda: csv_bytes(ROWS, ";"),
            "xlsx": lambda: xlsx_bytes(ROWS),
            "norwegian": lambda: csv_bytes(ROWS, ";", TEMPLATE_HEADER),
        }[kind]()
    )
    result = runner.invoke(args=["clients", "import", str(path), "--bureau", bureau.org_number])
    report = json.loads(result.stdout)
    assert [r["status"] for r in report] == EXPECTED
    assert [r["row"] for r in report] == list(range(2, 2 + len(ROWS)))
    assert all(set(r) == {"row", "status", "message"} for r in report)
    assert result.exit_code == 1
    created = customer_names()

    again = runner.invoke(args=["clients", "import", str(path), "--bureau", bureau.org_number])
    assert [r["status"] for r in json.loads(again.stdout)] == [
        "duplicate" if status == "created" else status for status in EXPECTED
    ]
    assert customer_names() == created


def test_command_exits_zero_without_refusals_and_a_dry_run_keeps_nothing(runner, tmp_path, bureau, make_client):
    make_client(org_number="923456783")
    good = tmp_path / "gode.xlsx"
    good.write_bytes(xlsx_bytes([ROWS[1], ["921000030", "", "", "no", "", "", "", "", ""]]))
    dry = runner.invoke(args=["clients", "import", str(good), "--bureau", bureau.org_number, "--dry-run"])
    assert dry.exit_code == 0 and [r["status"] for r in json.loads(dry.stdout)] == ["duplicate", "created"]
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.org_number == "921000030")) == 0
    result = runner.invoke(args=["clients", "import", str(good), "--bureau", bureau.org_number])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in json.loads(result.stdout)] == ["duplicate", "created"]
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.org_number == "921000030")) == 1


def test_command_with_register_down(app, runner, tmp_path, bureau, make_client):
    app.config["BRREG_BASE_URL"] = "http://127.0.0.1:9"
    make_client(org_number="923456783")
    path = tmp_path / "k.csv"
    path.write_bytes(csv_bytes([ROWS[0], ROWS[1], ROWS[4]]))
    result = runner.invoke(args=["clients", "import", str(path), "--bureau", bureau.org_number])
    report = json.loads(result.stdout)
    # a client the bureau has is a duplicate even when the register cannot be asked
    assert [r["status"] for r in report] == ["refused", "duplicate", "created"]
    assert "register" in report[0]["message"].lower() or "registeret" in report[0]["message"].lower()
    assert result.exit_code == 1


def test_command_refuses_a_wrong_header(runner, tmp_path, bureau):
    path = tmp_path / "feil.csv"
    path.write_bytes(b"orgnr,navn,farge\r\n1,x,y\r\n")
    result = runner.invoke(args=["clients", "import", str(path), "--bureau", bureau.org_number])
    assert result.exit_code == 1 and "kundemal" in result.output and "farge" in result.output
