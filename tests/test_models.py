"""Rules the database itself enforces, whatever code writes the row."""

from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from extensions import db
from models import Client, PackageKind, PersonKind, User
from services.errors import integrity_message


@pytest.fixture(autouse=True)
def english_messages(app):
    """Messages are asserted in English here; the Norwegian ones are checked in test_admin."""
    with force_locale("en"):
        yield


def _refused(statement, **params) -> IntegrityError:
    with pytest.raises(IntegrityError) as info:
        db.session.execute(text(statement), params)
        db.session.flush()
    db.session.rollback()
    return info.value


@pytest.mark.parametrize("number", ["123456789", "12345678", "97476067A", "974760674"])
def test_org_number_check_digit_is_enforced(bureau, number):
    error = _refused(
        "INSERT INTO clients (bureau_id, name, org_number, is_internal, is_demo, company_lookup_enabled,"
        " custom_invoice_email_enabled, version, created_at) VALUES (:b, 'X', :n, false, false, false, false, 1,"
        " CURRENT_TIMESTAMP)",
        b=bureau.id,
        n=number,
    )
    assert "organisasjonsnummer" in integrity_message(error).lower() or "organisation number" in integrity_message(
        error
    )


def test_valid_org_number_is_accepted(make_client):
    assert make_client(org_number="974760673").org_number == "974760673"


def test_org_number_unique_per_bureau_not_globally(make_client, make_bureau):
    make_client(org_number="974760673")
    other = make_bureau()
    make_client(org_number="974760673", bureau=other)  # another bureau may hold the same company
    with pytest.raises(IntegrityError) as info:
        make_client(org_number="974760673")
    db.session.rollback()
    assert "organisation number" in integrity_message(info.value)


def test_demo_flag_can_never_be_cleared(make_client):
    client = make_client(is_demo=True)
    with pytest.raises(IntegrityError) as info:
        db.session.execute(update(Client).where(Client.id == client.id).values(is_demo=False))
    db.session.rollback()
    assert "demo" in integrity_message(info.value)
    db.session.execute(update(Client).where(Client.id == client.id).values(name="Fortsatt demo"))
    db.session.commit()
    assert db.session.get(Client, client.id).is_demo is True


def test_only_one_main_package_at_a_time(make_client, make_user, make_package, assign):
    user = make_user(make_client())
    crm, project = make_package(), make_package(rank=2)
    addon = make_package(kind=PackageKind.ADDON)
    assign(user, crm, date(2026, 1, 1), date(2026, 3, 31))
    assign(user, addon, date(2026, 1, 1))  # add-ons on top are fine
    assign(user, project, date(2026, 4, 1))  # back to back is fine
    with pytest.raises(IntegrityError) as info:
        assign(user, crm, date(2026, 3, 31), date(2026, 4, 30))
    db.session.rollback()
    assert "main package" in integrity_message(info.value)


def test_external_user_needs_end_date(make_client, make_person):
    person = make_person(make_client(), PersonKind.EXTERNAL_USER)
    with pytest.raises(IntegrityError) as info:
        db.session.add(User(bureau_id=person.bureau_id, person=person, end_date=None))
        db.session.commit()
    db.session.rollback()
    assert "end date" in integrity_message(info.value)


def test_user_kind_always_matches_person_kind(make_client, make_person, make_user):
    user = make_user(make_client(), PersonKind.USER)
    assert user.person_kind is PersonKind.USER
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE users SET person_kind = 'external_user' WHERE id = :id"), {"id": user.id})
        db.session.flush()
    db.session.rollback()


def test_person_without_user_cannot_get_a_login(make_client, make_person):
    person = make_person(make_client(), PersonKind.PERSON)
    with pytest.raises(IntegrityError):
        db.session.add(User(bureau_id=person.bureau_id, person=person))
        db.session.commit()
    db.session.rollback()


def test_person_client_must_be_in_same_bureau(make_client, make_bureau, make_person):
    other_bureau = make_bureau()
    foreign_client = make_client(bureau=other_bureau)
    with pytest.raises(IntegrityError):
        db.session.execute(
            text(
                "INSERT INTO persons (bureau_id, client_id, kind, first_name, last_name, email, version, created_at)"
                " VALUES (:b, :c, 'person', 'A', 'B', NULL, 1, CURRENT_TIMESTAMP)"
            ),
            {"b": other_bureau.id - 1 if other_bureau.id > 1 else other_bureau.id + 1, "c": foreign_client.id},
        )
        db.session.flush()
    db.session.rollback()


def test_version_counter_detects_lost_update(app, make_client):
    client = make_client()
    assert client.version == 1
    # Someone else's save, which this session does not see in its loaded object.
    db.session.execute(
        update(Client).where(Client.id == client.id).values(version=Client.version + 1),
        execution_options={"synchronize_session": False},
    )
    client.name = "Min endring"
    with pytest.raises(StaleDataError):
        db.session.flush()
    db.session.rollback()


def test_every_table_has_a_version_column(app):
    for table in db.metadata.sorted_tables:
        assert "version" in table.c, table.name


def test_end_date_in_past_allowed_in_database_for_existing_external(make_client, make_user):
    # The database only demands an end date; "not in the past" is a form rule for new users.
    user = make_user(make_client(), PersonKind.EXTERNAL_USER, end_date=date.today() - timedelta(days=1))
    assert user.end_date < date.today()
