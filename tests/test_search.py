"""The one search service (services/search.py): its rules, its indexes kept in step, its plans, and every grid search
box and ajax picker that uses it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, text

from extensions import db
from models import AuditEntry, Client, Person, PersonKind, User, UserStatus
from models.search import CLIENTS, DOCUMENTS, PERSONS
from services import search
from services.outbox import enqueue_email


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def found(searchable: search.Searchable, text_: str, bureau) -> set[int]:
    criterion = search.search_criterion(db.session, searchable, text_, bureau_id=bureau.id)
    query = db.session.query(searchable.model.id)
    return {row.id for row in (query.filter(criterion) if criterion is not None else query)}


def spaced(org_number: str) -> str:
    return f"{org_number[:3]} {org_number[3:6]} {org_number[6:]}"


# --- the rules ------------------------------------------------------------------------------------


def test_search_words_keep_what_users_type():
    assert search.search_words("  Ola\tNORDMANN  ola ") == ["ola", "nordmann"]
    assert search.search_words("923 456 783") == ["923456783"]
    assert search.search_words("Bygg 2 AS") == ["bygg", "as"]
    assert search.search_words("by\x00gg") == ["bygg"]
    assert search.search_words("ÆRLIG Økonomi") == ["ærlig", "økonomi"]
    assert search.search_words("50%_") == ["50%_"]
    assert search.search_words("") == [] and search.search_words(None) == [] and search.search_words("\x00 ") == []
    assert len(search.search_words(" ".join(f"w{i}" for i in range(50)))) == search.MAX_WORDS


def test_short_words_match_the_start_of_a_word_or_column():
    assert search.needle("bygg") == "bygg"
    assert search.needle("by") == " by"
    assert search.needle("ab%") == " ab%" and search.search_words("a b% c ab") == ["ab"]
    assert search.like_pattern("ab%_\\c") == "%ab\\%\\_\\\\c%"
    assert search.search_words("Ola.Nordmann@fi ola-nordmann") == ["olanordmannfi", "olanordmann"]
    assert search.fts_query(['ab"c', "bygg"]) == '"ab""c" AND "bygg"'


def test_clients_are_found_by_fragment_case_org_number_and_literal_wildcards(bureau, make_bureau, make_client):
    honest = make_client(name="Ærlig Økonomi AS")
    builder = make_client(name="Bodø Bygg AS")
    percent = make_client(name="Prosent 50%_rabatt AS", org_number=None)
    other_bureau = make_client(name="Bodø Bygg AS", bureau=make_bureau())

    assert found(search.CLIENTS_BY_NAME, "ærlig", bureau) == {honest.id}
    assert found(search.CLIENTS_BY_NAME, "ØKONOMI", bureau) == {honest.id}
    assert found(search.CLIENTS_BY_NAME, "kONom", bureau) == {honest.id}
    assert found(search.CLIENTS_BY_NAME, "Bodø Bygg AS", bureau) == {builder.id}
    assert found(search.CLIENTS_BY_NAME, "bygg bodø", bureau) == {builder.id}
    assert found(search.CLIENTS_BY_NAME, "bygg ærlig", bureau) == set()
    assert found(search.CLIENTS_BY_NAME, "bygg", other_bureau.bureau) == {other_bureau.id}
    # org numbers: whole, typed with spaces, a fragment, the start
    assert found(search.CLIENTS_BY_NAME, honest.org_number, bureau) == {honest.id}
    assert found(search.CLIENTS_BY_NAME, spaced(honest.org_number), bureau) == {honest.id}
    fragment = honest.org_number[2:7]
    holders = {
        c.id for c in db.session.query(Client).filter_by(bureau_id=bureau.id) if fragment in (c.org_number or "")
    }
    assert honest.id in holders and found(search.CLIENTS_BY_NAME, fragment, bureau) == holders
    # % and _ are themselves
    assert found(search.CLIENTS_BY_NAME, "50%_r", bureau) == {percent.id}
    assert found(search.CLIENTS_BY_NAME, "pro_ent", bureau) == set()
    assert found(search.CLIENTS_BY_NAME, "pro%", bureau) == set()
    assert search.search_words("% @ ..") == []  # no letter or digit: nothing to search for
    # NUL dropped, nothing typed: no condition at all
    assert found(search.CLIENTS_BY_NAME, "bo\x00dø", bureau) == {builder.id}
    assert search.search_criterion(db.session, search.CLIENTS_BY_NAME, " \x00 ", bureau_id=bureau.id) is None
    # two characters: the start of a word; one: ignored
    assert found(search.CLIENTS_BY_NAME, "by", bureau) == {builder.id}
    assert found(search.CLIENTS_BY_NAME, "yg", bureau) == set()
    assert found(search.CLIENTS_BY_NAME, "øk", bureau) == {honest.id}
    assert search.search_criterion(db.session, search.CLIENTS_BY_NAME, "b", bureau_id=bureau.id) is None
    assert found(search.CLIENTS_BY_NAME, "zqxw", bureau) == set()


def test_people_and_users_are_found_by_name_email_and_client(bureau, make_bureau, make_client, make_user):
    shop = make_client(name="Tromsø Bakeri AS")
    other = make_client(name="Oslo Elektro AS")
    baker = make_user(shop, person=None)
    baker.person.first_name, baker.person.last_name, baker.person.email = "Øystein", "Ås", "oystein.aas@bakeri.example"
    clerk = make_user(other)
    clerk.person.first_name, clerk.person.last_name = "Kari", "Nordmann"
    db.session.commit()
    stranger = make_user(make_client(bureau=make_bureau(), name="Tromsø Bakeri AS"))
    stranger.person.first_name = "Øystein"
    db.session.commit()

    assert found(search.PERSONS_BY_NAME, "øystein", bureau) == {baker.person_id}
    assert found(search.PERSONS_BY_NAME, "ÅS", bureau) == {baker.person_id}
    assert found(search.PERSONS_BY_NAME, "aas@bak", bureau) == {baker.person_id}
    assert found(search.PERSONS_BY_NAME, "oysteinaas", bureau) == {baker.person_id}  # e-mail punctuation left out
    assert found(search.PERSONS_BY_NAME, "oystein-aas@bakeri", bureau) == {baker.person_id}
    assert found(search.PERSONS_BY_NAME, "kari nordmann", bureau) == {clerk.person_id}
    assert found(search.PERSONS_BY_NAME, "bakeri", bureau) == {baker.person_id}  # in the e-mail
    assert found(search.PERSONS_BY_NAME_OR_CLIENT, "tromsø bakeri", bureau) == {baker.person_id}
    assert found(search.PERSONS_BY_NAME_OR_CLIENT, "elektro", bureau) == {clerk.person_id}
    assert found(search.USERS_BY_NAME, "oystein.aas", bureau) == {baker.id}
    assert found(search.USERS_BY_NAME, "øy", bureau) == {baker.id}
    assert found(search.USERS_BY_NAME, "elektro", bureau) == set()


def test_results_are_bounded(bureau, make_client, monkeypatch):
    clients = [make_client(name=f"Likt Navn {n} AS").id for n in range(5)]
    assert found(search.CLIENTS_BY_NAME, "likt", bureau) == set(clients)
    monkeypatch.setattr(search, "CANDIDATE_LIMIT", 3)
    assert found(search.CLIENTS_BY_NAME, "likt", bureau) == set(sorted(clients)[:3])  # the first by id, every time


# --- the indexes stay in step ----------------------------------------------------------------------


def test_index_follows_insert_update_and_delete(dialect, bureau, make_client, make_person):
    customer = make_client(name="Gammelt Navn AS")
    person = make_person(customer, PersonKind.PERSON, first_name="Sigrid", last_name="Fjeld")
    assert found(search.CLIENTS_BY_NAME, "gammelt", bureau) == {customer.id}

    customer.name = "Nytt Navn AS"
    person.email = "sigrid@nytt.example"
    db.session.commit()
    assert found(search.CLIENTS_BY_NAME, "gammelt", bureau) == set()
    assert found(search.CLIENTS_BY_NAME, "nytt navn", bureau) == {customer.id}
    assert found(search.PERSONS_BY_NAME, "sigrid@nytt", bureau) == {person.id}

    customer.phone = "22 22 22 22"  # a column that is not searched leaves the index alone
    db.session.commit()
    assert found(search.CLIENTS_BY_NAME, "nytt navn", bureau) == {customer.id}

    db.session.delete(customer)  # the person goes with it (ON DELETE CASCADE)
    db.session.commit()
    assert found(search.CLIENTS_BY_NAME, "nytt", bureau) == set()
    assert found(search.PERSONS_BY_NAME, "sigrid", bureau) == set()
    if dialect == "sqlite":
        for document in DOCUMENTS:
            check = f"INSERT INTO {document.fts_table} ({document.fts_table}) VALUES ('integrity-check')"
            db.session.execute(text(check))
        db.session.commit()


# --- the plans ------------------------------------------------------------------------------------


def _plan(dialect: str, query) -> str:
    """The query's plan, read in the session's own transaction (SQLite has one writer)."""
    compiled = query.compile(db.engine)
    connection = db.session.connection()
    try:
        if dialect == "postgresql":
            # Rows just inserted wait in the GIN index's pending list, which the planner counts as a cost; the
            # index scan's cost is then compared with the bureau's index as it would be at scale (no table scan).
            for document in (CLIENTS, PERSONS):
                connection.exec_driver_sql(f"SELECT gin_clean_pending_list('{document.pg_index}'::regclass)")
            for statement in ("ANALYZE clients", "ANALYZE persons", "ANALYZE users", "SET LOCAL enable_seqscan = off"):
                connection.exec_driver_sql(statement)
            return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))
        parameters = tuple(compiled.params[name] for name in compiled.positiontup)
        return "\n".join(row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", parameters))
    finally:
        db.session.rollback()


@pytest.fixture
def many_clients(bureau):
    """A few thousand clients with a user each, so the planners see a real choice."""
    rows = [
        {"bureau_id": bureau.id, "name": f"Kunde {n} AS", "is_internal": False, "is_demo": False} for n in range(3000)
    ]
    for row in rows:
        row.update(company_lookup_enabled=False, custom_invoice_email_enabled=False, version=1)
        row.update(created_at=datetime.now(UTC), country_code="NO", language="nb", currency="NOK")
        row.update(invoice_email_texts={})
    db.session.execute(insert(Client), rows)
    db.session.commit()
    ids = db.session.scalars(db.select(Client.id).where(Client.bureau_id == bureau.id)).all()
    db.session.execute(
        insert(Person),
        [
            {
                "bureau_id": bureau.id,
                "client_id": client_id,
                "kind": PersonKind.USER,
                "first_name": f"Fornavn{client_id}",
                "last_name": "Etternavn",
                "email": f"bruker{client_id}@kunde.example",
                "version": 1,
                "created_at": datetime.now(UTC),
            }
            for client_id in ids
        ],
    )
    people = db.session.scalars(db.select(Person.id).where(Person.bureau_id == bureau.id)).all()
    db.session.execute(
        insert(User),
        [
            {
                "bureau_id": bureau.id,
                "person_id": person_id,
                "person_kind": PersonKind.USER,
                "status": UserStatus.ACTIVE,
                "version": 1,
                "created_at": datetime.now(UTC),
            }
            for person_id in people
        ],
    )
    db.session.commit()
    return ids


@pytest.mark.parametrize(
    ("searchable", "words", "document"),
    [
        (search.CLIENTS_BY_NAME, ["1234"], CLIENTS),
        (search.PERSONS_BY_NAME_OR_CLIENT, ["1234"], PERSONS),
        (search.USERS_BY_NAME, ["1234"], PERSONS),
    ],
)
def test_searches_use_the_trigram_index(dialect, bureau, many_clients, searchable, words, document):
    """Each source's query reads the document's trigram index (PostgreSQL: its GIN index; SQLite: its FTS5 table
    first, then the rows by primary key), never a scan of the table."""
    for source in searchable.sources:
        plan = _plan(dialect, search._source_query(db.session, searchable.model, source, words, bureau.id, 50))
        if dialect == "postgresql":
            assert source.document.pg_index in plan, plan
            assert "Seq Scan" not in plan, plan
        else:
            lines = plan.splitlines()
            assert lines[0].startswith(f"SCAN {source.document.fts_table} VIRTUAL TABLE INDEX"), plan
            assert not any(line.startswith("SCAN") or "TEMP B-TREE" in line for line in lines[1:]), plan
    assert document in {source.document for source in searchable.sources}


# --- the grids and pickers ------------------------------------------------------------------------


def test_grid_searches_keep_tenancy_and_archive_rules(client, login_as, make_bureau, make_client, make_user):
    login_as("admin")
    live = make_client(name="Synlig Søkbar AS")
    make_client(name="Skjult Søkbar AS", archived_at=datetime.now(UTC))
    foreign = make_client(name="Fremmed Søkbar AS", bureau=make_bureau())
    user = make_user(live)
    user.person.email = "søkbar.bruker@synlig.example"
    db.session.commit()
    make_user(foreign).person.email = "søkbar.fremmed@fremmed.example"
    db.session.commit()

    text_ = page(client.get("/admin/clients/", query_string={"search": "SØKBAR"}))
    assert "Synlig Søkbar AS" in text_ and "Skjult" not in text_ and "Fremmed" not in text_
    assert "Synlig Søkbar AS" in page(client.get("/admin/clients/", query_string={"search": spaced(live.org_number)}))
    assert "Synlig" not in page(client.get("/admin/clients/", query_string={"search": "søk%"}))
    people = page(client.get("/admin/persons/", query_string={"search": "synlig søkbar"}))
    assert "søkbar.bruker@synlig.example" in people and "fremmed" not in people
    users = page(client.get("/admin/users/", query_string={"search": "bruker@syn"}))
    assert "søkbar.bruker@synlig.example" in users
    assert "fremmed" not in page(client.get("/admin/users/", query_string={"search": "søkbar"}))


def test_pickers_use_the_same_search(client, login_as, make_bureau, make_client, make_user, make_package):
    login_as("admin")
    own = make_client(name="Plukk AS")
    user = make_user(own)
    user.person.first_name, user.person.email = "Åsmund", "aasmund.plukk@kunde.example"
    db.session.commit()
    make_user(make_client(bureau=make_bureau())).person.email = "aasmund.plukk@fremmed.example"
    db.session.commit()
    package = make_package(code="ØKO", name="Økonomi")

    def lookup(endpoint: str, name: str, query: str) -> list:
        answer = client.get(f"/admin/{endpoint}/ajax/lookup/", query_string={"name": name, "query": query})
        assert answer.status_code == 200
        return answer.get_json()

    assert [item[0] for item in lookup("clients", "contact_person", "mund.plu")] == [user.person_id]
    assert [item[0] for item in lookup("clients", "contact_person", "åSMUND")] == [user.person_id]
    assert [item[0] for item in lookup("assignments", "user", "aasmund.plukk")] == [user.id]
    assert lookup("assignments", "user", "zqxw") == [] and lookup("assignments", "user", "") == []
    assert [item[0] for item in lookup("assignments", "package", "ØKONOMI")] == [package.id]
    assert [item[0] for item in lookup("assignments", "package", "øk")] == [package.id]
    assert lookup("assignments", "package", "øk%") == []
    db.session.get(User, user.id).person.client.archived_at = datetime.now(UTC)
    db.session.commit()
    assert lookup("assignments", "user", "aasmund.plukk") == []


def test_outbox_and_event_log_searches(client, login_as, bureau, make_bureau):
    login_as("admin")
    for to, subject in (("mottaker@søk.example", "Invitasjon til Øyvind"), ("annen@søk.example", "Noe annet")):
        enqueue_email(db.session, bureau_id=bureau.id, to=to, subject=subject, text="Hei", kind="consent")
    enqueue_email(db.session, bureau_id=make_bureau().id, to="x@søk.example", subject="Øyvind", text="-", kind="x")
    db.session.add_all(
        [
            AuditEntry(bureau_id=bureau.id, actor_label="Åse Revisor", action="update", entity="clients", entity_id=1),
            AuditEntry(bureau_id=bureau.id, actor_label="Per Ansatt", action="update", entity="clients", entity_id=2),
        ]
    )
    db.session.commit()
    text_ = page(client.get("/admin/outbox/", query_string={"search": "øyvind"}))
    assert "Invitasjon til Øyvind" in text_ and "Noe annet" not in text_ and "x@søk.example" not in text_
    assert "annen@søk.example" in page(client.get("/admin/outbox/", query_string={"search": "annen@s"}))
    log = page(client.get("/admin/auditlog/", query_string={"search": "åse"}))
    assert "Åse Revisor" in log and "Per Ansatt" not in log
