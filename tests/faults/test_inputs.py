"""Every input against the column it goes to (services/inputs.py): on purpose-built and generic forms, the people
rows of the Personer tab, the imports and, as a last net, every flush. A Norwegian message, nothing saved."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Client, OutboxMessage, Package, Person, PersonKind
from services import client_import, person_import
from services.errors import DomainError
from services.inputs import InvalidInput, cell_problems, cleaned, single_line
from services.tabular import read_table
from tests.faults.test_database_lost import NEW_CLIENT
from tests.fixtures.imports import upload_and_import

CONTROL = "kontrolltegn"
TOO_LONG = "tegn lang; høyst"


def count(model, *where) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- the rules --------------------------------------------------------------------------------------------------


def test_the_rules_read_the_column_type():
    name, address, rank, price = (
        Person.__table__.c.first_name,
        Client.__table__.c.business_address_lines,
        Package.__table__.c.rank,
        Package.__table__.c.price,
    )
    assert cleaned("Kari\r\n  Bcc: x@y.no\t", name, "Fornavn") == "Kari Bcc: x@y.no "
    assert cleaned("Gate 1\r\n0150 Oslo", address, "Adresse") == "Gate 1\r\n0150 Oslo"  # Text keeps its lines
    assert cleaned("x" * 100, name, "Fornavn") == "x" * 100
    for value, column in [("x" * 101, name), ("a\x00b", name), ("a\x1bb", address), ("x" * 5001, address)]:
        with pytest.raises(InvalidInput):
            cleaned(value, column, "Felt")
    assert cleaned(2**31 - 1, rank, "Rang") == 2**31 - 1
    for value, column in [(2**31, rank), (-(2**31) - 1, rank), (Decimal("1e8"), price), (Decimal("NaN"), price)]:
        with pytest.raises(InvalidInput):
            cleaned(value, column, "Tall")
    assert single_line("a\u2028b\x85c") == "a b c"


def test_a_refusal_is_norwegian(app, client):
    with app.test_request_context():
        with pytest.raises(InvalidInput) as caught:
            cleaned("x" * 101, Person.__table__.c.first_name, "Fornavn")
        assert str(caught.value) == "Fornavn er 101 tegn lang; høyst 100 er tillatt."
        with pytest.raises(InvalidInput) as caught:
            cleaned("a\x00", Person.__table__.c.first_name, "Fornavn")
        assert str(caught.value) == "Fornavn inneholder et kontrolltegn (for eksempel NUL); fjern det."


# --- purpose-built forms ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Kafé\x00 AS", CONTROL),
        ("name", "x" * 201, TOO_LONG),
        ("contact_first_name", "x" * 101, TOO_LONG),
        ("contact_phone", "9" * 31, TOO_LONG),
        ("contact_email", "kari\x00@tapt.example", CONTROL),
        ("business_address_lines", "x" * 5001, TOO_LONG),
        ("org_number", "97476\x000673", CONTROL),
        ("template", "\x00", CONTROL),
    ],
)
def test_new_client_refuses_what_its_columns_cannot_hold(login_as, client, field, value, message):
    login_as("staff")
    response = client.post("/admin/clients/new/", data={**NEW_CLIENT, field: value})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and message in body
    assert count(Client, Client.is_internal.is_(False)) == 0 and count(OutboxMessage) == 0


def test_line_breaks_leave_one_line_fields_and_never_reach_an_email(login_as, client):
    """CR/LF in the client's name (and the contact's) become a space: the consent e-mail's subject and text hold
    the name on one line."""
    login_as("staff")
    data = {**NEW_CLIENT, "name": "Linje\r\nBcc: x@example.no AS", "contact_last_name": "Nord\nmann"}
    assert client.post("/admin/clients/new/", data=data).status_code == 302
    created = db.session.scalar(select(Client).where(Client.is_internal.is_(False)))
    assert created.name == "Linje Bcc: x@example.no AS"
    assert created.contact_person.last_name == "Nord mann"
    message = db.session.scalar(select(OutboxMessage))
    assert "\n" not in message.subject and "\r" not in message.subject
    assert "Linje Bcc: x@example.no AS" in message.body_text


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"first_name": "x" * 101, "last_name": "Nordmann"}, TOO_LONG),
        ({"first_name": "Kari", "last_name": "Nord\x00mann"}, CONTROL),
        ({"first_name": "Kari", "last_name": "Nordmann", "phone": "9" * 31}, TOO_LONG),
        ({"first_name": "Kari", "last_name": "Nordmann", "email": "k\x00@x.no"}, CONTROL),
    ],
)
def test_people_rows_of_the_personer_tab_are_checked(login_as, client, make_client, row, message):
    login_as("staff")
    customer = make_client()
    response = client.post(f"/admin/clients/people/add/person/?id={customer.id}", data=row)
    assert message in response.get_data(as_text=True)
    assert count(Person, Person.client_id == customer.id) == 0


def test_a_people_row_with_line_breaks_is_kept_on_one_line(login_as, client, make_client):
    login_as("staff")
    customer = make_client()
    row = {"first_name": "Kari\r\n", "last_name": "Nord\r\nmann", "phone": "+47\n999"}
    assert client.post(f"/admin/clients/people/add/person/?id={customer.id}", data=row).status_code == 302
    person = db.session.scalar(select(Person).where(Person.client_id == customer.id))
    assert (person.first_name, person.last_name, person.phone) == ("Kari", "Nord mann", "+47 999")


def test_the_login_form_takes_no_control_characters(client, login_as):
    response = client.post("/login", data={"email": "a\x00@b.no", "password": "x"})
    assert response.status_code == 200 and CONTROL in response.get_data(as_text=True)


# --- Flask-Admin's generic forms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("first_name", "x" * 101, TOO_LONG), ("phone", "9" * 31, TOO_LONG), ("last_name", "a\x00", CONTROL)],
)
def test_generic_edit_refuses_what_sqlite_would_store(
    login_as, client, make_client, make_person, field, value, message
):
    """SQLite stores a 101-character name in a String(100) without a word; the form refuses it on both engines."""
    login_as("staff")
    person = make_person(make_client(), PersonKind.PERSON, first_name="Før")
    data = {"first_name": "Før", "last_name": "Kundesen", "email": "", "phone": "", "version_check": "1", field: value}
    response = client.post(f"/admin/persons/edit/?id={person.id}", data=data)
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    stored = db.session.get(Person, person.id)
    assert (stored.first_name, stored.version) == ("Før", 1)


def test_generic_edit_strips_line_breaks(login_as, client, make_client, make_person):
    login_as("staff")
    person = make_person(make_client(), PersonKind.PERSON, first_name="Før")
    data = {"first_name": "Ny\r\nlinje", "last_name": "Kundesen", "email": "", "phone": "", "version_check": "1"}
    assert client.post(f"/admin/persons/edit/?id={person.id}", data=data).status_code == 302
    db.session.expire_all()
    assert db.session.get(Person, person.id).first_name == "Ny linje"


@pytest.mark.parametrize(("field", "value"), [("rank", str(2**31)), ("rank", str(2**63)), ("price", "1e12")])
def test_generic_create_refuses_numbers_beyond_the_column(login_as, client, field, value):
    login_as("admin")
    data = {"code": "STOR", "name": "Stor", "kind": "main", "rank": "1", "price": "100.00", field: value}
    response = client.post("/admin/packages/new/", data=data)
    assert response.status_code == 200
    assert count(Package, Package.code == "STOR") == 0


# --- the flush guard --------------------------------------------------------------------------------------------


def test_the_flush_guard_refuses_what_a_service_forgot(app, make_client):
    """A write that passed no form (a service, the CLI, the register's data) is refused before SQLite could store
    it; line breaks in one-line columns are made spaces there too."""
    customer = make_client()
    customer.name = "x" * 201
    with pytest.raises(DomainError):
        db.session.flush()
    db.session.rollback()
    customer.name = "To\r\nlinjer AS"
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Client, customer.id).name == "To linjer AS"


# --- imports ----------------------------------------------------------------------------------------------------


def _csv(header: list[str], *rows: list[str]) -> bytes:
    return "\r\n".join(",".join(row) for row in [header, *rows]).encode()


def test_duplicate_and_unknown_headers_are_refused_by_name():
    header = list(person_import.HEADER)
    with pytest.raises(DomainError, match="email"):
        read_table(_csv([*header, "email"]), "p.csv", person_import.HEADER)
    with pytest.raises(DomainError, match="favourite_colour"):
        read_table(_csv([*header, "favourite_colour"]), "p.csv", person_import.HEADER)


def test_import_cells_over_long_or_with_nul_are_row_errors(bureau, make_client):
    customer = make_client()
    good = {"org_number": customer.org_number, "kind": "person", "first_name": "Kari", "last_name": "Nordmann"}
    rows = [
        {**dict.fromkeys(person_import.HEADER, ""), **good},
        {**dict.fromkeys(person_import.HEADER, ""), **good, "first_name": "x" * 101},
        {**dict.fromkeys(person_import.HEADER, ""), **good, "last_name": "Nord\x00mann"},
        {**dict.fromkeys(person_import.HEADER, ""), **good, "org_number": "9\x00"},
    ]
    from datetime import date

    results = person_import.import_persons(db.session, bureau.id, rows, today=date.today())
    assert [str(r.status) for r in results] == ["created", "refused", "refused", "refused"]
    assert results[1].message.startswith("fornavn:") and TOO_LONG in results[1].message
    assert results[2].message.startswith("etternavn:") and CONTROL in results[2].message
    assert results[3].message.startswith("organisasjonsnummer:") and CONTROL in results[3].message
    db.session.commit()
    assert count(Person, Person.client_id == customer.id) == 1


def test_client_import_refuses_a_long_name_with_a_contact(login_as, client):
    """The issue's case: a ~300-character name with a contact e-mail (its consent subject outgrew its column)."""
    login_as("staff")
    header = list(client_import.HEADER)
    row = ["", "x" * 300, "", "no", "Kari", "Nordmann", "kari@lang.example", "", "daglig_leder"]
    nul = ["", "Null\x00 AS", "", "no", "", "", "", "", ""]
    crlf = ["", '"Linje\r\nskift AS"', "", "no", "", "", "", "", ""]  # quoted: a line break inside the cell
    response = upload_and_import(
        client, "/admin/clients/import/", None, None, "kunder.csv", _csv(header, row, nul, crlf)
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert TOO_LONG in body and CONTROL in body
    names = set(db.session.scalars(select(Client.name).where(Client.is_internal.is_(False))))
    assert names == {"Linje skift AS"} and count(OutboxMessage) == 0


def test_cell_problems_name_every_bad_cell():
    columns = client_import.CELL_COLUMNS
    problems = cell_problems({"name": "x" * 201, "contact_phone": "\x00", "demo": "ja\x07"}, columns)
    assert [p.split(":")[0] for p in problems] == ["name", "contact_phone", "demo"]
