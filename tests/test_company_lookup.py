""" "+ Ny kunde"'s register typeahead: "finnes allerede: åpne", deleted and removed companies, no role holders."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from extensions import db
from models import Client, OutboxMessage
from services import company_lookup
from services.registry import HolderKind, RoleHolder
from tests.test_admin import client_form, page
from tests.test_client_refresh import record


def search(client, text: str) -> dict:
    response = client.get("/admin/clients/registry/search/", query_string={"q": text})
    assert response.status_code == 200, page(response)
    return response.get_json()


# --- the service ---------------------------------------------------------------------------------


def test_matches_flag_the_bureaus_own_client_only(app, bureau, make_bureau, make_client):
    mine = make_client(org_number="914375916", name="Vår Tollbugata AS")
    other_bureau = make_bureau()
    make_client(org_number="915330193", bureau=other_bureau)
    matches = company_lookup.search_matches(
        db.session, bureau.id, [record(), record(org_number="915330193", name="1VASK AS")]
    )
    assert matches[0]["existing"] == {"id": mine.id, "name": "Vår Tollbugata AS", "archived": False}
    assert matches[1]["existing"] is None  # another bureau's client is none of ours


def test_archived_client_is_flagged_as_archived(app, bureau, make_client):
    make_client(org_number="914375916", archived_at=datetime(2026, 1, 1, tzinfo=UTC))
    [match] = company_lookup.search_matches(db.session, bureau.id, [record()])
    assert match["existing"]["archived"] is True


def test_removed_company_gets_a_name_and_a_warning(app, bureau, make_client):
    from services.registry import CompanyStatus

    removed = record(
        org_number="921000014",
        name=None,
        organisation_form=None,
        business_address=None,
        postal_address=None,
        status=CompanyStatus.REMOVED,
    )
    [match] = company_lookup.search_matches(db.session, bureau.id, [removed])
    assert match["display_name"] == "Navnet står ikke i registeret"
    assert "fjernet fra registeret" in match["warning"] and match["gone"]
    make_client(org_number="921000014", name="Gamle Firma AS")
    [match] = company_lookup.search_matches(db.session, bureau.id, [removed])
    assert match["display_name"] == "Gamle Firma AS"


def test_contact_suggestions_say_when_the_register_lists_nobody(app):
    partners = [
        RoleHolder("DTPR", "Deltaker med proratarisk ansvar", "SULT AS", HolderKind.ENTITY, "914375916"),
        RoleHolder("DAGL", "Daglig leder", "NOEN AS", HolderKind.ENTITY, "915330193"),
    ]
    suggestions, message = company_lookup.contact_suggestions(partners)
    assert suggestions == [] and "ingen daglig leder eller styreleder" in message
    people = [RoleHolder("LEDE", "Styrets leder", "Kari Nordmann", HolderKind.PERSON, None, group="STYR")]
    suggestions, message = company_lookup.contact_suggestions(people)
    assert [s["contact_role"] for s in suggestions] == ["styreleder"] and message is None


# --- through the web -------------------------------------------------------------------------------


def test_typeahead_says_finnes_allerede_with_a_link(login_as, client, make_client):
    login_as("staff")
    mine = make_client(org_number="914375916", name="Vår Tollbugata AS")
    by_number = search(client, "914375916")["results"]
    assert by_number[0]["existing"]["url"].endswith(f"/admin/clients/manage/?id={mine.id}")
    by_name = search(client, "tollbugata")["results"]
    assert [r["existing"]["id"] for r in by_name if r["existing"]] == [mine.id]
    form = page(client.get("/admin/clients/new/"))
    assert 'data-msg-exists="Finnes allerede:"' in form and 'data-msg-open="åpne"' in form
    assert 'data-msg-exists-archived="Finnes allerede (arkivert):"' in form


def test_typeahead_does_not_reveal_another_bureaus_client(login_as, client, make_bureau, make_client):
    login_as("staff")
    make_client(org_number="914375916", name="Hemmelig Kunde AS", bureau=make_bureau())
    data = search(client, "914375916")
    assert data["results"][0]["existing"] is None
    assert "Hemmelig" not in str(data)


def test_deleted_and_removed_companies_show_a_name_and_a_warning(login_as, client):
    login_as("staff")
    [deleted] = search(client, "989566733")["results"]
    assert deleted["display_name"] == "ROLS AS" and "slettet" in deleted["warning"]
    [removed] = search(client, "921000014")["results"]
    assert removed["display_name"] != removed["org_number"] and "fjernet" in removed["warning"]


def test_ans_without_general_manager_or_chair_says_so(login_as, client):
    login_as("staff")
    data = client.get("/admin/clients/registry/roles/", query_string={"org": "810005912"}).get_json()
    assert data["holders"] == []
    assert data["message"].startswith("Enhetsregisteret oppgir ingen daglig leder eller styreleder")
    with_roles = client.get("/admin/clients/registry/roles/", query_string={"org": "914375916"}).get_json()
    assert with_roles["holders"] and with_roles["message"] is None


def test_bad_check_digit_is_told_in_norwegian(login_as, client, registry_emulator):
    login_as("staff")
    registry_emulator.reset()
    for text in ("123456789", "123 456 789"):
        data = search(client, text)
        assert data["kind"] == "invalid" and data["error"] == "123456789 er ikke et gyldig organisasjonsnummer."
    roles = client.get("/admin/clients/registry/roles/", query_string={"org": "123456789"}).get_json()
    assert "ikke et gyldig organisasjonsnummer" in roles["error"]
    assert registry_emulator.requests == []


def test_hostile_queries_answer_json_not_errors(login_as, client):
    login_as("staff")
    for text in ("<script>alert(1)</script>", "x" * 5000, "9143759160", "' OR 1=1 --", "\x00abc"):
        response = client.get("/admin/clients/registry/search/", query_string={"q": text})
        assert response.status_code in (200, 502, 503) and response.is_json
    for org in ("", "abc", "9" * 400):
        response = client.get("/admin/clients/registry/roles/", query_string={"org": org})
        assert response.status_code == 200 and response.is_json


def test_duplicate_on_create_is_said_once_with_a_link(login_as, client, make_client):
    login_as("staff")
    mine = make_client(org_number="974760673", name="Eksisterende AS")
    before = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    response = client.post("/admin/clients/new/", data=client_form())
    text = page(response)
    assert response.status_code == 200
    assert text.count("allerede dette organisasjonsnummeret") == 1, re.findall(r"allerede[^<]*", text)
    assert f'href="/admin/clients/manage/?id={mine.id}"' in text
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.org_number == "974760673")) == 1
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == before


def test_typeahead_needs_a_login(client):
    response = client.get("/admin/clients/registry/search/?q=tollbugata")
    assert response.status_code in (302, 401, 403)
