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
