"""Importer personer: every row checked and reported by row and column, each row on its own; service and command
(the pages' preview and import are in tests/test_import_pages.py)."""

import io
import json
from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from openpyxl import Workbook
from sqlalchemy import func, select

from extensions import db
from models import OutboxMessage, PackageKind, Person, PersonKind, UserStatus
from services.person_import import HEADER, import_persons

LATER = (date.today() + timedelta(days=365)).isoformat()


@pytest.fixture
def catalogue(make_package):
    return {
        "BASIS": make_package(code="BASIS"),
        "LONN": make_package(code="LONN", kind=PackageKind.ADDON),
        "BANK": make_package(code="BANK", kind=PackageKind.ADDON),
        "GAMMEL": make_package(code="GAMMEL", active=False),
    }


@pytest.fixture
def clients(make_client, make_person, catalogue):
    first, second = make_client(name="Alfa AS"), make_client(name="Beta AS")
    make_person(second, PersonKind.PERSON, first_name="Finnes", email="finnes@beta.example")
    return first, second


def mixed_rows(first, second) -> list[list[str]]:
    a, b = first.org_number, second.org_number
    return [
        [a, "user", "Kari", "Nordmann", "Kari@Alfa.example", "+47 99999999", "basis", "lonn|BANK", "", "no"],
        [a, "external_user", "Per", "Revisor", "per@alfa.example", "", "BASIS", "", LATER, "yes"],
        [a, "person", "Ola", "Nordmann", "", "", "", "", "", "no"],
        [a, "superuser", "Nils", "Feil", "nils@alfa.example", "", "", "", "", "no"],
        [a, "user", "Eva", "Feil", "ikke-epost", "", "", "", "31.12.2030", "kanskje"],
        [a, "user", "Anne", "Feil", "anne@alfa.example", "", "UKJENT", "GAMMEL|BASIS", "", "no"],
        [a, "user", "Kari", "Kopi", "kari@alfa.example", "", "", "", "", "no"],
        ["974760673", "user", "Ukjent", "Kunde", "u@kunde.example", "", "", "", "", "no"],
        [b, "user", "Finn", "Dobbel", "finnes@beta.example", "", "", "", "", "no"],
        [b, "user_without_packages", "Gro", "Gyldig", "gro@beta.example", "", "", "", "", "yes"],
    ]


EXPECTED = [
    "created",
    "created",
    "created",
    "refused",
    "refused",
    "refused",
    "duplicate",
    "refused",
    "duplicate",
    "created",
]
INVITED = {3, 11}


def as_dicts(rows) -> list[dict[str, str]]:
    return [dict(zip(HEADER, row, strict=True)) for row in rows]


def csv_bytes(rows, delimiter=",") -> bytes:
    lines = [delimiter.join(HEADER)] + [delimiter.join(row) for row in rows]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def xlsx_bytes(rows) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(HEADER))
    for row in rows:
        cells = []
        for column, value in zip(HEADER, row, strict=True):
            if column == "org_number" and value.isdigit():
                cells.append(int(value))
            elif column == "end_date" and value == LATER:
                cells.append(date.fromisoformat(value))  # a real date cell
            else:
                cells.append(value or None)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def people_of(client) -> set[str]:
    return set(db.session.scalars(select(Person.first_name).where(Person.client_id == client.id)))


def test_rows_are_checked_and_reported_by_row_and_column(bureau, clients):
    first, second = clients
    with force_locale("en"):
        results = import_persons(db.session, bureau.id, as_dicts(mixed_rows(first, second)), today=date.today())
    assert not db.session.new  # nothing of a refused row is left pending in the session
    db.session.commit()
    assert [r.row for r in results] == list(range(2, 12))
    assert [str(r.status) for r in results] == EXPECTED
    assert {r.row for r in results if r.invited} == INVITED
    messages = {r.row: r.message for r in results}
    assert messages[5].startswith("type: superuser")
    assert "e-post: ikke-epost" in messages[6] and "inviter: must be ja or nei, not kanskje" in messages[6]
    assert "sluttdato" not in messages[6]  # 31.12.2030 is a Norwegian date
    assert "hovedpakke: " in messages[7] and "UKJENT" in messages[7]
    assert "tilleggspakker: the package GAMMEL is no longer sold" in messages[7]
    assert "tilleggspakker: BASIS is a main package" in messages[7]
    assert messages[8] == "The same person as row 2."
    assert messages[9].startswith("organisasjonsnummer: 974760673")
    assert messages[10] == "Already on Beta AS: Finnes Kundesen."

    assert people_of(first) == {"Kari", "Per", "Ola"}
    assert people_of(second) == {"Finnes", "Gro"}  # rows are independent: a refused row stops no other
    kari = db.session.scalar(select(Person).where(Person.first_name == "Kari"))
    assert kari.email == "kari@alfa.example" and kari.phone == "+47 99999999"
    assert {a.package.code for a in kari.user.assignments} == {"BASIS", "LONN", "BANK"}
    per = db.session.scalar(select(Person).where(Person.first_name == "Per"))
    assert per.user.end_date == date.today() + timedelta(days=365) and per.user.status is UserStatus.INVITED
    gro = db.session.scalar(select(Person).where(Person.first_name == "Gro"))
    outbox = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "invitation").order_by(OutboxMessage.id)
    ).all()
    assert [(m.recipient, m.related) for m in outbox] == [
        ("per@alfa.example", f"user:{per.user.id}"),
        ("gro@beta.example", f"user:{gro.user.id}"),
    ]


def test_a_dry_run_reports_the_same_and_keeps_nothing(bureau, clients):
    first, second = clients
    rows = as_dicts(mixed_rows(first, second))
    with force_locale("en"):
        preview = import_persons(db.session, bureau.id, rows, today=date.today(), dry_run=True)
        db.session.rollback()
        assert people_of(first) == set() and db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        results = import_persons(db.session, bureau.id, rows, today=date.today())
    assert [str(r.status) for r in preview] == [str(r.status) for r in results] == EXPECTED
    assert {r.row for r in preview if r.invited} == INVITED


def test_importing_again_skips_what_was_added_and_adds_the_corrected_rows(bureau, clients):
    first, second = clients
    b = second.org_number
    rows = [
        [b, "ekstern bruker", "Uten", "Slutt", "uten@beta.example", "", "", "", "", "nei"],  # needs an end date
        [b, "bruker", "", "", "navnlos@beta.example", "", "", "", "", "nei"],  # needs a name
        [b, "bruker", "Gro", "Gyldig", "gro@beta.example", "", "BASIS", "", "", "JA"],
        [first.org_number, "Person uten bruker", "Kari", "Nordmann", "", "", "", "", "", ""],
    ]
    with force_locale("en"):
        results = import_persons(db.session, bureau.id, as_dicts(rows), today=date.today())
    db.session.commit()
    assert [str(r.status) for r in results] == ["refused", "refused", "created", "created"]
    assert results[0].message == "An external user needs an end date."
    assert results[1].message == "Give the person's first and last name."
    assert people_of(second) == {"Finnes", "Gro"} and people_of(first) == {"Kari"}
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1

    rows[0][8] = LATER
    rows[1][2:4] = ["Navn", "Satt"]
    with force_locale("en"):
        again = import_persons(db.session, bureau.id, as_dicts(rows), today=date.today())
    db.session.commit()
    assert [str(r.status) for r in again] == ["created", "created", "duplicate", "duplicate"]
    assert people_of(second) == {"Finnes", "Gro", "Uten", "Navn"} and people_of(first) == {"Kari"}
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1  # Gro is not invited twice


@pytest.mark.parametrize("kind", ["csv", "csv-semicolon", "xlsx"])
def test_command_prints_the_report_as_json(runner, tmp_path, bureau, clients, kind):
    first, second = clients
    rows = mixed_rows(first, second)
    path = tmp_path / ("personer.xlsx" if kind == "xlsx" else "personer.csv")
    path.write_bytes({"csv": csv_bytes(rows), "csv-semicolon": csv_bytes(rows, ";"), "xlsx": xlsx_bytes(rows)}[kind])
    result = runner.invoke(args=["persons", "import", str(path), "--bureau", bureau.org_number])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert all(set(r) == {"row", "status", "message"} | ({"invited"} if r["row"] in INVITED else set()) for r in report)
    assert [r["status"] for r in report] == EXPECTED
    assert [r["row"] for r in report] == list(range(2, 12))
    assert people_of(first) == {"Kari", "Per", "Ola"} and people_of(second) == {"Finnes", "Gro"}

    again = runner.invoke(args=["persons", "import", str(path), "--bureau", bureau.org_number])
    assert [r["status"] for r in json.loads(again.stdout)] == [
        "duplicate" if status == "created" else status for status in EXPECTED
    ]
    assert people_of(first) == {"Kari", "Per", "Ola"} and people_of(second) == {"Finnes", "Gro"}


def test_command_dry_run_keeps_nothing(runner, tmp_path, bureau, clients):
    first, second = clients
    path = tmp_path / "personer.csv"
    path.write_bytes(csv_bytes(mixed_rows(first, second)))
    result = runner.invoke(args=["persons", "import", str(path), "--bureau", bureau.org_number, "--dry-run"])
    assert [r["status"] for r in json.loads(result.stdout)] == EXPECTED
    assert people_of(first) == set() and people_of(second) == {"Finnes"}
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_command_exits_zero_when_every_row_is_imported(runner, tmp_path, bureau, clients):
    first, second = clients
    path = tmp_path / "gode.xlsx"
    path.write_bytes(
        xlsx_bytes(
            [
                [first.org_number, "user", "Kari", "Nordmann", "kari@alfa.example", "", "BASIS", "", "", "no"],
                [second.org_number, "person", "Ola", "Nordmann", "", "", "", "", "", ""],
            ]
        )
    )
    result = runner.invoke(args=["persons", "import", str(path), "--bureau", bureau.org_number])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in json.loads(result.stdout)] == ["created", "created"]


def test_command_refuses_a_wrong_header_and_an_unknown_bureau(runner, tmp_path, bureau):
    path = tmp_path / "feil.csv"
    path.write_bytes(b"orgnr,navn\r\n1,x\r\n")
    result = runner.invoke(args=["persons", "import", str(path), "--bureau", bureau.org_number])
    assert result.exit_code == 1 and "organisasjonsnummer" in result.output and "navn" in result.output
    result = runner.invoke(args=["persons", "import", str(path), "--bureau", "000000000"])
    assert result.exit_code == 2 and "--bureau" in result.output


def test_invitation_arrives_over_smtp(runner, tmp_path, bureau, clients, smtp):
    first, _ = clients
    path = tmp_path / "inviter.csv"
    path.write_bytes(
        csv_bytes([[first.org_number, "user", "Kari", "Nordmann", "kari@alfa.example", "", "BASIS", "", "", "yes"]])
    )
    result = runner.invoke(args=["persons", "import", str(path), "--bureau", bureau.org_number])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["status"] == "created" and json.loads(result.stdout)[0]["invited"] is True
    kari = db.session.scalar(select(Person).where(Person.email == "kari@alfa.example"))
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.related == f"user:{kari.user.id}"))
    assert message is not None and message.recipient == "kari@alfa.example" and message.kind == "invitation"
    sent = runner.invoke(args=["outbox", "send"])
    assert sent.exit_code == 0 and json.loads(sent.output)["sent"] == 1
    [mail] = smtp.received
    assert mail["To"] == "kari@alfa.example"
    assert "http://testserver/" in mail.get_body(preferencelist=("plain",)).get_content()


def test_anonymous_is_sent_to_login(client, clients):
    first, _ = clients
    response = client.get(f"/admin/clients/people/import/?id={first.id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
