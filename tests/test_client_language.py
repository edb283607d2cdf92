"""A client's own people read its language: the consent and invitation e-mails, and the pages their links open.

Clients on the Swedish customer template get Swedish (translations/sv), through the outbox to a real SMTP server;
Norwegian clients keep Norwegian; the staff UI stays Norwegian or English whatever the client's language.
"""

from __future__ import annotations

import re

from flask_babel import refresh
from sqlalchemy import select

from extensions import db
from models import Client, ConsentStatus, OutboxMessage, PersonKind, User, UserStatus
from services.invitations import invite_user
from services.outbox import deliver_due

SWEDISH_CONSENT = ("Hej Kari Nordmann,", "Samtycke till bokföring för Ny Kunde AB", "Med vänliga hälsningar")
NORWEGIAN_CONSENT = ("Samtykke til regnskapsføring", "Med vennlig hilsen")
ENGLISH_CONSENT = ("Consent to keeping", "Best regards", "Open this link")


def page(response) -> str:
    return response.get_data(as_text=True)


def get(client, url: str):
    """GET as a fresh request: forget the locale Flask-Babel cached on ``g`` (see tests/test_i18n.py)."""
    refresh()
    return client.get(url)


def post(client, url: str, data: dict):
    refresh()
    return client.post(url, data=data)


def new_client_form(template_id: int, **overrides) -> dict:
    return {
        "template": str(template_id),
        "name": "Ny Kunde AB",
        "org_number": "974 760 673",
        "business_country_code": "SE",
        "postal_country_code": "SE",
        "contact_first_name": "Kari",
        "contact_last_name": "Nordmann",
        "contact_email": "kari@nykunde.example",
        "contact_role": "daglig_leder",
        **overrides,
    }


def link_path(text: str, prefix: str) -> str:
    return re.search(rf"http://testserver({prefix}\S+)", text).group(1)


def test_swedish_client_gets_a_swedish_consent_email_through_the_outbox(login_as, client, make_template, smtp):
    login_as("staff")
    swedish = make_template(name="Svensk kundemal", country_code="SE", language="sv", currency="SEK")
    response = post(client, "/admin/clients/new/", new_client_form(swedish.id))
    assert response.status_code == 302, page(response)
    created = db.session.scalar(select(Client).where(Client.org_number == "974760673"))
    assert created.language == "sv"

    db.session.commit()
    assert deliver_due(db.session).sent == 1
    [received] = smtp.received
    body = received.get_content()
    assert received["To"] == "kari@nykunde.example"
    assert received["Subject"] == "Samtycke till bokföring för Ny Kunde AB"
    for phrase in SWEDISH_CONSENT[:1] + SWEDISH_CONSENT[2:]:
        assert phrase in body
    assert "Öppna länken för att godkänna eller avböja:" in body
    for phrase in NORWEGIAN_CONSENT + ENGLISH_CONSENT:
        assert phrase not in body and phrase not in received["Subject"]

    # The link opens a Swedish page; answering it says thank you in Swedish and records the consent.
    path = link_path(body, "/samtykke/")
    consent_page = get(client, path)
    assert consent_page.status_code == 200
    assert '<html lang="sv">' in page(consent_page)
    assert "Jag godkänner" in page(consent_page) and "Jeg samtykker" not in page(consent_page)
    done = post(client, path, {"accept": "1"})
    assert "Ditt samtycke för Ny Kunde AB är registrerat." in page(done)
    db.session.expire_all()
    assert created.consent_status is ConsentStatus.GIVEN
    # The used link says so in Swedish too.
    assert "Länken har redan använts" in page(get(client, path))

    # The staff member's own pages stayed Norwegian throughout.
    grid = page(get(client, "/admin/clients/"))
    assert "Klienter" in grid and 'lang="sv"' not in grid


def test_norwegian_client_keeps_norwegian_emails(login_as, client, make_template, smtp):
    login_as("staff")
    norwegian = make_template(name="Norsk standard", country_code="NO", language="nb", currency="NOK")
    response = post(client, "/admin/clients/new/", new_client_form(norwegian.id, name="Ny Kunde AS"))
    assert response.status_code == 302, page(response)
    db.session.commit()
    assert deliver_due(db.session).sent == 1
    [received] = smtp.received
    assert received["Subject"] == "Samtykke til regnskapsføring for Ny Kunde AS"
    assert "Med vennlig hilsen" in received.get_content()
    assert "Med vänliga hälsningar" not in received.get_content()


def test_swedish_invitation_and_its_page(app, client, make_client, make_person, smtp):
    customer = make_client(name="Malmö Bygg AB", language="sv")
    person = make_person(customer, PersonKind.USER, first_name="Sven", last_name="Svensson")
    user = User(bureau_id=customer.bureau_id, person=person, status=UserStatus.INVITED)
    db.session.add(user)
    db.session.commit()
    invite_user(db.session, user)
    db.session.commit()
    assert deliver_due(db.session).sent == 1
    [received] = smtp.received
    body = received.get_content()
    assert received["Subject"] == "Inbjudan till Malmö Bygg AB i ekonomisystemet"
    assert "Hej Sven Svensson," in body and "har skapat en användare åt dig hos Malmö Bygg AB" in body
    assert "Invitation to" not in received["Subject"] and "Invitasjon" not in received["Subject"]

    path = link_path(body, "/invitasjon/")
    invitation_page = page(get(client, path))
    assert "Välkommen till Malmö Bygg AB" in invitation_page
    assert "Förnamn" in invitation_page and "Upprepa lösenordet" in invitation_page
    assert "Fornavn" not in invitation_page and "First name" not in invitation_page
    # A refused password is explained in Swedish, WTForms' own messages included; nothing is activated.
    refused = page(post(client, path, {"first_name": "Sven", "last_name": "", "password": "kort", "confirm": "x"}))
    assert "Lösenordet måste vara minst" in refused
    assert "Lösenorden stämmer inte överens." in refused
    assert "Det här fältet är obligatoriskt." in refused
    db.session.expire_all()
    assert user.status is UserStatus.INVITED


def test_swedish_is_not_a_staff_language(login_as, client):
    login_as("staff")
    assert client.get("/language/sv").status_code == 302
    grid = page(get(client, "/admin/clients/"))
    assert 'lang="sv"' not in grid
    assert "Klienter" in grid


def test_a_swedish_link_page_does_not_change_the_staff_language(login_as, client, make_client):
    """The forced locale lasts for the link's page only: the next staff page in the same session is Norwegian."""
    login_as("staff")
    customer = make_client(name="Göteborg Data AB", language="sv")
    customer_id = customer.id
    assert get(client, "/samtykke/not-a-token").status_code == 404
    db.session.expire_all()
    page_after = page(get(client, f"/admin/clients/manage/?id={customer_id}"))
    assert "Oversikt" in page_after and "Översikt" not in page_after
    assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.client_id == customer_id)) is None


def test_an_unknown_or_missing_client_language_falls_back_to_norwegian():
    from services.links import client_locale

    assert [client_locale(code) for code in ("nb", "sv", "en")] == ["no", "sv", "en"]
    assert client_locale("fi") == client_locale(None) == client_locale("") == client_locale("SV ") == "no"
