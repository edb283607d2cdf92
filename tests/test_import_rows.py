"""The import row classifier's parts: Norwegian values and headers, every status, hostile cells."""

from datetime import date, timedelta

import pytest
from flask_babel import force_locale

from extensions import db
from models import ContactRole, PersonKind
from services import client_import, person_import
from services.errors import DomainError
from services.import_rows import ImportCounts, RowResult, RowStatus, choose, load_upload, save_upload, yes_no
from services.registry import get_registry
from tests.fixtures.imports import csv_bytes


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("ja", True), ("JA", True), (" Ja ", True), ("yes", True), ("true", True), ("TRUE", True), ("1", True),
        ("nei", False), ("Nei", False), ("no", False), ("false", False), ("0", False), ("", False), (None, False),
        ("kanskje", None), ("2", None), ("ja nei", None), ("\x00", None),
    ],
)  # fmt: skip
def test_yes_no_in_norwegian_and_english(text, value):
    assert yes_no(text) is value


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("bruker", PersonKind.USER),
        ("Bruker", PersonKind.USER),
        ("user", PersonKind.USER),
        ("ekstern bruker", PersonKind.EXTERNAL_USER),
        ("Ekstern  Bruker", PersonKind.EXTERNAL_USER),
        ("external_user", PersonKind.EXTERNAL_USER),
        ("ekstern bruker med tilgangspakker", PersonKind.EXTERNAL_USER),
        ("bruker uten pakker", PersonKind.USER_WITHOUT_PACKAGES),
        ("bruker uten tilgangspakker", PersonKind.USER_WITHOUT_PACKAGES),
        ("user_without_packages", PersonKind.USER_WITHOUT_PACKAGES),
        ("person", PersonKind.PERSON),
        ("Person uten bruker", PersonKind.PERSON),
        ("reseller_user", None),  # bureau users are added on the Personer tab
        ("bruker knyttet til forhandler", None),
        ("superuser", None),
    ],
)
def test_person_kinds_by_code_or_norwegian_name(text, kind):
    assert choose(text, person_import.KIND_NAMES) is kind


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("daglig leder", ContactRole.CEO),
        ("Daglig Leder", ContactRole.CEO),
        ("daglig_leder", ContactRole.CEO),
        ("styreleder", ContactRole.CHAIR),
        ("Styrets leder", ContactRole.CHAIR),
        ("ceo", None),
    ],
)
def test_contact_roles_by_code_or_norwegian_name(text, role):
    assert choose(text, client_import.CONTACT_ROLES) is role


def test_norwegian_dates_and_iso_dates():
    assert person_import.parse_date("31.12.2030") == date(2030, 12, 31)
    assert person_import.parse_date("1.2.2030") == date(2030, 2, 1)
    assert person_import.parse_date("2030-12-31") == date(2030, 12, 31)
    for bad in ("31.02.2030", "2030-13-01", "31/12/2030", "12.31.2030", "i morgen", "99999-01-01"):
        assert person_import.parse_date(bad) is None


@pytest.mark.parametrize("reader", [client_import.read_rows, person_import.read_rows])
def test_headers_in_norwegian_or_code_names_in_any_case(reader):
    module = client_import if reader is client_import.read_rows else person_import
    for header in (module.HEADER, module.TEMPLATE_HEADER, [h.upper() for h in module.TEMPLATE_HEADER]):
        rows = reader(csv_bytes(header, [["974760673"] + [""] * (len(header) - 1)]), "f.csv")
        assert list(rows[0]) == list(module.HEADER) and rows[0]["org_number"] == "974760673"
    mixed = list(module.HEADER)
    mixed[0] = "Org.nr."
    assert reader(csv_bytes(mixed, [[""] * len(mixed)]), "f.csv") == []  # blank rows are left out


def test_a_header_naming_a_column_twice_in_two_languages_is_refused():
    header = [*person_import.HEADER, "fornavn"]
    with pytest.raises(DomainError, match="first_name"):
        person_import.read_rows(csv_bytes(header, []), "f.csv")


def test_hostile_cells_are_refused_by_their_column(app, bureau, make_client):
    rows = [
        {**dict.fromkeys(client_import.HEADER, ""), "name": "x" * 300},
        {**dict.fromkeys(client_import.HEADER, ""), "name": "Null\x00 AS"},
        {**dict.fromkeys(client_import.HEADER, ""), "name": "Greit AS", "demo": "ja\x00"},
        {**dict.fromkeys(client_import.HEADER, ""), "org_number": "9" * 400},
        {**dict.fromkeys(client_import.HEADER, ""), "name": '=HYPERLINK("http://x")', "demo": "nei"},
        {**dict.fromkeys(client_import.HEADER, ""), "name": "Rolle AS", "contact_role": "'; DROP TABLE clients"},
    ]
    with force_locale("en"):
        results = client_import.import_clients(db.session, bureau.id, rows, get_registry(app), dry_run=True)
    assert [str(r.status) for r in results] == ["refused", "refused", "refused", "refused", "created", "refused"]
    assert results[0].message.startswith("navn: is 300 characters long")
    assert results[1].message.startswith("navn: contains a control character")
    assert results[2].message.startswith("demo: contains a control character")
    assert "is not a valid organisation number" in results[3].message
    assert results[5].message.startswith("kontaktperson rolle: must be daglig leder or styreleder")


def test_person_rows_with_hostile_cells_are_refused(bureau, make_client):
    customer = make_client()
    base = {**dict.fromkeys(person_import.HEADER, ""), "org_number": customer.org_number, "kind": "person"}
    rows = [
        {**base, "first_name": "A" * 500, "last_name": "B"},
        {**base, "first_name": "A", "last_name": "B\x00"},
        {**base, "first_name": "A", "last_name": "B", "kind": "bruker\x07"},
        {**base, "first_name": "A", "last_name": "B", "org_number": "\x00"},
        {**base, "first_name": "A", "last_name": "B", "end_date": "9" * 60},
        {**base, "first_name": "A", "last_name": "B", "invite": "ja"},  # a person without user is not invited
        {**base, "first_name": "Lang\nlinje", "last_name": "B"},  # a line break becomes a space
    ]
    with force_locale("en"):
        results = person_import.import_persons(db.session, bureau.id, rows, today=date.today(), dry_run=True)
    assert [str(r.status) for r in results] == ["refused"] * 6 + ["created"]
    assert results[0].message.startswith("fornavn: is 500 characters long")
    assert "etternavn: contains a control character" in results[1].message
    assert "type: contains a control character" in results[2].message
    assert "organisasjonsnummer: contains a control character" in results[3].message
    assert "sluttdato:" in results[4].message
    assert results[5].message == "inviter: a person without user cannot be invited: use nei."
    assert results[6].message == "Lang linje B will be added."


def test_a_person_row_without_email_is_a_duplicate_by_name(bureau, make_client, make_person):
    customer = make_client()
    make_person(customer, PersonKind.PERSON, first_name="Ola", last_name="Nordmann", email=None)
    later = (date.today() + timedelta(days=30)).isoformat()
    base = dict.fromkeys(person_import.HEADER, "")
    rows = [
        {**base, "kind": "person", "first_name": "ola", "last_name": "NORDMANN"},
        {**base, "kind": "person", "first_name": "Kari", "last_name": "Nordmann"},
        {**base, "kind": "Person", "first_name": "Kari", "last_name": "Nordmann"},
        {**base, "kind": "ekstern bruker", "first_name": "Kari", "last_name": "Nordmann", "email": "k@x.example",
         "end_date": later},
    ]  # fmt: skip
    with force_locale("en"):
        results = person_import.import_persons(
            db.session, bureau.id, rows, only_client=customer, today=date.today(), dry_run=True
        )
    assert [str(r.status) for r in results] == ["duplicate", "created", "duplicate", "created"]
    assert results[0].message == f"Already on {customer.name}: Ola Nordmann."
    assert results[2].message == "The same person as row 3."


def test_counts_and_json_of_the_results():
    results = [
        RowResult(2, RowStatus.CREATED, "a", 1, invited=True),
        RowResult(3, RowStatus.CREATED, "b"),
        RowResult(4, RowStatus.DUPLICATE, "c"),
        RowResult(5, RowStatus.REFUSED, "d"),
    ]
    assert ImportCounts.of(results) == ImportCounts(created=2, duplicate=1, refused=1, invited=1)
    assert results[0].to_json() == {"row": 2, "status": "created", "message": "a", "invited": True}
    assert results[3].to_json() == {"row": 5, "status": "refused", "message": "d"}


def test_a_kept_upload_is_read_only_by_its_owner(tmp_path):
    owner = {"user": 1, "bureau": 1, "kind": "clients", "client": None}
    key = save_upload(str(tmp_path), owner=owner, filename="k.csv", rows=[{"name": "A"}])
    assert load_upload(str(tmp_path), key, owner=owner) == ("k.csv", [{"name": "A"}])
    for other in ({**owner, "user": 2}, {**owner, "bureau": 2}, {**owner, "kind": "persons"}, {**owner, "client": 5}):
        with pytest.raises(DomainError):
            load_upload(str(tmp_path), key, owner=other)
    for bad in ("", None, "../" + key, key + "/..", "x" * 10, "a" * 100):
        with pytest.raises(DomainError):
            load_upload(str(tmp_path), bad, owner=owner)
