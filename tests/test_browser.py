"""Real Chromium clicks through "+ Ny kunde": typeahead from the register emulator, keyboard choice, create.

Needs Debian's chromium and chromium-driver (``.ci/run`` installs them); skipped without them unless CI=true.
"""

import os
import shutil
import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from extensions import db
from models import Client, StaffRole
from tests.conftest import PASSWORD

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI") == "true":
        raise RuntimeError("chromium and chromedriver are required under CI=true")
    pytest.skip("chromium/chromedriver not installed", allow_module_level=True)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, CSP violations included
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(browser, live_server, user):
    email = user.person.email
    # The live server runs in other threads with its own sessions: on SQLite this test's open transaction
    # would hold the write lock they need.
    db.session.rollback()
    browser.get(live_server + "/login")
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
    WebDriverWait(browser, 10).until(ec.url_contains("/admin/"))


def test_new_client_by_typing_part_of_a_name(app, live_server, browser, bureau, make_staff, tmp_path):
    staff = make_staff(bureau, StaffRole.STAFF)
    log_in(browser, live_server, staff)
    browser.get(live_server + "/admin/clients/")
    browser.find_element(By.LINK_TEXT, "+ Ny kunde").click()
    wait = WebDriverWait(browser, 10)
    query = wait.until(ec.element_to_be_clickable((By.ID, "company_query")))
    query.send_keys("regnskap")
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#company-suggestions li")))
    options = browser.find_elements(By.CSS_SELECTOR, "#company-suggestions li")
    assert len(options) >= 5
    # keyboard: down twice, then Enter picks the option marked as selected
    query.send_keys(Keys.ARROW_DOWN)
    chosen = browser.find_element(By.CSS_SELECTOR, '#company-suggestions li[aria-selected="true"]')
    chosen_name = chosen.find_element(By.TAG_NAME, "div").text
    assert query.get_attribute("aria-activedescendant") == chosen.get_attribute("id")
    query.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_element(By.ID, "name").get_attribute("value") == chosen_name)
    org_number = browser.find_element(By.ID, "org_number").get_attribute("value")
    assert len(org_number) == 9
    assert browser.find_element(By.ID, "business_city").get_attribute("value")
    assert "registeret" in browser.find_element(By.ID, "registry-status").text.lower()

    browser.find_element(By.ID, "contact_first_name").send_keys("Kari")
    browser.find_element(By.ID, "contact_last_name").send_keys("Nordmann")
    browser.find_element(By.ID, "contact_email").send_keys("kari@example.no")
    browser.find_element(By.CSS_SELECTOR, 'input[name="contact_role"][value="daglig_leder"]').click()
    browser.save_screenshot(str(tmp_path / "new-client.png"))
    browser.find_element(By.ID, "create-client").click()
    wait.until(ec.url_contains("/admin/clients/manage/"))
    assert chosen_name in browser.page_source
    db.session.rollback()
    created = db.session.scalar(select(Client).where(Client.org_number == org_number))
    assert created is not None and created.name == chosen_name and created.business_city


def test_role_holders_are_offered_as_contact_person(app, live_server, browser, bureau, make_staff):
    staff = make_staff(bureau, StaffRole.STAFF)
    log_in(browser, live_server, staff)
    browser.get(live_server + "/admin/clients/new/")
    wait = WebDriverWait(browser, 10)
    query = wait.until(ec.element_to_be_clickable((By.ID, "company_query")))
    query.send_keys("914375916")
    first = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#company-suggestions li")))
    first.click()
    suggestion = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#role-suggestions button")))
    suggestion.click()
    assert browser.find_element(By.ID, "contact_first_name").get_attribute("value")
    assert browser.find_element(By.ID, "contact_last_name").get_attribute("value")
    checked = browser.find_element(By.CSS_SELECTOR, 'input[name="contact_role"]:checked').get_attribute("value")
    assert checked in {"daglig_leder", "styreleder"}


def test_register_down_keeps_manual_entry(app, live_server, browser, bureau, make_staff):
    app.config["BRREG_BASE_URL"] = "http://127.0.0.1:9"
    app.extensions.pop("registry", None)
    staff = make_staff(bureau, StaffRole.STAFF)
    log_in(browser, live_server, staff)
    browser.get(live_server + "/admin/clients/new/")
    wait = WebDriverWait(browser, 15)
    browser.find_element(By.ID, "name").send_keys("Helt Ny Bedrift AS")
    query = browser.find_element(By.ID, "company_query")
    query.send_keys("helt ny")
    wait.until(lambda d: "svarer ikke" in d.find_element(By.ID, "registry-status").text)
    assert browser.find_element(By.ID, "name").get_attribute("value") == "Helt Ny Bedrift AS"


# --- the UI under the Content-Security-Policy (no inline scripts) -----------------------------------


def csp_violations(browser) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]
    ]


def test_main_pages_run_without_csp_violations(app, live_server, browser, bureau, make_staff, make_client):
    customer_id = make_client().id
    staff = make_staff(bureau, StaffRole.ADMIN)
    db.session.rollback()
    browser.get(live_server + "/login")
    assert csp_violations(browser) == []
    log_in(browser, live_server, staff)
    pages = [
        "/admin/",
        "/admin/clients/",
        "/admin/clients/new/",
        f"/admin/clients/manage/?id={customer_id}",
        "/admin/persons/",
        "/admin/users/",
        "/admin/packages/",
        "/admin/billing/",
    ]
    for path in pages:
        browser.get(live_server + path)
        WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
        assert csp_violations(browser) == [], path
    # jQuery and Bootstrap ran (scripts allowed by 'self' and the nonce): the filter menu opens and adds a filter.
    browser.get(live_server + "/admin/clients/")
    filters = browser.find_elements(By.CSS_SELECTOR, "a.filter[data-prevent-default]")
    assert filters
    filters[0].find_element(By.XPATH, "../preceding-sibling::a").click()
    WebDriverWait(browser, 5).until(ec.element_to_be_clickable(filters[0])).click()
    WebDriverWait(browser, 5).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".filters input, .filters select"))
    assert csp_violations(browser) == []


def test_bulk_action_and_confirm_button_work_under_the_csp(app, live_server, browser, bureau, make_staff, make_client):
    bulk_id, button_id = make_client().id, make_client().id
    staff = make_staff(bureau, StaffRole.ADMIN)
    log_in(browser, live_server, staff)  # ends this test's transaction; each check below ends its own again

    def is_demo(client_id: int) -> bool:
        db.session.rollback()
        value = db.session.get(Client, client_id).is_demo
        db.session.rollback()
        return value

    wait = WebDriverWait(browser, 10)

    # Bulk action: tick a row, "With selected" → "Mark as demo", accept the confirmation.
    browser.get(live_server + "/admin/clients/")
    browser.find_element(By.CSS_SELECTOR, f'input.action-checkbox[value="{bulk_id}"]').click()
    action = browser.find_element(By.CSS_SELECTOR, 'a[data-model-action="mark_demo"]')
    action.find_element(By.XPATH, "../preceding-sibling::a").click()
    wait.until(ec.element_to_be_clickable(action)).click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(
        lambda d: "demo" in d.page_source.lower() and d.execute_script("return document.readyState") == "complete"
    )
    assert is_demo(bulk_id) is True
    assert is_demo(button_id) is False

    # Row button with data-confirm: dismissing changes nothing, accepting marks the client.
    browser.get(live_server + "/admin/clients/")
    row_button = f'form[action$="/action/"] input[name="rowid"][value="{button_id}"] ~ button[data-confirm]'
    browser.find_element(By.CSS_SELECTOR, row_button).click()
    wait.until(ec.alert_is_present()).dismiss()
    assert is_demo(button_id) is False
    browser.find_element(By.CSS_SELECTOR, row_button).click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, row_button))
    assert is_demo(button_id) is True
    assert csp_violations(browser) == []
