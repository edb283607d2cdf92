"""The alerts grid in real Chromium: "Kvitter ut" on a row and as a bulk action removes the alert from the open list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from extensions import db
from models import AlertKind, RegistryAlert, StaffRole
from tests.test_browser import browser, csp_violations, live_server, log_in  # noqa: F401 - the Chromium fixtures


def make_alert(client, kind: AlertKind, minutes: int, details: dict) -> int:
    alert = RegistryAlert(
        bureau_id=client.bureau_id,
        client_id=client.id,
        kind=kind,
        change_key=f"k{minutes}",
        org_number=client.org_number,
        client_name=client.name,
        details=details,
        register_date=date(2026, 11, 30),
        seen_at=datetime.now(UTC) - timedelta(minutes=minutes),
    )
    db.session.add(alert)
    db.session.commit()
    return alert.id


def acknowledged_by(alert_id: int) -> int | None:
    db.session.rollback()
    value = db.session.get(RegistryAlert, alert_id).acknowledged_by_id
    db.session.rollback()
    return value


def test_acknowledging_in_the_grid_removes_alerts_from_the_open_list(
    app,
    live_server,  # noqa: F811 - the fixture
    browser,  # noqa: F811 - the fixture
    bureau,
    make_staff,
    make_client,
):
    staff = make_staff(bureau, StaffRole.STAFF)
    row_alert = make_alert(make_client(name="Konkurs Kunde AS"), AlertKind.BANKRUPT, 1, {"previous": "active"})
    bulk_alert = make_alert(
        make_client(name="Navnebytte Kunde AS"),
        AlertKind.NAME_CHANGED,
        2,
        {"old": "Navnebytte Kunde AS", "new": "NY AS"},
    )
    log_in(browser, live_server, staff)
    wait = WebDriverWait(browser, 10)
    browser.get(live_server + "/admin/alerts/?flt0_0=open")
    assert "Konkurs Kunde AS" in browser.page_source and "Navnebytte Kunde AS → NY AS" in browser.page_source

    # The row's "Kvitter ut" button.
    browser.find_element(By.CSS_SELECTOR, f'button[data-acknowledge="{row_alert}"]').click()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f'button[data-acknowledge="{row_alert}"]'))
    assert "Konkurs Kunde AS" not in browser.page_source
    assert acknowledged_by(row_alert) == staff.id and acknowledged_by(bulk_alert) is None

    # The bulk action: tick the row, "Med valgte" → "Kvitter ut", accept the confirmation.
    browser.find_element(By.CSS_SELECTOR, f'input.action-checkbox[value="{bulk_alert}"]').click()
    action = browser.find_element(By.CSS_SELECTOR, 'a[data-model-action="acknowledge"]')
    action.find_element(By.XPATH, "../preceding-sibling::a").click()
    wait.until(ec.element_to_be_clickable(action)).click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f'button[data-acknowledge="{bulk_alert}"]'))
    assert acknowledged_by(bulk_alert) == staff.id
    assert "Navnebytte Kunde AS" not in browser.page_source
    assert csp_violations(browser) == []

    # Still listed, as acknowledged, without the button.
    browser.get(live_server + "/admin/alerts/?flt0_0=acknowledged")
    assert "Konkurs Kunde AS" in browser.page_source and "data-acknowledge" not in browser.page_source
