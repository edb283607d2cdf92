"""Real Chromium reads the client page's history and the Hendelseslogg as a bureau user would: labels and names,
no column names, no tokens (the browser setup of tests/test_browser.py)."""

# ruff: noqa: F811 - the browser fixtures are imported from tests/test_browser.py and named as parameters

from __future__ import annotations

import re

from sqlalchemy import select

from extensions import db
from models import Client, PersonKind, User, UserStatus
from services.audit import acting_as
from services.invitations import invite_user
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, live_server, log_in  # noqa: F401 - fixtures
from tests.test_history import make_bodo

COLUMN_NAMES = re.compile(r"consent_nonce|invitation_nonce|bureau_id|registry_checked_at|password_hash|\w+_id\b")
RAW_VALUES = re.compile(r"\b(True|False|None|pending|daglig_leder|reseller_user|external_user)\b|\d{4}-\d\d-\d\dT")


def visible_text(driver) -> str:
    return driver.execute_script("return document.body.innerText")


def test_history_and_event_log_show_no_column_names_and_no_tokens(
    app, live_server, browser, bureau, make_staff, make_user
):
    assert CHROMIUM and CHROMEDRIVER
    client, staff = make_bodo(bureau, make_staff)
    with acting_as(staff):
        user = make_user(client, PersonKind.USER, status=UserStatus.INVITED)
        invite_user(db.session, user, actor=staff)
        client.contact_person_id = user.person_id
        client.email = "fakturamottak.regnskapsavdelingen.hovedkontoret@bodo-bygg-eiendom-og-utvikling.example"
        db.session.commit()
    secrets = [client.consent_nonce, db.session.get(User, user.id).invitation_nonce, user.session_token]
    assert all(secrets)
    log_in(browser, live_server, staff)

    browser.get(f"{live_server}/admin/clients/manage/?id={client.id}")
    browser.find_element("id", "all-history").click()  # Oversikt shows the latest; the Historikk tab all of it
    history = browser.find_element("id", "history").text
    assert "Bodø Bygg AS (910000012)" in history and "Kontaktperson: Kari Nordmann →" in history
    assert "Samtykkelenke: (endret)" in history

    browser.get(f"{live_server}/admin/auditlog/")
    log = visible_text(browser)
    assert "Bodø Bygg AS (910000012)" in log and "Bedriftsoppslag: Nei → Ja" in log

    for text in (visible_text(browser), history):
        assert not COLUMN_NAMES.search(text), COLUMN_NAMES.search(text)
        assert not RAW_VALUES.search(text), RAW_VALUES.search(text)
        for secret in secrets:
            assert secret not in text

    # At phone width the client page's history wraps within the screen (long names, e-mails and addresses too).
    browser.set_window_size(390, 844)
    browser.get(f"{live_server}/admin/clients/manage/?id={client.id}&tab=history")
    fits = browser.execute_script(
        "const h = document.getElementById('history');"
        "return [h.scrollWidth <= h.clientWidth, h.getBoundingClientRect().right <= window.innerWidth];"
    )
    assert fits == [True, True]

    db.session.rollback()
    assert db.session.scalar(select(Client.name).where(Client.id == client.id)) == "Bodø Bygg AS"
