"""The Oversikt tab's own forms for the company and the contact person: the rules of the generic forms still hold."""

from __future__ import annotations

from sqlalchemy import func, select

from extensions import db
from models import AuditEntry, Client, ContactRole, Person, PersonKind, StaffRole
from tests.conftest import internal_client
from tests.test_admin import page


def company(record: Client, **overrides) -> dict:
    data = {
        "name": record.name,
        "org_number": record.org_number or "",
        "organisation_form": "AS",
        "template": "",
        "business_address_lines": "Storgata 1",
        "business_postal_code": "8006",
        "business_city": "Bodø",
        "business_country_code": "NO",
        "postal_address_lines": "",
        "postal_postal_code": "",
        "postal_city": "",
        "postal_country_code": "",
        "email": "post@kunde.example",
        "phone": "",
        "version_check": str(record.version),
    }
    data.update(overrides)
    return data


def fresh(record_id: int) -> Client:
    db.session.expire_all()
    return db.session.get(Client, record_id)


def test_the_company_card_opens_as_a_form_with_countries_by_name(login_as, client, make_client):
    login_as("staff")
    record = make_client(name="Bodø Bygg AS")
    text = page(client.get(f"/admin/clients/manage/?id={record.id}"))
    assert f"/admin/clients/manage/?id={record.id}&amp;edit=company" in text
    assert "/admin/clients/edit/" not in text and "/admin/persons/edit/" not in text  # no generic forms
    form = page(client.get(f"/admin/clients/manage/?id={record.id}&edit=company"))
    assert 'id="company-form"' in form
    assert '<option value="SE">Sverige</option>' in form and '<option value="DE">Tyskland</option>' in form
    assert "Lagre og legg til en annen" not in form and "btn-danger" not in form


def test_staff_and_admin_save_the_company_and_the_history_records_it(login_as, client, make_client):
    for role in ("staff", "admin"):
        login_as(role)
        record = make_client(name=f"Før {role} AS")
        response = client.post(
            f"/admin/clients/company/?id={record.id}",
            data=company(record, name=f"Etter {role} AS", postal_country_code="SE", postal_city="Malmö"),
        )
        assert response.status_code == 302, page(response)
        stored = fresh(record.id)
        assert (stored.name, stored.postal_country_code, stored.postal_city) == (f"Etter {role} AS", "SE", "Malmö")
        assert stored.business_address_lines == "Storgata 1" and stored.email == "post@kunde.example"
        changes = db.session.scalars(
            select(AuditEntry.changes).where(AuditEntry.entity == "clients", AuditEntry.entity_id == record.id)
        ).all()
        assert any("name" in change for change in changes)
    overview = page(client.get(f"/admin/clients/manage/?id={record.id}"))
    assert "Sverige" in overview and "Malmö" in overview


def test_hostile_company_values_change_nothing(login_as, client, make_client):
    login_as("staff")
    taken = make_client(name="Tatt AS")
    record = make_client(name="Uendret AS")
    before = fresh(record.id).version
    hostile = [
        ({"business_country_code": "XX"}, "Ikke et gyldig valg"),
        ({"postal_country_code": "no' OR 1=1"}, "Ikke et gyldig valg"),
        ({"org_number": "123456789"}, "organisasjonsnummer"),
        ({"org_number": taken.org_number}, "har allerede dette organisasjonsnummeret"),
        ({"name": ""}, "Dette feltet er påkrevd"),
        ({"name": "x" * 201}, "200"),
        ({"email": "ikke-epost"}, "e-post"),
        ({"template": "999999"}, "kundemal"),
        ({"is_demo": "y", "name": "Uendret AS"}, None),  # not a field of this form: ignored
    ]
    for overrides, message in hostile:
        response = client.post(f"/admin/clients/company/?id={record.id}", data=company(record, **overrides))
        assert response.status_code in (200, 302), overrides
        if message is not None:
            assert message.lower() in page(response).lower(), (overrides, page(response)[-2000:])
        stored = fresh(record.id)
        assert stored.name == "Uendret AS" and stored.business_country_code in (None, "NO"), overrides
        assert stored.org_number == record.org_number and stored.is_demo is False, overrides
    assert f"/admin/clients/manage/?id={taken.id}" in page(
        client.post(f"/admin/clients/company/?id={record.id}", data=company(record, org_number=taken.org_number))
    )
    assert fresh(record.id).version in (before, before + 1)  # only the accepted business address change


def test_a_bad_country_code_is_refused_by_the_service_too(app, make_client):
    from services.clients import update_company
    from services.errors import DomainError

    record = make_client()
    try:
        update_company(db.session, record, {"business_country_code": "XX"})
    except DomainError as exc:
        assert "XX" in str(exc)
    else:
        raise AssertionError("XX was accepted")
    db.session.rollback()
    assert fresh(record.id).business_country_code is None


def test_another_bureaus_client_is_not_found(login_as, client, make_bureau, make_client, make_person):
    login_as("admin")
    foreign = make_client(bureau=make_bureau(), name="Hemmelig AS")
    contact = make_person(foreign, PersonKind.PERSON, first_name="Hemmelig")
    foreign.contact_person = contact
    db.session.commit()
    assert client.get(f"/admin/clients/manage/?id={foreign.id}&edit=company").status_code == 404
    assert client.get(f"/admin/clients/edit/?id={foreign.id}").status_code == 404
    assert client.post(f"/admin/clients/company/?id={foreign.id}", data=company(foreign, name="X")).status_code == 404
    response = client.post(
        f"/admin/clients/contact/?id={foreign.id}",
        data={"first_name": "Endret", "last_name": "X", "role": "daglig_leder"},
    )
    assert response.status_code == 404
    assert fresh(foreign.id).name == "Hemmelig AS" and db.session.get(Person, contact.id).first_name == "Hemmelig"


def test_a_double_submit_saves_once_and_says_so_twice(login_as, client, make_client):
    login_as("staff")
    record = make_client(name="Dobbel AS")
    data = company(record, name="Dobbelt lagret AS")
    first = client.post(f"/admin/clients/company/?id={record.id}", data=data)
    second = client.post(f"/admin/clients/company/?id={record.id}", data=data, follow_redirects=True)
    assert first.status_code == 302
    assert "Ingenting ble endret" in page(second)  # the twin finds its change made, not a conflict
    stored = fresh(record.id)
    assert stored.name == "Dobbelt lagret AS"
    edits = db.session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.entity == "clients", AuditEntry.entity_id == record.id, AuditEntry.action == "update")
    )
    assert edits == 1


def test_a_stale_company_form_is_refused(login_as, client, make_client):
    login_as("staff")
    record = make_client(name="Original AS")
    data = company(record, name="Min versjon AS")
    record.name = "Noen andre AS"
    db.session.commit()
    response = client.post(f"/admin/clients/company/?id={record.id}", data=data)
    assert "Noen andre lagret" in page(response)
    assert fresh(record.id).name == "Noen andre AS"


def test_the_contact_card_edits_the_contact_and_its_role(login_as, client, make_client, make_person):
    login_as("staff")
    record = make_client()
    contact = make_person(record, PersonKind.PERSON, first_name="Kari", email="kari@kunde.example")
    record.contact_person, record.contact_role = contact, ContactRole.CEO
    db.session.commit()
    form = page(client.get(f"/admin/clients/manage/?id={record.id}&edit=contact"))
    assert 'id="contact-form"' in form and 'value="Kari"' in form
    response = client.post(
        f"/admin/clients/contact/?id={record.id}",
        data={
            "person": str(contact.id),
            "first_name": "Kari",
            "last_name": "Nordmann",
            "email": "KARI@ny.example",
            "phone": "+47 900 00 000",
            "role": "styreleder",
            "version_check": str(record.version),
        },
    )
    assert response.status_code == 302, page(response)
    stored = fresh(record.id)
    person = db.session.get(Person, contact.id)
    assert stored.contact_role is ContactRole.CHAIR
    assert (person.last_name, person.email, person.phone) == ("Nordmann", "kari@ny.example", "+47 900 00 000")


def test_a_client_without_contact_gets_one_and_another_person_can_take_over(login_as, client, make_client, make_person):
    login_as("staff")
    record = make_client()
    response = client.post(
        f"/admin/clients/contact/?id={record.id}",
        data={"first_name": "Ny", "last_name": "Kontakt", "email": "ny@kunde.example", "role": "daglig_leder"},
    )
    assert response.status_code == 302, page(response)
    first = fresh(record.id).contact_person
    assert first is not None and first.kind is PersonKind.PERSON and first.client_id == record.id
    other = make_person(record, PersonKind.PERSON, first_name="Overtar")
    response = client.post(
        f"/admin/clients/contact/?id={record.id}",
        data={"person": str(other.id), "first_name": "", "last_name": "", "role": "styreleder"},
    )
    assert response.status_code == 302, page(response)
    stored = fresh(record.id)
    assert stored.contact_person_id == other.id and stored.contact_role is ContactRole.CHAIR
    assert db.session.get(Person, first.id).first_name == "Ny"  # the old contact is left as it was


def test_the_contact_must_be_one_of_the_clients_live_people(login_as, client, make_client, make_person):
    login_as("staff")
    record, elsewhere = make_client(), make_client()
    stranger = make_person(elsewhere, PersonKind.PERSON)
    archived = make_person(record, PersonKind.PERSON)
    from services import archive

    archive.archive(db.session, archived, actor=None)
    db.session.commit()
    for person in (stranger, archived):
        response = client.post(
            f"/admin/clients/contact/?id={record.id}",
            data={"person": str(person.id), "first_name": "", "last_name": "", "role": "styreleder"},
            follow_redirects=True,
        )
        assert "Kontaktpersonen må være en av personene hos denne klienten" in page(response)
        assert fresh(record.id).contact_person_id is None


def test_staff_may_not_rename_a_staff_member_through_the_contact_card(login_as, client, make_staff, bureau, login):
    colleague = make_staff(bureau, StaffRole.ADMIN, first_name="Sjef")
    internal = internal_client(bureau)
    internal.contact_person, internal.contact_role = colleague.person, ContactRole.CEO
    db.session.commit()
    data = {
        "person": str(colleague.person_id),
        "first_name": "Omdøpt",
        "last_name": "Testesen",
        "email": colleague.person.email,
        "role": "daglig_leder",
    }
    login(make_staff(bureau, StaffRole.ADMIN))  # an administrator may
    response = client.post(f"/admin/clients/contact/?id={internal.id}", data=data)
    assert response.status_code == 302, page(response)
    db.session.expire_all()
    assert db.session.get(Person, colleague.person_id).first_name == "Omdøpt"
    client.post("/logout")
    login_as("staff")  # ordinary staff may not
    response = client.post(
        f"/admin/clients/contact/?id={internal.id}", data={**data, "first_name": "Sjef"}, follow_redirects=True
    )
    assert "Bare en byråadministrator" in page(response)
    db.session.expire_all()
    assert db.session.get(Person, colleague.person_id).first_name == "Omdøpt"


def test_an_archived_client_offers_no_forms(login_as, client, make_client):
    from services import archive

    admin = login_as("admin")
    record = make_client(name="Frosset AS")
    archive.archive(db.session, record, actor=admin)
    db.session.commit()
    text = page(client.get(f"/admin/clients/manage/?id={record.id}&edit=company"))
    assert 'id="company-form"' not in text and 'id="edit-company"' not in text and 'id="edit-contact"' not in text


def test_a_double_submit_of_the_contact_card_saves_once(login_as, client, make_client, make_person):
    login_as("staff")
    record = make_client()
    contact = make_person(record, PersonKind.PERSON, first_name="Kari", email="kari@kunde.example")
    record.contact_person, record.contact_role = contact, ContactRole.CEO
    db.session.commit()
    data = {
        "person": str(contact.id),
        "first_name": "Kari",
        "last_name": "Nordmann",
        "email": "kari@kunde.example",
        "role": "styreleder",
        "version_check": str(record.version),
    }
    assert client.post(f"/admin/clients/contact/?id={record.id}", data=data).status_code == 302
    second = client.post(f"/admin/clients/contact/?id={record.id}", data=data, follow_redirects=True)
    assert "Ingenting ble endret" in page(second) and "Noen andre lagret" not in page(second)
    stored = fresh(record.id)
    assert stored.contact_role is ContactRole.CHAIR and db.session.get(Person, contact.id).last_name == "Nordmann"
