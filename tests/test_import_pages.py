"""Both imports' pages: upload → preview of every row (nothing stored) → "Importer N rader" (stored once), a corrected
file uploaded again, a repeated or forged confirm, another bureau, staff and administrators."""

import io
from datetime import date, timedelta

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from extensions import db
from models import AuditEntry, Client, OutboxMessage, PackageKind, Person, PersonKind, SubmissionToken, UserStatus
from services import client_import, person_import
from tests.fixtures.imports import confirm, confirm_form, csv_bytes, statuses, upload

CLIENTS = "/admin/clients/import/"
LATER = (date.today() + timedelta(days=365)).strftime("%d.%m.%Y")

CLIENT_ROWS = [
    ["914375916", "", "", "nei", "Kari", "Nordmann", "kari@tollbugata.example", "", "daglig leder"],  # created
    ["923456783", "", "", "no", "", "", "", "", ""],  # already a client: duplicate
    ["123456789", "", "", "no", "", "", "", "", ""],  # invalid number
    ["974760673", "", "", "no", "", "", "", "", ""],  # valid, but not in the register
    ["", "Nystartet Kafé AS", "", "JA", "", "", "", "", ""],  # by hand
    ["", "nystartet kafé as", "", "ja", "", "", "", "", ""],  # the same client again: duplicate
    ["", "Feil Demo AS", "", "kanskje", "", "", "", "", ""],  # bad demo value
    ["921000022", "", "", "no", "Ola", "Nordmann", "ikke-epost", "", "styreleder"],  # bad e-mail: nothing created
]
CLIENT_EXPECTED = ["created", "duplicate", "refused", "refused", "created", "duplicate", "refused", "refused"]


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def customer_names() -> set[str]:
    return set(db.session.scalars(select(Client.name).where(Client.is_internal.is_(False))))


def xlsx_bytes(header, rows) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        sheet.append([int(v) if v.isdigit() else (v or None) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- Importer kunder --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "csv-semicolon", "xlsx", "norwegian-header"])
def test_client_import_previews_every_row_then_imports(login_as, client, make_client, kind):
    login_as("staff")
    make_client(org_number="923456783", name="Nordlys Regnskap AS")
    audited = count(AuditEntry, AuditEntry.entity == "clients")
    header = client_import.TEMPLATE_HEADER if kind == "norwegian-header" else client_import.HEADER
    data = {
        "csv": csv_bytes(header, CLIENT_ROWS),
        "csv-semicolon": csv_bytes(header, CLIENT_ROWS, ";"),
        "xlsx": xlsx_bytes(header, CLIENT_ROWS),
        "norwegian-header": csv_bytes(header, CLIENT_ROWS, ";"),
    }[kind]
    preview = upload(client, CLIENTS, header, CLIENT_ROWS, "kunder.xlsx" if kind == "xlsx" else "kunder.csv", data)
    assert preview.status_code == 200
    assert statuses(preview) == CLIENT_EXPECTED
    text = preview.get_data(as_text=True)
    assert "Blir opprettet" in text and "Duplikat (hoppes over)" in text and "Avvist" in text
    assert "Importer 2 rader" in text
    assert customer_names() == {"Nordlys Regnskap AS"} and count(OutboxMessage) == 0  # a preview keeps nothing
    assert count(AuditEntry, AuditEntry.entity == "clients") == audited  # … not even in the event log

    done = confirm(client, preview)
    assert done.status_code == 200 and statuses(done) == CLIENT_EXPECTED
    assert customer_names() == {"Nordlys Regnskap AS", "TOLLBUGATA 17 OSLO AS", "Nystartet Kafé AS"}
    tollbugata = db.session.scalar(select(Client).where(Client.org_number == "914375916"))
    assert tollbugata.business_city == "OSLO" and tollbugata.contact_person.first_name == "Kari"
    assert tollbugata.contact_role.value == "daglig_leder"
    assert count(OutboxMessage, OutboxMessage.client_id == tollbugata.id) == 1  # the consent request
    kafe = db.session.scalar(select(Client).where(Client.name == "Nystartet Kafé AS"))
    assert kafe.is_demo and kafe.org_number is None
    assert count(Person, Person.email == "ikke-epost") == 0


def test_client_import_of_a_corrected_file_skips_what_was_created(login_as, client, make_client):
    login_as("staff")
    make_client(org_number="923456783", name="Nordlys Regnskap AS")
    confirm(client, upload(client, CLIENTS, client_import.HEADER, CLIENT_ROWS))
    before = count(Client)
    corrected = [list(row) for row in CLIENT_ROWS]
    corrected[6][3] = "nei"
    corrected[7][6] = "ola@fjord.example"
    preview = upload(client, CLIENTS, client_import.HEADER, corrected)
    assert statuses(preview) == [
        "duplicate", "duplicate", "refused", "refused", "duplicate", "duplicate", "created", "created"
    ]  # fmt: skip
    done = confirm(client, preview)
    assert statuses(done) == statuses(preview)
    assert count(Client) == before + 2
    assert {"Feil Demo AS", "FJORDREGNSKAP AS"} <= customer_names()


def test_client_import_confirmed_twice_imports_once(login_as, client):
    login_as("staff")
    preview = upload(client, CLIENTS, client_import.HEADER, [CLIENT_ROWS[4]])
    first = confirm(client, preview)
    assert statuses(first) == ["created"]
    again = confirm(client, preview)
    assert again.status_code == 302 and again.headers["Location"].endswith("/admin/clients/")
    assert count(Client, Client.name == "Nystartet Kafé AS") == 1
    assert count(SubmissionToken) == 1


def test_client_import_confirm_cannot_be_forged(login_as, client, make_staff, bureau, login):
    login_as("staff")
    preview = upload(client, CLIENTS, client_import.HEADER, [CLIENT_ROWS[4]])
    _, fields = confirm_form(preview)
    forged = confirm(client, preview, upload="A" * 32)
    assert forged.status_code == 302 and forged.headers["Location"].endswith(CLIENTS)
    assert count(Client, Client.name == "Nystartet Kafé AS") == 0
    forged = confirm(client, preview, upload="../../etc/passwd")
    assert forged.status_code == 302 and count(Client, Client.name == "Nystartet Kafé AS") == 0

    client.post("/logout")
    login(make_staff(bureau))  # a colleague cannot import another user's upload, even with its key
    response = client.post(CLIENTS + "confirm/", data={"upload": fields["upload"], "previewed": "1,0,0"})
    assert response.status_code == 302
    assert count(Client, Client.name == "Nystartet Kafé AS") == 0
    assert "ikke lenger" in client.get(CLIENTS).get_data(as_text=True)


def test_client_import_says_when_the_data_changed_after_the_preview(login_as, client, make_client):
    login_as("staff")
    rows = [CLIENT_ROWS[0], CLIENT_ROWS[4]]
    preview = upload(client, CLIENTS, client_import.HEADER, rows)
    assert statuses(preview) == ["created", "created"]
    make_client(org_number="914375916", name="Tollbugata (lagt inn for hånd)")
    done = confirm(client, preview)
    assert statuses(done) == ["duplicate", "created"]
    text = done.get_data(as_text=True)
    assert "Dataene endret seg etter forhåndsvisningen" in text
    assert count(Client, Client.org_number == "914375916") == 1


def test_client_import_refuses_a_wrong_header_and_format(login_as, client):
    login_as("staff")
    response = upload(client, CLIENTS, None, None, "k.csv", b"orgnr,navn,farge\r\n914375916,x,bl\xc3\xa5\r\n")
    text = response.get_data(as_text=True)
    assert "kundemal" in text and "farge" in text and 'id="import-report"' not in text
    response = upload(client, CLIENTS, None, None, "k.pdf", b"x")
    assert ".csv" in response.get_data(as_text=True)
    assert customer_names() == set()


def test_client_import_template_has_norwegian_headers_and_imports_as_it_is(login_as, client):
    login_as("staff")
    response = client.get(CLIENTS + "template.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith("\ufeff".encode())
    assert ",".join(client_import.TEMPLATE_HEADER).encode() in response.data
    assert b"organisasjonsnummer,navn,kundemal,demo,kontaktperson fornavn" in response.data
    preview = upload(client, CLIENTS, None, None, "importer-kunder.csv", response.data)
    assert statuses(preview) == ["refused", "created"]  # 974760673 is not in the emulated register


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_client_import_for_staff_and_administrators(login_as, client, role):
    login_as(role)
    done = confirm(client, upload(client, CLIENTS, client_import.HEADER, [CLIENT_ROWS[4]]))
    assert statuses(done) == ["created"] and customer_names() == {"Nystartet Kafé AS"}


def test_client_import_confirm_needs_the_csrf_token(app, login_as, client):
    login_as("staff")
    preview = upload(client, CLIENTS, client_import.HEADER, [CLIENT_ROWS[4]])
    app.config["WTF_CSRF_ENABLED"] = True
    response = confirm(client, preview)
    assert response.status_code == 400 and customer_names() == set()


def test_client_import_pages_need_a_login(client):
    assert "/login" in client.get(CLIENTS).headers["Location"]
    response = client.post(CLIENTS + "confirm/", data={"upload": "x" * 32})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- Importer personer ------------------------------------------------------------------------------------------------


@pytest.fixture
def customers(make_client, make_person, make_package):
    make_package(code="BASIS")
    make_package(code="LONN", kind=PackageKind.ADDON)
    first, second = make_client(name="Alfa AS"), make_client(name="Beta AS")
    make_person(first, PersonKind.PERSON, first_name="Finnes", last_name="Fra Før", email="finnes@alfa.example")
    return first, second


def people_url(customer) -> str:
    return f"/admin/clients/people/import/?id={customer.id}"


def people_of(customer) -> set[str]:
    return set(db.session.scalars(select(Person.first_name).where(Person.client_id == customer.id)))


def person_rows(first, second) -> list[list[str]]:
    return [
        [first.org_number, "bruker", "Kari", "Nordmann", "kari@alfa.example", "", "basis", "LONN", "", "nei"],
        ["", "Ekstern bruker", "Per", "Revisor", "per@alfa.example", "", "", "", LATER, "ja"],
        ["", "person", "Finn", "Dobbel", "FINNES@alfa.example", "", "", "", "", ""],  # already on the client
        [second.org_number, "person", "Ola", "Nordmann", "", "", "", "", "", "nei"],  # another client
        ["", "ekstern bruker", "Uten", "Slutt", "uten@alfa.example", "", "", "", "", "nei"],  # needs an end date
        ["", "bruker uten pakker", "Gro", "Gyldig", "gro@alfa.example", "", "", "", "", "True"],
    ]


PERSON_EXPECTED = ["created", "created", "duplicate", "refused", "refused", "created"]


@pytest.mark.parametrize("header", ["code", "norwegian"])
def test_person_import_previews_then_imports_and_invites(login_as, client, customers, header):
    login_as("staff")
    first, second = customers
    columns = person_import.HEADER if header == "code" else person_import.TEMPLATE_HEADER
    preview = upload(client, people_url(first), columns, person_rows(first, second))
    assert statuses(preview) == PERSON_EXPECTED
    text = preview.get_data(as_text=True)
    assert f"organisasjonsnummer: {second.org_number} er ikke denne klienten" in text
    assert "Importer 3 rader" in text
    assert people_of(first) == {"Finnes"} and count(OutboxMessage) == 0

    done = confirm(client, preview)
    assert statuses(done) == PERSON_EXPECTED
    assert people_of(first) == {"Finnes", "Kari", "Per", "Gro"} and people_of(second) == set()
    per = db.session.scalar(select(Person).where(Person.first_name == "Per"))
    assert per.kind is PersonKind.EXTERNAL_USER and per.user.status is UserStatus.INVITED
    assert per.user.end_date == date.today() + timedelta(days=365)
    gro = db.session.scalar(select(Person).where(Person.first_name == "Gro"))
    invitations = db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.kind == "invitation"))
    assert sorted(invitations) == ["gro@alfa.example", "per@alfa.example"]
    assert gro.kind is PersonKind.USER_WITHOUT_PACKAGES


def test_person_import_of_a_corrected_file_adds_only_the_corrected_rows(login_as, client, customers):
    login_as("staff")
    first, second = customers
    rows = person_rows(first, second)
    confirm(client, upload(client, people_url(first), person_import.HEADER, rows))
    rows[3][0] = ""
    rows[4][8] = LATER
    preview = upload(client, people_url(first), person_import.HEADER, rows)
    assert statuses(preview) == ["duplicate", "duplicate", "duplicate", "created", "created", "duplicate"]
    done = confirm(client, preview)
    assert statuses(done) == statuses(preview)
    assert people_of(first) == {"Finnes", "Kari", "Per", "Gro", "Ola", "Uten"}
    assert count(OutboxMessage, OutboxMessage.kind == "invitation") == 2  # nobody invited twice


def test_person_import_confirmed_twice_imports_once(login_as, client, customers):
    login_as("staff")
    first, second = customers
    preview = upload(client, people_url(first), person_import.HEADER, person_rows(first, second))
    confirm(client, preview)
    again = confirm(client, preview)
    assert again.status_code == 302 and f"id={first.id}" in again.headers["Location"]
    assert count(Person, Person.client_id == first.id) == 4
    assert count(OutboxMessage, OutboxMessage.kind == "invitation") == 2


def test_person_import_of_another_bureaus_client_is_not_found(login_as, client, customers, make_bureau, make_client):
    login_as("staff")
    first, second = customers
    foreign = make_client(bureau=make_bureau())
    assert client.get(people_url(foreign)).status_code == 404
    rows = [["", "person", "A", "B", "", "", "", "", "", "nei"]]
    assert upload(client, people_url(foreign), person_import.HEADER, rows).status_code == 404
    preview = upload(client, people_url(first), person_import.HEADER, rows)
    action, fields = confirm_form(preview)
    response = client.post(action.replace(f"id={first.id}", f"id={foreign.id}"), data=fields)
    assert response.status_code == 404
    # the key of an upload for one client does not import it into another of the bureau
    response = client.post(action.replace(f"id={first.id}", f"id={second.id}"), data=fields)
    assert response.status_code == 302 and people_of(second) == set()
    assert people_of(foreign) == set() and people_of(first) == {"Finnes"}


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_person_import_for_staff_and_administrators(login_as, client, customers, role):
    login_as(role)
    first, second = customers
    done = confirm(client, upload(client, people_url(first), person_import.HEADER, person_rows(first, second)))
    assert statuses(done) == PERSON_EXPECTED and people_of(first) == {"Finnes", "Kari", "Per", "Gro"}


def test_person_import_page_tells_the_new_rules_and_offers_the_template(login_as, client, customers):
    login_as("staff")
    first, _ = customers
    tab = client.get(f"/admin/clients/manage/?id={first.id}&tab=people").get_data(as_text=True)
    assert people_url(first) in tab
    text = client.get(people_url(first)).get_data(as_text=True)
    assert "ingen av dem" not in text and "hoppes over som duplikater" in text
    assert ";".join(person_import.TEMPLATE_HEADER) in text
    response = client.get(f"/admin/clients/people/import/template.csv?id={first.id}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert b"organisasjonsnummer,type,fornavn,etternavn,e-post" in response.data


def test_a_preview_with_nothing_to_import_offers_no_button(login_as, client, customers):
    login_as("staff")
    first, second = customers
    preview = upload(client, people_url(first), person_import.HEADER, person_rows(first, second)[2:4])
    assert statuses(preview) == ["duplicate", "refused"]
    text = preview.get_data(as_text=True)
    assert 'id="import-confirm"' not in text and "Det er ingenting å importere." in text
