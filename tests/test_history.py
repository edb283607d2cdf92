"""The change history as a bureau reads it: the formatter, the labels written with each entry, the client page's
history, and the event log (Hendelseslogg) with its filters and export, scoped to the bureau."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import flask
import flask_babel
from sqlalchemy import select

from admin_views import history as history_view
from extensions import db
from models import AuditEntry, Client, ContactRole, StaffRole
from services.audit import acting_as
from services.clients import NewClient, create_client
from services.history_format import format_history, format_moment
from tests.test_grid_filters import _filter_index
from tests.test_migrations import empty_database_url  # noqa: F401 - the fixture

BODO_ORG = "910000012"
INTERNAL_NAMES = ("consent_nonce", "bureau_id", "registry_checked_at", "_id", "invitation_nonce", "password_hash")


def entry(bureau_id: int, changes: dict[str, Any], **overrides: Any) -> AuditEntry:
    values = {
        "bureau_id": bureau_id,
        "actor_label": "Ola Ansatt",
        "action": "update",
        "entity": "clients",
        "entity_id": 1,
        "changes": changes,
        "at": datetime(2026, 12, 1, 13, 3, tzinfo=UTC),
    }
    values.update(overrides)
    return AuditEntry(**values)


def formatted(app, bureau_id: int, *entries: AuditEntry, locale: str = "no"):
    with app.test_request_context():
        flask.session["locale"] = locale
        flask_babel.refresh()
        return format_history(db.session, list(entries), bureau_id=bureau_id)


def texts(row) -> list[str]:
    return [change.text(row.action) for change in row.changes]


def make_bodo(bureau, make_staff) -> tuple[Client, Any]:
    """ "Bodø Bygg AS" made as "+ Ny kunde" makes it (contact person, consent asked), then changed a little."""
    staff = make_staff(bureau, StaffRole.STAFF, first_name="Ola")
    with acting_as(staff):
        client = create_client(
            db.session,
            bureau.id,
            NewClient(
                name="Bodø Bygg AS",
                org_number=BODO_ORG,
                contact_first_name="Kari",
                contact_last_name="Nordmann",
                contact_email="kari@bodobygg.example",
                contact_role=ContactRole.CEO,
                business_country_code="NO",
            ),
        )
        db.session.commit()
        client.company_lookup_enabled = True
        client.registry_checked_at = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
        db.session.commit()
    return client, staff


# --- the formatter ----------------------------------------------------------------------------


def test_fields_are_labelled_and_values_shown_as_the_ui_shows_them(
    app, bureau, make_client, make_person, make_template
):
    client = make_client()
    person = make_person(client, first_name="Kari", last_name="Nordmann")
    template = make_template(name="Svensk kundemal")
    row = formatted(
        app,
        bureau.id,
        entry(
            bureau.id,
            {
                "org_number": {"from": None, "to": "910000012"},
                "is_demo": {"from": False, "to": True},
                "contact_person_id": {"from": None, "to": person.id},
                "template_id": {"from": None, "to": template.id},
                "consent_status": {"from": "pending", "to": "given"},
                "contact_role": {"from": None, "to": "daglig_leder"},
                "business_country_code": {"from": None, "to": "SE"},
                "language": {"from": "nb", "to": "sv"},
            },
        ),
    )[0]
    lines = texts(row)
    assert "Organisasjonsnummer: – → 910000012" in lines
    assert "Demo: Nei → Ja" in lines
    assert "Kontaktperson: – → Kari Nordmann" in lines
    assert "Kundemal: – → Svensk kundemal" in lines
    assert "Samtykke (GDPR): Venter på samtykke → Samtykke gitt" in lines
    assert any(line.startswith("Kontaktpersonens rolle: – → Daglig leder") for line in lines), lines
    assert any("Sverige" in line for line in lines), lines
    assert "Språk: Norsk → Svensk" in lines
    joined = " ".join(lines)
    assert "pending" not in joined and "daglig_leder" not in joined and "True" not in joined


def test_times_are_shown_in_oslo_in_the_users_format(app, bureau):
    winter = entry(bureau.id, {"registry_checked_at": {"from": None, "to": "2026-12-01T13:03:00+00:00"}})
    summer = entry(bureau.id, {"consent_at": {"from": None, "to": "2026-07-01 12:00:00"}})  # SQLite: naive UTC
    first, second = formatted(app, bureau.id, winter, summer)
    assert first.at == "01.12.2026 14:03"
    assert texts(first) == ["Sist kontrollert mot Brønnøysundregistrene: – → 01.12.2026 14:03"]
    assert texts(second) == ["Samtykke besvart: – → 01.07.2026 14:00"]
    english = formatted(app, bureau.id, winter, locale="en")[0]
    assert english.at == "12/1/26 2:03\u202fPM" or english.at == "12/1/26 2:03 PM"
    assert texts(english)[0].startswith("Last checked against the company register")


def test_secrets_are_never_shown(app, bureau):
    row = formatted(
        app,
        bureau.id,
        entry(
            bureau.id,
            {
                "consent_nonce": {"from": "old-nonce-abc", "to": "new-nonce-xyz"},
                "some_token": {"from": None, "to": "tok-123"},
            },
        ),
        entry(bureau.id, {"invitation_nonce": {"from": "***", "to": None}}, entity="users"),
    )
    joined = " ".join(texts(row[0]) + texts(row[1]))
    assert "old-nonce-abc" not in joined and "new-nonce-xyz" not in joined and "tok-123" not in joined
    assert "Samtykkelenke: (endret)" in joined
    assert "Invitasjonslenke: (fjernet)" in joined


def test_internal_and_unknown_fields(app, bureau):
    row = formatted(
        app,
        bureau.id,
        entry(
            bureau.id,
            {
                "bureau_id": {"from": None, "to": 3},
                "version": {"from": 1, "to": 2},
                "mystery_id": {"from": None, "to": 9},
                "new_shiny_flag": {"from": None, "to": "x"},
            },
        ),
    )[0]
    assert texts(row) == ["New shiny flag: – → x"]


def test_a_reference_to_another_bureaus_record_is_not_named(app, bureau, make_bureau, make_client, make_person):
    elsewhere = make_person(make_client(bureau=make_bureau()), first_name="Hemmelig", last_name="Person")
    row = formatted(app, bureau.id, entry(bureau.id, {"contact_person_id": {"from": None, "to": elsewhere.id}}))[0]
    assert texts(row) == ["Kontaktperson: – → (slettet eller ukjent)"]


def test_format_moment_takes_both_spellings(app):
    with app.test_request_context():
        assert format_moment("2026-01-15T08:00:00") == "15.01.2026 09:00"
        assert format_moment(datetime(2026, 1, 15, 8, 0)) == "15.01.2026 09:00"


# --- labels written with each entry ----------------------------------------------------------


def test_each_entry_names_its_record_and_client_even_after_deletion(
    app, bureau, make_staff, make_person, make_user, make_package, assign
):
    client, staff = make_bodo(bureau, make_staff)
    user = make_user(client, person=make_person(client, first_name="Per", last_name="Hansen"))
    assign(user, make_package(name="Prosjekt"))
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.client_id == client.id)).all()
    labels = {(e.entity, e.record_label) for e in entries}
    assert ("clients", "Bodø Bygg AS (910000012)") in labels
    assert ("persons", "Kari Nordmann") in labels
    assert ("users", "Per Hansen") in labels
    assert ("package_assignments", "Prosjekt – Per Hansen") in labels
    assert {e.client_label for e in entries} == {"Bodø Bygg AS (910000012)"}
    # The consent link's nonce is not kept in the history.
    nonce = client.consent_nonce
    assert nonce and all(nonce not in str(e.changes) for e in entries)

    person = user.person
    with acting_as(staff):
        db.session.delete(person)
        db.session.commit()
    deleted = db.session.scalar(select(AuditEntry).where(AuditEntry.entity == "persons", AuditEntry.action == "delete"))
    assert deleted.record_label == "Per Hansen" and deleted.client_id == client.id


def page_text(html: str) -> str:
    """The page's text without tags (attributes and scripts included in the check are what a reader never sees)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split()).replace(" :", ":")


# --- pages ---------------------------------------------------------------------------------------


def test_client_page_history_is_readable(client, login, bureau, make_staff):
    record, staff = make_bodo(bureau, make_staff)
    login(staff)
    page = client.get(f"/admin/clients/manage/?id={record.id}").get_data(as_text=True)
    history = page_text(page[page.index('id="history"') :])
    for name in INTERNAL_NAMES:
        assert name not in history, name
    assert record.consent_nonce not in page
    assert "Bedriftsoppslag: Nei → Ja" in history
    assert "Kari Nordmann" in history and "Opprettet" in history


def test_oversikt_shows_the_latest_changes_and_the_history_tab_all(client, login, bureau, make_staff):
    record, staff = make_bodo(bureau, make_staff)
    with acting_as(staff):
        for n in range(12):
            record.phone = f"9000000{n:02d}"
            db.session.commit()
    login(staff)
    overview = page_text(client.get(f"/admin/clients/manage/?id={record.id}").get_data(as_text=True))
    assert overview.count("Telefon:") == 10 and "Vis hele historikken" in overview
    whole = page_text(client.get(f"/admin/clients/manage/?id={record.id}&tab=history").get_data(as_text=True))
    assert whole.count("Telefon:") == 12 and "Opprettet · Klienter: Bodø Bygg AS (910000012)" in whole
    people = client.get(f"/admin/clients/manage/?id={record.id}&tab=people").get_data(as_text=True)
    assert 'id="history"' not in people


def test_event_log_names_records_after_archiving_and_hides_internals(client, login, bureau, make_staff):
    record, staff = make_bodo(bureau, make_staff)
    login(staff)
    answer = client.post(f"/admin/clients/archive/{record.id}/archive/")
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.get(Client, record.id).archived_at is not None
    page = page_text(client.get("/admin/auditlog/").get_data(as_text=True))
    assert "Bodø Bygg AS (910000012)" in page
    for name in INTERNAL_NAMES:
        assert name not in page, name
    assert "Arkivert: – →" in page


def _export(client, **args) -> tuple[list[str], list[list[str]], bytes]:
    answer = client.get("/admin/auditlog/export/", query_string=args)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    data = answer.get_data()
    text = data.decode("utf-8-sig")
    delimiter = ";" if args.get("dialect", "excel-no") == "excel-no" else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    return rows[0], rows[1:], data


def test_export_has_norwegian_headers_in_both_dialects(client, login, bureau, make_staff):
    record, staff = make_bodo(bureau, make_staff)
    login(staff)
    header, rows, data = _export(client, dialect="excel-no")
    assert data.startswith("\ufeff".encode()) and header == [
        "Når",
        "Hvem",
        "Hva",
        "Oppføringstype",
        "Oppføring",
        "Klient",
        "Endringer",
    ]
    assert any(row[4] == "Bodø Bygg AS (910000012)" and "Bedriftsoppslag: Nei → Ja" in row[6] for row in rows)
    assert all(record.consent_nonce not in cell for row in rows for cell in row)
    header, standard_rows, data = _export(client, dialect="standard")
    assert not data.startswith("\ufeff".encode()) and header[0] == "Når" and len(standard_rows) == len(rows)


def test_event_log_filters_by_who_what_client_and_period(app, client, login, bureau, make_staff, make_client):
    record, staff = make_bodo(bureau, make_staff)
    other = make_client(name="Annen Kunde AS", org_number=None)
    db.session.add_all(
        [
            entry(
                bureau.id,
                {"phone": {"from": None, "to": "1"}},
                entity_id=other.id,
                record_label="Annen Kunde AS",
                client_id=other.id,
                client_label="Annen Kunde AS",
                actor_label="Åse Ansatt",
                at=datetime(2020, 11, 30, 23, 30, tzinfo=UTC),
            ),  # 1 December in Oslo
            entry(
                bureau.id,
                {"phone": {"from": "1", "to": "2"}},
                entity_id=other.id,
                record_label="Annen Kunde AS",
                client_id=other.id,
                client_label="Annen Kunde AS",
                actor_label="Åse Ansatt",
                at=datetime(2020, 11, 30, 22, 30, tzinfo=UTC),
            ),  # 30 November in Oslo
        ]
    )
    db.session.commit()
    login(staff)

    def rows(**filters) -> list[list[str]]:
        args = {"dialect": "standard"}
        for name, value in filters.items():
            label, _sep, operation = name.partition(":")
            with app.test_request_context():  # the operations' names are translated within a request
                index = _filter_index(app, "auditlog", label, operation=operation or None)
            args[f"flt{len(args)}_{index}"] = value
        return _export(client, **args)[1]

    def records(**filters) -> list[str]:
        return [row[4] for row in rows(**filters)]

    assert set(records(Klient="Bodø")) == {"Bodø Bygg AS (910000012)", "Kari Nordmann"}
    assert set(records(Klient="Annen")) == {"Annen Kunde AS"}
    assert set(records(Hvem="åse")) == {"Annen Kunde AS"}
    assert {row[2] for row in rows(Hva="create")} == {"Opprettet"}
    assert {row[2] for row in rows(Hva="update")} == {"Endret"}
    people = rows(Oppføringstype="persons")
    assert {row[3] for row in people} == {"Personer"} and "Kari Nordmann" in [row[4] for row in people]
    assert records(**{"Periode:mellom": "2020-12-01 to 2020-12-01"}) == ["Annen Kunde AS"]
    assert records(**{"Periode:til og med": "2020-11-30"}) == ["Annen Kunde AS"]


def test_staff_never_see_or_export_another_bureaus_entries(
    app, client, login, bureau, make_bureau, make_staff, make_client
):
    other_bureau = make_bureau()
    foreign = make_client(bureau=other_bureau, name="Fremmed Firma AS")
    with acting_as(None, "Fremmed ansatt"):
        foreign.phone = "99999999"
        db.session.commit()
    own, staff = make_bodo(bureau, make_staff)
    login(staff)
    page = client.get("/admin/auditlog/").get_data(as_text=True)
    assert "Fremmed" not in page
    client_index = _filter_index(app, "auditlog", "Klient")
    id_index = _filter_index(app, "auditlog", "Oppførings-ID")
    for args in (
        {},
        {f"flt0_{client_index}": "Fremmed"},
        {f"flt0_{id_index}": str(foreign.id)},
        {"search": "Fremmed"},
    ):
        for dialect in ("excel-no", "standard"):
            answer = client.get("/admin/auditlog/export/", query_string={**args, "dialect": dialect})
            assert answer.status_code == 200
            assert "Fremmed" not in answer.get_data(as_text=True), args


def test_an_export_too_long_is_refused_not_cut(client, login, bureau, make_staff, monkeypatch):
    make_bodo(bureau, make_staff)
    monkeypatch.setattr(history_view, "EXPORT_MAX_ROWS", 2)
    login(make_staff(bureau, StaffRole.STAFF))
    answer = client.get("/admin/auditlog/export/?dialect=standard")
    assert answer.status_code == 302 and "/admin/auditlog/" in answer.headers["Location"]
    assert "avgrens filtrene" in client.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_hostile_dialect_or_filter_is_no_error(client, login, bureau, make_staff):
    make_bodo(bureau, make_staff)
    login(make_staff(bureau, StaffRole.STAFF))
    for query in ("dialect=%00", "dialect=xlsx", "flt0_99=x", "flt0_4=not-a-date", "sort=99", "search=%00"):
        answer = client.get(f"/admin/auditlog/export/?{query}")
        assert answer.status_code == 200, query


# --- the migration labels the entries written before it ------------------------------------------


def test_the_migration_labels_old_entries_and_hides_their_nonces(empty_database_url):  # noqa: F811
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True, "SECRET_KEY": "x" * 40})
    with app.app_context():
        try:
            upgrade(revision="a4f2c8d1e9b3")
            with db.engine.begin() as conn:
                statements = [
                    "INSERT INTO bureaus (id, org_number, name, version, created_at)"
                    " VALUES (1, '974760673', 'B', 1, CURRENT_TIMESTAMP)",
                    "INSERT INTO clients (id, bureau_id, name, org_number, is_internal, is_demo,"
                    " company_lookup_enabled, custom_invoice_email_enabled, version, created_at)"
                    " VALUES (5, 1, 'Bodø Bygg AS', '910000012', false, false, false, false, 1, CURRENT_TIMESTAMP)",
                    "INSERT INTO persons (id, bureau_id, client_id, kind, first_name, last_name, email, version,"
                    " created_at) VALUES (7, 1, 5, 'person', 'Kari', 'Nordmann', NULL, 1, CURRENT_TIMESTAMP)",
                ]
                for statement in statements:
                    conn.execute(text(statement))
                conn.execute(
                    text(
                        "INSERT INTO audit_entries (bureau_id, at, actor_label, action, entity, entity_id, changes,"
                        " version) VALUES (1, CURRENT_TIMESTAMP, 'x', :action, :entity, :entity_id, :changes, 1)"
                    ),
                    [
                        {
                            "action": "update",
                            "entity": "clients",
                            "entity_id": 5,
                            "changes": '{"consent_nonce": {"from": null, "to": "secret-nonce-1"}}',
                        },
                        {"action": "create", "entity": "persons", "entity_id": 7, "changes": "{}"},
                        {"action": "delete", "entity": "persons", "entity_id": 99, "changes": "{}"},
                    ],
                )
            upgrade()
            with db.engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT entity_id, record_label, client_id, client_label, changes FROM audit_entries"
                        " ORDER BY id"
                    )
                ).all()
            by_id = {row[0]: row for row in rows}
            assert by_id[5][1:4] == ("Bodø Bygg AS (910000012)", 5, "Bodø Bygg AS (910000012)")
            assert by_id[7][1:4] == ("Kari Nordmann", 5, "Bodø Bygg AS (910000012)")
            assert by_id[99][1:4] == (None, None, None)  # deleted before the migration: nothing to read it from
            assert "secret-nonce-1" not in str(by_id[5][4]) and "***" in str(by_id[5][4])
        finally:
            db.session.remove()
            db.engine.dispose()


def test_invoice_texts_read_as_languages_and_subjects(app, bureau):
    old_style = entry(
        bureau.id,
        {"invoice_email_texts": {"from": "{}", "to": "{'nb': {'subject': 'Faktura {InvoiceNumber}', 'body': 'x'}}"}},
    )
    new_style = entry(
        bureau.id, {"invoice_email_texts": {"from": {}, "to": {"en": {"subject": "Invoice", "body": "y"}}}}
    )
    hostile = entry(bureau.id, {"invoice_email_texts": {"from": None, "to": "{__import__('os')}"}})
    rows = formatted(app, bureau.id, old_style, new_style, hostile)
    assert texts(rows[0]) == ["Tekster for fakturaepost: – → Norsk: Faktura {InvoiceNumber}"]
    assert texts(rows[1]) == ["Tekster for fakturaepost: – → Engelsk: Invoice"]
    assert texts(rows[2]) == ["Tekster for fakturaepost: – → {__import__('os')}"]
