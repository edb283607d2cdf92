""" "Oppdater fra Brønnøysund": only real changes are proposed and recorded, single and bulk; bulk names the missing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from extensions import db
from models import AuditEntry, Client, Job
from services import client_refresh
from services.registry import Address, CompanyRecord, CompanyStatus
from tests.test_admin import client_form, page


def record(**overrides) -> CompanyRecord:
    values = {
        "org_number": "914375916",
        "name": "TOLLBUGATA 17 OSLO AS",
        "organisation_form": "AS",
        "business_address": Address(["Tollbugata 17"], "0152", "OSLO", "0301", "NO", "Norge"),
        "postal_address": Address(["c/o Regnskap AS", "Postboks 1"], "0102", "OSLO", "0301", "NO", "Norge"),
        "email": None,
        "phone": None,
        "website": None,
        "industry_code": None,
        "employees": None,
        "founded": None,
        "vat_registered": None,
        "status": CompanyStatus.ACTIVE,
        "deleted_on": None,
    }
    return CompanyRecord(**(values | overrides))


@pytest.mark.parametrize(
    ("field", "old", "new"),
    [
        ("postal_address_lines", "C/O Regnskap AS\r\nPostboks 1", "c/o Regnskap AS\nPostboks 1"),
        ("postal_address_lines", "  c / o  Regnskap AS \r\n\r\nPostboks 1 ", "c/o Regnskap AS\nPostboks 1"),
        ("business_country_code", "NO", None),
        ("postal_country_code", None, "NO"),
        ("business_country_code", "no", "NO"),
        ("business_city", "Oslo", "OSLO"),
        ("business_postal_code", " 0152", "0152"),
        ("name", "Tollbugata 17  Oslo AS", "TOLLBUGATA 17 OSLO AS"),
        ("organisation_form", "", None),
    ],
)
def test_the_same_value_written_differently_is_no_change(field, old, new):
    assert not client_refresh.differs(field, old, new)


@pytest.mark.parametrize(
    ("field", "old", "new"),
    [
        ("postal_address_lines", "Postboks 1", "Postboks 2"),
        ("business_country_code", "SE", None),
        ("business_country_code", "NO", "SK"),
        ("business_city", "Oslo", "BERGEN"),
        ("name", "Gammelt Navn AS", "1VASK AS"),
        ("business_postal_code", None, "0152"),
    ],
)
def test_a_real_difference_is_a_change(field, old, new):
    assert client_refresh.differs(field, old, new)


def test_diff_and_apply_leave_equal_values_alone(app, make_client):
    client = make_client(
        org_number="914375916",
        name="Tollbugata 17 Oslo AS",
        organisation_form="AS",
        business_address_lines="Tollbugata 17",
        business_postal_code="0152",
        business_city="Oslo",
        business_country_code="NO",
        postal_address_lines="c/o Regnskap AS\r\nPostboks 1",
        postal_postal_code="0102",
        postal_city="OSLO",
        postal_country_code=None,
    )
    assert client_refresh.diff(client, record()) == []
    moved = record(business_address=Address(["Storgata 2"], "0155", "OSLO", "0301", None, None))
    changes = client_refresh.apply(client, moved)
    assert [(c.field, c.old, c.new) for c in changes] == [
        ("business_address_lines", "Tollbugata 17", "Storgata 2"),
        ("business_postal_code", "0152", "0155"),
    ]
    db.session.commit()
    db.session.expire_all()
    # the bureau's spelling of what did not change is kept
    assert (client.business_city, client.business_country_code, client.name) == ("Oslo", "NO", "Tollbugata 17 Oslo AS")


def history_changes(client_id: int) -> list[dict]:
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "clients", AuditEntry.entity_id == client_id)
    ).all()
    return [e.changes or {} for e in entries]


def test_refresh_right_after_creating_from_the_register_proposes_nothing(login_as, client):
    """The form posts what the typeahead filled in (CR LF lines, country NO); the register has it as it was."""
    login_as("staff")
    form = client_form(
        name="TOLLBUGATA 17 OSLO AS",
        org_number="914375916",
        organisation_form="AS",
        company_query="",
    )
    registered = client.get("/admin/clients/registry/search/?q=914375916").get_json()["results"][0]
    for prefix, address in (("business", registered["business_address"]), ("postal", registered["postal_address"])):
        form[f"{prefix}_address_lines"] = "\r\n".join(address["lines"]) if address else ""
        form[f"{prefix}_postal_code"] = address["postal_code"] if address else ""
        form[f"{prefix}_city"] = address["city"] if address else ""
        form[f"{prefix}_country_code"] = "NO"
    response = client.post("/admin/clients/new/", data=form)
    assert response.status_code == 302, page(response)
    created = db.session.scalar(select(Client).where(Client.org_number == "914375916"))
    assert "\r\n" in (created.postal_address_lines or "") or "\n" in (created.postal_address_lines or "")
    preview = page(client.get(f"/admin/clients/refresh/?id={created.id}"))
    assert "allerede" in preview  # "Klienten stemmer allerede med registeret"
    assert "→" not in preview and "<tbody>" not in preview
    before = history_changes(created.id)
    response = client.post(f"/admin/clients/refresh/?id={created.id}", data={"version_check": str(created.version)})
    assert response.status_code == 302
    after = history_changes(created.id)
    recorded = [change for change in after if change not in before]
    company_fields = set(client_refresh.FIELD_LABELS)
    for change in recorded:
        for field, values in change.items():
            assert field not in company_fields, f"{field}: {values['from']!r} → {values['to']!r}"
            assert values["from"] != values["to"], f"{field} recorded as X → X"


def test_bulk_refresh_changes_only_real_differences_and_names_the_missing(
    login_as, client, make_client, registry_emulator, run_jobs
):
    login_as("staff")
    same = make_client(
        org_number="914375916",
        name="Tollbugata 17 Oslo AS",
        organisation_form="as",
        business_address_lines="TOLLBUGATA 17",
        business_country_code="NO",
    )
    registered = client.get("/admin/clients/registry/search/?q=914375916").get_json()["results"][0]
    business, postal = registered["business_address"], registered["postal_address"]
    same.business_address_lines = "\r\n".join(business["lines"]).upper()
    same.business_postal_code, same.business_city = business["postal_code"], business["city"].title()
    same.postal_address_lines = "\r\n".join(postal["lines"]) if postal else None
    same.postal_postal_code = postal["postal_code"] if postal else None
    same.postal_city = postal["city"] if postal else None
    same.postal_country_code = "NO"
    db.session.commit()
    missing = make_client(org_number="910000012", name="Bodø Bygg AS")
    response = client.post(
        "/admin/clients/action/",
        data={"action": "refresh_registry", "rowid": [same.id, missing.id]},
        follow_redirects=True,
    )
    run_jobs()
    text = page(client.get(response.request.path))
    assert "Bodø Bygg AS (910000012): ikke funnet" in text
    assert not re.search(r"\b1 ikke funnet", text)
    job = db.session.scalars(select(Job).order_by(Job.id.desc())).first()
    assert "Bodø Bygg AS (910000012): ikke funnet" in job.summary
    assert "0 endret, 1 uendret" in job.summary
    db.session.expire_all()
    assert same.business_city == business["city"].title()  # not rewritten to the register's capitals


def test_bulk_summary_names_at_most_ten_and_counts_the_rest(login_as, client, make_client, run_jobs):
    from services.orgnumbers import valid_numbers

    login_as("staff")
    numbers = valid_numbers(97_500_000)
    unknown = [make_client(org_number=next(numbers), name=f"Ukjent {i} AS") for i in range(12)]
    response = client.post(
        "/admin/clients/action/",
        data={"action": "refresh_registry", "rowid": [c.id for c in unknown]},
        follow_redirects=True,
    )
    run_jobs()
    page(client.get(response.request.path))
    job = db.session.scalars(select(Job).order_by(Job.id.desc())).first()
    assert job.summary.count(": ikke funnet") == 10
    assert "og 2 til ikke funnet" in job.summary


def test_refresh_of_another_bureaus_client_is_not_found(login_as, client, make_bureau, make_client):
    login_as("staff")
    theirs = make_client(org_number="915330193", name="Deres Navn AS", bureau=make_bureau())
    assert client.get(f"/admin/clients/refresh/?id={theirs.id}").status_code == 404
    response = client.post(f"/admin/clients/refresh/?id={theirs.id}", data={"version_check": str(theirs.version)})
    assert response.status_code == 404
    db.session.expire_all()
    assert theirs.name == "Deres Navn AS" and theirs.registry_checked_at is None


def test_applying_the_same_preview_twice_changes_once(login_as, client, make_client):
    login_as("staff")
    stale = make_client(org_number="915330193", name="Gammelt Navn AS", business_city="Oslo")
    version = str(stale.version)
    first = client.post(f"/admin/clients/refresh/?id={stale.id}", data={"version_check": version})
    assert first.status_code == 302
    db.session.expire_all()
    assert stale.name == "1VASK AS"
    entries = len(history_changes(stale.id))
    second = client.post(f"/admin/clients/refresh/?id={stale.id}", data={"version_check": version})
    assert second.status_code == 302
    db.session.expire_all()
    assert len(history_changes(stale.id)) == entries  # the stale second click recorded nothing
    preview = page(client.get(f"/admin/clients/refresh/?id={stale.id}"))
    assert "allerede" in preview and "Gammelt Navn AS" not in preview
