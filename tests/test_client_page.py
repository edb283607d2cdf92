"""Issue 3 through the test client: "+ Ny kunde" against the register emulator, consent, Oversikt, refresh."""

import re

from sqlalchemy import func, select

from extensions import db
from models import AuditEntry, Client, ConsentStatus, OutboxMessage
from tests.test_admin import client_form, page


def new_client(client, **overrides):
    return client.post("/admin/clients/new/", data=client_form(**overrides))


def test_new_client_button_and_form(login_as, client):
    login_as("staff")
    grid = page(client.get("/admin/clients/"))
    assert "+ Ny kunde" in grid and "btn-success" in grid
    form = page(client.get("/admin/clients/new/"))
    for text in ("Demo", "Kundemal", "Firmanavn", "Kontaktperson", "Daglig leder", "Styreleder", "Opprett"):
        assert text.lower() in form.lower(), text


def test_typeahead_search_and_roles_come_from_the_register(login_as, client, registry_emulator):
    login_as("staff")
    data = client.get("/admin/clients/registry/search/?q=tollbugata").get_json()
    assert data["results"][0]["org_number"] == "914375916"
    assert data["results"][0]["business_address"]["city"] == "OSLO"
    by_number = client.get("/admin/clients/registry/search/?q=914 375 916").get_json()
    assert [r["name"] for r in by_number["results"]] == ["TOLLBUGATA 17 OSLO AS"]
    roles = client.get("/admin/clients/registry/roles/?org=914375916").get_json()["holders"]
    assert {h["contact_role"] for h in roles} == {"daglig_leder", "styreleder"}
    assert all(h["kind"] == "person" for h in roles)


def test_invalid_number_is_refused_without_a_request(login_as, client, registry_emulator):
    login_as("staff")
    registry_emulator.reset()
    data = client.get("/admin/clients/registry/search/?q=123456789").get_json()
    assert data["results"] == [] and data["kind"] == "invalid"
    assert registry_emulator.requests == []
    response = new_client(client, org_number="123456789")
    assert "ikke et gyldig organisasjonsnummer" in page(response)
    assert registry_emulator.requests == []


def test_register_down_leaves_manual_entry_working(app, login_as, client):
    login_as("staff")
    app.config["BRREG_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens there
    app.extensions.pop("registry", None)
    response = client.get("/admin/clients/registry/search/?q=tollbugata")
    assert response.status_code == 503
    assert "svarer ikke" in response.get_json()["error"]
    response = new_client(client, name="Helt Ny Kafé AS", org_number="")
    assert response.status_code == 302
    created = db.session.scalar(select(Client).where(Client.name == "Helt Ny Kafé AS"))
    assert created.org_number is None


def test_create_makes_client_contact_and_consent_mail_in_one_go(login_as, client, make_template):
    staff = login_as("staff")
    swedish = make_template(name="Svensk kundemal", country_code="SE", language="sv", currency="SEK")
    response = new_client(client, template=str(swedish.id), is_demo="y")
    assert response.status_code == 302
    created = db.session.scalar(select(Client).where(Client.org_number == "974760673"))
    assert created.bureau_id == staff.bureau_id and created.is_demo
    assert (created.country_code, created.language, created.currency) == ("SE", "sv", "SEK")
    assert created.contact_person.email == "kari@nykunde.example"
    assert created.contact_role == "daglig_leder" and created.consent_status is ConsentStatus.PENDING
    mail = db.session.scalar(select(OutboxMessage).where(OutboxMessage.client_id == created.id))
    assert mail.recipient == "kari@nykunde.example" and "/samtykke/" in mail.body_text
    assert mail.body_text.count("http://testserver/samtykke/") == 1


def test_failed_create_saves_nothing(login_as, client, make_client):
    login_as("staff")
    make_client(org_number="974760673")
    before = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    response = new_client(client)
    assert response.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == before
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.org_number == "974760673")) == 1
    # what was typed is still in the form
    assert 'value="Kari"' in page(response) and "kari@nykunde.example" in page(response)


def consent_link(client_id: int) -> str:
    mail = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.client_id == client_id).order_by(OutboxMessage.id.desc())
    ).first()
    return re.search(r"http://testserver(/samtykke/\S+)", mail.body_text).group(1)


def test_consent_link_works_once(login_as, client, app):
    login_as("staff")
    new_client(client)
    created = db.session.scalar(select(Client).where(Client.org_number == "974760673"))
    path = consent_link(created.id)
    client.post("/logout")
    landing = client.get(path)
    assert landing.status_code == 200 and "Ny Kunde AS" in page(landing)
    assert client.post(path, data={"accept": "1"}).status_code == 200
    db.session.expire_all()
    assert created.consent_status is ConsentStatus.GIVEN and created.consent_at is not None
    assert created.consent_from == "127.0.0.1"
    again = client.post(path, data={"decline": "1"})
    assert again.status_code == 410
    db.session.expire_all()
    assert created.consent_status is ConsentStatus.GIVEN
    assert client.get(path[:-3] + "xyz").status_code == 404


def test_resending_consent_invalidates_the_old_link(login_as, client):
    login_as("staff")
    new_client(client)
    created = db.session.scalar(select(Client).where(Client.org_number == "974760673"))
    old = consent_link(created.id)
    response = client.post(f"/admin/clients/consent/?id={created.id}", data={"version_check": str(created.version)})
    assert response.status_code == 302
    new = consent_link(created.id)
    assert new != old
    assert client.get(old).status_code == 410
    assert client.post(new, data={"decline": "1"}).status_code == 200
    db.session.expire_all()
    assert created.consent_status is ConsentStatus.DECLINED


def test_expired_consent_link(login_as, client, app):
    login_as("staff")
    new_client(client)
    created = db.session.scalar(select(Client).where(Client.org_number == "974760673"))
    path = consent_link(created.id)
    app.config["CONSENT_LINK_DAYS"] = -1
    assert client.get(path).status_code == 410
    assert "utløpt" in page(client.get(path))


def test_overview_tab_switches_are_recorded(login_as, client, make_client):
    login_as("staff")
    record = make_client()
    text = page(client.get(f"/admin/clients/manage/?id={record.id}"))
    assert "Oversikt" in text and "Personer" in text and "Tilgangspakker" in text
    response = client.post(
        f"/admin/clients/switch/company_lookup_enabled/?id={record.id}", data={"version_check": str(record.version)}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert record.company_lookup_enabled is True
    changes = db.session.scalars(
        select(AuditEntry.changes).where(AuditEntry.entity == "clients", AuditEntry.entity_id == record.id)
    ).all()
    assert any(c.get("company_lookup_enabled") == {"from": False, "to": True} for c in changes)
    stale = client.post(
        f"/admin/clients/switch/company_lookup_enabled/?id={record.id}",
        data={"version_check": "1"},
        follow_redirects=True,
    )
    assert "Noen andre lagret" in page(stale)
    db.session.expire_all()
    assert record.company_lookup_enabled is True


def test_invoice_texts_check_merge_fields(login_as, client, make_client):
    login_as("staff")
    record = make_client(custom_invoice_email_enabled=True)
    url = f"/admin/clients/invoice-texts/?id={record.id}"
    bad = client.post(url, data={"subject_nb": "Faktura {InvoiceNumber}", "body_nb": "Forfall {DueDat}"})
    assert "{DueDat}" in page(bad)
    db.session.expire_all()
    assert record.invoice_email_texts == {}
    unclosed = client.post(url, data={"subject_nb": "Faktura {InvoiceNumber", "body_nb": "Hei"})
    assert "ikke lukket" in page(unclosed)
    good = client.post(url, data={"subject_nb": "Faktura {InvoiceNumber}", "body_nb": "Forfaller {DueDate}."})
    assert good.status_code == 302
    db.session.expire_all()
    assert record.invoice_email_texts == {"nb": {"subject": "Faktura {InvoiceNumber}", "body": "Forfaller {DueDate}."}}


def test_refresh_shows_diff_and_warns_when_bankrupt(login_as, client, make_client):
    login_as("staff")
    record = make_client(org_number="915330193", name="Gammelt Navn AS")
    preview = page(client.get(f"/admin/clients/refresh/?id={record.id}"))
    assert "Gammelt Navn AS" in preview and "1VASK AS" in preview
    assert "konkurs" in preview.lower()
    db.session.expire_all()
    assert record.name == "Gammelt Navn AS"  # nothing applied before confirmation
    response = client.post(f"/admin/clients/refresh/?id={record.id}", data={"version_check": str(record.version)})
    assert response.status_code == 302
    db.session.expire_all()
    assert record.name == "1VASK AS" and record.registry_status == "bankrupt"
    assert "konkurs" in page(client.get(f"/admin/clients/manage/?id={record.id}")).lower()


def test_bulk_refresh_batches_and_summarises(login_as, client, make_client, registry_emulator, run_jobs):
    login_as("staff")
    clients = [make_client(org_number=n) for n in ("914375916", "921000022", "921000030")]
    clients.append(make_client(org_number=None))
    registry_emulator.reset()
    response = client.post(
        "/admin/clients/action/",
        data={"action": "refresh_registry", "rowid": [c.id for c in clients]},
        follow_redirects=True,
    )
    run_jobs()  # the refresh runs as a job; its page has the summary
    text = page(client.get(response.request.path))
    assert "3 endret" in text or "3 changed" in text
    assert "avvikling" in text
    lookups = [r for r in registry_emulator.requests if "organisasjonsnummer=" in r]
    assert len(lookups) == 1


def test_mark_demo_row_action_and_never_clear(login_as, client, make_client):
    login_as("staff")
    record = make_client()
    grid = page(client.get("/admin/clients/"))
    assert 'name="action" value="mark_demo"' in grid
    client.post("/admin/clients/action/", data={"action": "mark_demo", "rowid": [record.id]})
    db.session.expire_all()
    assert record.is_demo
    grid = page(client.get("/admin/clients/?flt0_0=1"))
    assert "badge-demo" in grid


def test_consent_mail_arrives_over_smtp_and_its_link_works_once(login_as, client, runner, smtp):
    login_as("staff")
    new_client(client)
    client.post("/logout")
    result = runner.invoke(args=["outbox", "send"])
    assert result.exit_code == 0, result.output
    [mail] = smtp.received
    assert mail["To"] == "kari@nykunde.example"
    assert "Ny Kunde AS" in mail["Subject"]
    body = mail.get_content()
    path = re.search(r"http://testserver(/samtykke/\S+)", body).group(1)
    assert client.post(path, data={"accept": "1"}).status_code == 200
    assert client.post(path, data={"accept": "1"}).status_code == 410
    db.session.expire_all()
    created = db.session.scalar(select(Client).where(Client.org_number == "974760673"))
    assert created.consent_status is ConsentStatus.GIVEN


def test_the_parts_of_the_client_page_share_no_name():
    """The page is combined from one class per tab; a name in two of them would depend on the order of combining."""
    from admin_views.client_page import PARTS

    seen: dict[str, str] = {}
    for part in PARTS:
        for name in vars(part):
            if name.startswith("__"):
                continue
            assert name not in seen, f"{name} is in {seen.get(name)} and {part.__name__}"
            seen[name] = part.__name__
