"""Real Chromium: add-ons and single permissions are checkbox lists (no Ctrl-click), and "Tilpass tilgang" follows
the boxes ticked. Uses the Chromium setup of tests/test_browser.py."""

from __future__ import annotations

from models import PackageKind, StaffRole
from tests import test_browser as chromium
from tests.test_browser import By, WebDriverWait, ec, log_in

browser = chromium.browser
live_server = chromium.live_server


def test_two_addons_are_ticked_without_ctrl_click(
    app, live_server, browser, bureau, make_staff, make_client, make_package, make_permission
):
    invoicing_right = make_permission(code="FAKT_R", name="Fakturere")
    bank_right = make_permission(code="BANK_R", name="Betale")
    make_package(code="FAKT", name="Fakturering", kind=PackageKind.ADDON, permissions=[invoicing_right])
    make_package(code="BANK", name="Bank", kind=PackageKind.ADDON, permissions=[bank_right])
    customer = make_client()
    staff = make_staff(bureau, StaffRole.STAFF)
    log_in(browser, live_server, staff)
    browser.get(live_server + f"/admin/clients/people/add/user/?id={customer.id}")
    wait = WebDriverWait(browser, 10)
    boxes = wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, '#addon_packages input[type="checkbox"]')))
    assert len(boxes) == 2 and not browser.find_elements(By.CSS_SELECTOR, "select[multiple]")
    for box in boxes:
        box.click()  # a plain click each: both stay ticked
    assert all(box.is_selected() for box in boxes)
    browser.find_element(By.CSS_SELECTOR, "#access-fields ~ details summary").click()
    rights = browser.find_element(By.ID, "resulting-rights")
    wait.until(lambda d: {"Fakturere", "Betale"} <= set(rights.text.split("\n")))
