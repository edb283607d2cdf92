"""Hjem in real Chromium: the alerts, the to-do counts, the numbers and the chart (SVG and table); "Kvitter ut"
removes an alert from the open list; nothing scrolls sideways at 390 px. With ``SCREENSHOTS=1`` the page is saved
as docs/hjem.png (the README's picture)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from extensions import db
from models import AlertKind, BillingMonth, ConsentStatus, PersonKind, RegistryAlert, StaffRole, UserStatus, utcnow
from services import home
from tests.test_browser import By, WebDriverWait, browser, live_server, log_in  # noqa: F401 - fixtures
from tests.test_browser_layout import OVERFLOW_SCRIPT, emulate, settle

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "hjem.png"


def demo_like(bureau, make_client, make_user, make_package, assign) -> list[RegistryAlert]:
    """A bureau with a year of closed months, clients waiting for consent, users ending soon and two alerts."""
    today, now = date.today(), utcnow()
    for index, period in enumerate(home._periods(today)[:-1]):
        db.session.add(
            BillingMonth(
                bureau_id=bureau.id,
                period=period,
                closed_by_label="Ingrid Nordlys",
                clients=20 + index,
                users=30 + 2 * index,
                rows=40 + index,
                amount=Decimal(9000 + 450 * index),
            )
        )
    package = make_package(price=Decimal("349.00"))
    customers = [make_client(name=name) for name in ("Fjordkraft Regnskap AS", "Tromsø Bakeri AS", "Bodø Helse AS")]
    for customer in customers:
        customer.consent_status = ConsentStatus.PENDING
        customer.consent_requested_at = now - timedelta(days=6)
        for _ in range(3):
            assign(make_user(customer, status=UserStatus.ACTIVE), package, valid_from=today.replace(day=1))
    make_client(name="Demo Bakeri AS", is_demo=True)
    make_user(customers[0], PersonKind.EXTERNAL_USER, status=UserStatus.ACTIVE, end_date=today + timedelta(days=12))
    alerts = []
    for key, (kind, customer) in enumerate(
        ((AlertKind.BANKRUPT, customers[1]), (AlertKind.NAME_CHANGED, customers[2]))
    ):
        row = RegistryAlert(
            bureau_id=bureau.id,
            client_id=customer.id,
            kind=kind,
            change_key=str(key),
            org_number=customer.org_number,
            client_name=customer.name,
            details={"old": customer.name, "new": "Bodø Helse og Omsorg AS"} if kind is AlertKind.NAME_CHANGED else {},
            seen_at=now - timedelta(hours=key),
        )
        db.session.add(row)
        alerts.append(row)
    db.session.commit()
    return alerts


def save_whole_page(driver, path: Path) -> None:
    """The whole page (not only the window) as a PNG, scaled down to keep the file small."""
    import base64

    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 0.6},
        },
    )
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture
def demo_alerts(bureau, make_client, make_user, make_package, assign) -> list[RegistryAlert]:
    return demo_like(bureau, make_client, make_user, make_package, assign)


def test_home_alerts_counts_chart_acknowledge(app, live_server, browser, bureau, make_staff, demo_alerts):  # noqa: F811
    alerts = demo_alerts
    staff = make_staff(bureau, StaffRole.STAFF, first_name="Siri")
    # Read before logging in: a lazy load later would open a transaction that holds SQLite's lock (IMMEDIATE).
    alert_ids, staff_id = [alert.id for alert in alerts], staff.id
    log_in(browser, live_server, staff)
    browser.get(live_server + "/admin/")
    settle(browser)
    shown = [item.get_attribute("data-alert") for item in browser.find_elements(By.CSS_SELECTOR, ".home-alert")]
    assert shown == [str(alert_ids[0]), str(alert_ids[1])]  # newest first
    todo = {
        item.get_attribute("data-todo"): item.get_attribute("data-count")
        for item in browser.find_elements(By.CSS_SELECTOR, ".home-todo")
    }
    assert todo["consent_pending"] == "3" and todo["expiring"] == "1"
    number = {
        item.get_attribute("data-number"): item.find_element(By.CSS_SELECTOR, ".home-number-value").text
        for item in browser.find_elements(By.CSS_SELECTOR, ".home-number")
    }
    assert number["demo_clients"] == "1" and number["billable_users"] == "9"
    assert number["billing_amount"].replace("\u00a0", " ") == "3 141,00 kr"  # 9 users × 349,00 kr
    svg = browser.find_element(By.ID, "home-chart-svg")
    assert svg.get_attribute("role") == "img"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#home-chart-svg g.home-bar rect")) == 12
    assert len(browser.find_elements(By.CSS_SELECTOR, "#home-chart-table tbody tr")) == 12
    running = browser.find_element(By.CSS_SELECTOR, '#home-chart-table tr[data-state="running"]')
    assert "så langt" in running.get_attribute("textContent")

    if os.environ.get("SCREENSHOTS") == "1":
        save_whole_page(browser, SCREENSHOT)

    # "Kvitter ut" on the newest alert: it leaves the open list, the other stays.
    browser.find_element(By.CSS_SELECTOR, f'.home-alert[data-alert="{alert_ids[0]}"] button').click()
    WebDriverWait(browser, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".home-alert")) == 1)
    assert browser.find_element(By.CSS_SELECTOR, ".home-alert").get_attribute("data-alert") == str(alert_ids[1])
    assert browser.find_element(By.ID, "home-alert-count").text == "1"
    db.session.expire_all()
    stored = db.session.get(RegistryAlert, alert_ids[0])
    assert stored.acknowledged_at is not None and stored.acknowledged_by_id == staff_id
    assert db.session.get(RegistryAlert, alert_ids[1]).acknowledged_at is None
    db.session.rollback()

    # On a phone nothing sticks out sideways; the chart scales down with the page.
    emulate(browser, (390, 844))
    browser.get(live_server + "/admin/")
    settle(browser)
    scroll_width, width, wide = browser.execute_script(OVERFLOW_SCRIPT, 390)
    assert scroll_width <= width and wide == [], wide
    chart_width = browser.execute_script(
        "return document.getElementById('home-chart-svg').getBoundingClientRect().width"
    )
    assert 0 < chart_width <= 390
