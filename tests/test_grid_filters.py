"""Grid filters on big tables follow the search box's rules and indexes, and offer only what the bureau has."""

from __future__ import annotations

from sqlalchemy import select

from extensions import db
from models import AuditEntry, PersonKind
from tests.test_grid_queries import grid_statement


def _filter_index(app, endpoint: str, label: str, operation: str | None = None) -> int:
    admin = app.extensions["admin"][0]
    view = next(v for v in admin._views if getattr(v, "endpoint", None) == endpoint)
    return next(
        i
        for i, flt in enumerate(view._filters)
        if str(flt.name) == label and (operation is None or str(flt.operation()) == operation)
    )


def test_client_filter_on_people_never_reaches_another_bureau(
    app, client, login_as, make_bureau, make_client, make_person
):
    login_as("staff")
    make_person(make_client(name="Fjordkraft AS"), first_name="Egenperson")
    other = make_bureau(org_number="974760673", name="Annet byrå AS")
    foreign = make_client(name="Fjordkraft Øst AS", bureau=other)
    make_person(foreign, first_name="Fremmedperson")
    index = _filter_index(app, "persons", "Klient")
    body = client.get("/admin/persons/", query_string={f"flt0_{index}": "fjordkraft"}).get_data(as_text=True)
    assert "Egenperson" in body and "Fremmedperson" not in body


def test_people_without_email_filter(app, client, login_as, make_client, make_person):
    login_as("staff")
    customer = make_client()
    make_person(customer, PersonKind.PERSON, first_name="Utenpost")
    make_person(customer, first_name="Medpost", email="med.post@kunde.example")
    index = _filter_index(app, "persons", "E-post")
    body = client.get("/admin/persons/", query_string={f"flt0_{index}": "1"}).get_data(as_text=True)
    assert "Utenpost" in body and "Medpost" not in body


def test_organisation_form_filter_offers_the_bureaus_forms(app, client, login_as, make_client):
    login_as("staff")
    make_client(name="Aksje AS", organisation_form="AS")
    make_client(name="Enkel ENK", organisation_form="ENK")
    make_client(name="Ukjent form")
    index = _filter_index(app, "clients", "Organisasjonsform", "er lik")
    page = client.get("/admin/clients/").get_data(as_text=True)
    assert '"AS"' in page and '"ENK"' in page
    body = client.get("/admin/clients/", query_string={f"flt0_{index}": "ENK"}).get_data(as_text=True)
    assert "Enkel ENK" in body and "Aksje AS" not in body and "Ukjent form" not in body
    # A form the bureau does not have finds nothing (and answers).
    body = client.get("/admin/clients/", query_string={f"flt0_{index}": "XYZ"}).get_data(as_text=True)
    assert "Aksje AS" not in body and "Enkel ENK" not in body
    assert client.get("/admin/clients/", query_string={f"flt0_{index}": "XYZ\x00" * 50}).status_code == 200


def test_event_log_who_filter_uses_the_search_rules(app, client, login_as, bureau):
    login_as("admin")
    for label in ("Åse Revisor", "Per Ansatt"):
        db.session.add(
            AuditEntry(bureau_id=bureau.id, actor_label=label, action="update", entity="clients", entity_id=1)
        )
    db.session.commit()
    index = _filter_index(app, "auditlog", "Hvem")
    body = client.get("/admin/auditlog/", query_string={f"flt0_{index}": "åse"}).get_data(as_text=True)
    assert "Åse Revisor" in body and "Per Ansatt" not in body
    assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.actor_label == "Per Ansatt")) is not None


def test_date_filters_that_exclude_a_range_keep_exactly_the_dates_outside(
    app, client, login_as, make_client, make_person, make_user, make_package, assign
):
    """ "Ikke mellom" and "ikke lik" on a date are written as two ranges so an index can serve them (issue 9): the
    same rows as ``NOT``, with both ends of the range excluded, and never a 500 for a reversed or hostile range."""
    from datetime import date

    login_as("admin")
    package = make_package()
    customer = make_client()
    days = {"før": date(2026, 1, 31), "start": date(2026, 2, 1), "inne": date(2026, 2, 15), "slutt": date(2026, 2, 28)}
    days["etter"] = date(2026, 3, 1)
    for word, day in days.items():
        assign(make_user(customer, person=make_person(customer, first_name=f"Bruker{word}")), package, day)

    def listed(operation: str, value: str) -> set[str]:
        index = _filter_index(app, "assignments", "Fra", operation)
        answer = client.get("/admin/assignments/", query_string={f"flt0_{index}": value})
        assert answer.status_code == 200
        page = answer.get_data(as_text=True)
        return {word for word in days if f"Bruker{word}" in page}

    assert listed("ikke mellom", "2026-02-01 to 2026-02-28") == {"før", "etter"}
    assert listed("mellom", "2026-02-01 to 2026-02-28") == {"start", "inne", "slutt"}
    assert listed("ikke lik", "2026-02-15") == {"før", "start", "slutt", "etter"}
    index = _filter_index(app, "assignments", "Fra", "ikke mellom")
    sql, _ = grid_statement(client, f"/admin/assignments/?flt0_{index}=2026-02-01+to+2026-02-28")
    where = sql.split("WHERE", 1)[1].split("ORDER BY", 1)[0]
    assert "valid_from <" in where and "valid_from >" in where and "BETWEEN" not in where, where
    for hostile in ("2026-02-28 to 2026-02-01", "2026-13-01 to 2026-02-01", "x\x00 to y", "9" * 40):
        assert client.get("/admin/assignments/", query_string={"flt0_3": hostile}).status_code == 200


def test_end_date_filters_keep_the_same_rows_whether_the_probe_finds_few_or_many(
    app, client, login_as, make_client, make_person, make_user, make_package, assign, monkeypatch
):
    """Date filters ask the column's index how many of the bureau's rows they keep (issue 9). Few: the grid sorts
    those rows (its order becomes an expression no index holds), found through the end date's index. Many: on SQLite
    the criterion is marked as keeping most rows, so the planner walks the grid's order. Either way the rows listed
    are exactly the filter's, and another bureau's rows never count or show."""
    from datetime import date

    from admin_views import base
    from tests.test_grid_queries import plan_of

    login_as("admin")
    package = make_package()
    customer = make_client()
    ends = {"åpen": None, "jan": date(2026, 1, 31), "feb": date(2026, 2, 28), "mar": date(2026, 3, 31)}
    for word, end in ends.items():
        user = make_user(customer, person=make_person(customer, first_name=f"Slutt{word}"))
        assign(user, package, date(2026, 1, 1), end)

    def listed(operation: str, value: str) -> tuple[set[str], str]:
        index = _filter_index(app, "assignments", "Til og med", operation)
        path = f"/admin/assignments/?flt0_{index}={value.replace(' ', '+')}"
        page = client.get(path).get_data(as_text=True)
        return {word for word in ends if f"Slutt{word}" in page}, grid_statement(client, path)[0]

    expected = {
        ("er lik", "2026-02-28"): {"feb"},
        ("er lik", "2026-11-01"): set(),
        ("ikke lik", "2026-02-28"): {"jan", "mar"},
        ("større enn", "2026-02-28"): {"mar"},
        ("mindre enn", "2026-02-28"): {"jan"},
        ("mellom", "2026-01-31 to 2026-02-28"): {"jan", "feb"},
        ("ikke mellom", "2026-01-31 to 2026-02-28"): {"mar"},
    }
    for (operation, value), words in expected.items():
        rows, sql = listed(operation, value)
        assert rows == words, (operation, value, rows)
        assert "coalesce" in sql.lower() and "likelihood" not in sql.lower(), sql  # at most 3 rows: few
    index = _filter_index(app, "assignments", "Til og med", "er lik")
    plan = plan_of(*grid_statement(client, f"/admin/assignments/?flt0_{index}=2026-11-01"))
    assert "ix_package_assignments_bureau_to_from" in plan, plan

    monkeypatch.setattr(base, "PROBE_ROWS", 2)  # the same rows, now "many" for every filter that keeps two or more
    for (operation, value), words in expected.items():
        rows, sql = listed(operation, value)
        assert rows == words, (operation, value, rows)
        many = len(words) >= 2
        assert ("coalesce" in sql.lower()) is not many, sql
        assert ("likelihood" in sql.lower()) is (many and db.engine.dialect.name == "sqlite"), sql


def test_the_date_filter_probe_counts_only_the_bureaus_own_rows(
    app, client, login_as, make_bureau, make_client, make_person, make_user, make_package, assign, monkeypatch
):
    """Another bureau's many rows with the same end date do not make this bureau's few rows look many."""
    from datetime import date

    from admin_views import base

    login_as("admin")
    monkeypatch.setattr(base, "PROBE_ROWS", 2)
    package = make_package()
    customer = make_client()
    assign(
        make_user(customer, person=make_person(customer, first_name="Egen")),
        package,
        date(2026, 1, 1),
        date(2026, 2, 28),
    )
    other = make_bureau()
    for n in range(3):
        other_client = make_client(bureau=other)
        other_package = make_package(bureau=other)
        assign(
            make_user(other_client, person=make_person(other_client, first_name=f"Fremmed{n}")),
            other_package,
            date(2026, 1, 1),
            date(2026, 2, 28),
        )
    index = _filter_index(app, "assignments", "Til og med", "er lik")
    path = f"/admin/assignments/?flt0_{index}=2026-02-28"
    page = client.get(path).get_data(as_text=True)
    assert "Egen" in page and "Fremmed" not in page
    assert "coalesce" in grid_statement(client, path)[0].lower()


def test_users_end_date_filters_are_probed_and_keep_exactly_their_rows(
    app, client, login_as, make_client, make_person, make_user
):
    """The users grid's own end-date filters ("mellom", "mindre enn") are the probed ones too (issue 9)."""
    from datetime import date

    login_as("admin")
    customer = make_client()
    for word, end in {"tidlig": date(2026, 3, 1), "sen": date(2026, 9, 1), "uten": None}.items():
        make_user(customer, person=make_person(customer, first_name=f"Ende{word}"), end_date=end)
    for operation, value, words in (
        ("mellom", "2026-01-01+to+2026-06-30", {"tidlig"}),
        ("mindre enn", "2026-06-30", {"tidlig"}),
    ):
        index = _filter_index(app, "users", "Sluttdato", operation)
        path = f"/admin/users/?flt0_{index}={value}"
        page = client.get(path).get_data(as_text=True)
        assert {word for word in ("tidlig", "sen", "uten") if f"Ende{word}" in page} == words
        assert "coalesce" in grid_statement(client, path)[0].lower()


def test_outside_a_range_of_the_sort_column_reads_each_sides_first_rows(
    app, client, login_as, make_client, make_person, make_user, make_package, assign, monkeypatch
):
    """ "Fra ikke mellom" / "Fra ikke lik" keeping many rows while the grid is sorted by the start date: each side's
    first rows in the grid's order are read from the index and sorted (issue 9), in either direction, and the page
    is exactly the rows outside the range in that order. Sorted by another column, the filter stays a plain
    criterion."""
    import re
    from datetime import date

    from admin_views import base

    login_as("admin")
    monkeypatch.setattr(base, "PROBE_ROWS", 2)
    package = make_package()
    customer = make_client()
    starts = {
        "a": date(2026, 1, 10),
        "b": date(2026, 1, 20),
        "c": date(2026, 2, 15),
        "d": date(2026, 3, 5),
        "e": date(2026, 3, 25),
    }
    for word, start in starts.items():
        assign(make_user(customer, person=make_person(customer, first_name=f"Start{word}")), package, start)
    index = _filter_index(app, "assignments", "Fra", "ikke mellom")
    base_path = f"/admin/assignments/?flt0_{index}=2026-02-01+to+2026-02-28"
    for extra, expected in (("", "edba"), ("&sort=4", "abde"), ("&sort=4&desc=1", "edba")):
        page = client.get(base_path + extra).get_data(as_text=True)
        assert "".join(re.findall(r"Start([a-e])", page)) == expected, extra
        sql = grid_statement(client, base_path + extra)[0]
        assert "UNION ALL" in sql and "coalesce" in sql.lower(), sql
    sql = grid_statement(client, base_path + "&sort=5")[0]  # by end date: no shortcut
    assert "UNION" not in sql
    index = _filter_index(app, "assignments", "Fra", "ikke lik")
    page = client.get(f"/admin/assignments/?flt0_{index}=2026-02-15").get_data(as_text=True)
    assert "".join(re.findall(r"Start([a-e])", page)) == "edba"
