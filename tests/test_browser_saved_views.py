"""Real Chromium keeps a grid's filters and sort as a saved view, opens it from the menu and as the default (the
browser setup of tests/test_browser.py)."""

# ruff: noqa: F811 - the browser fixtures are imported from tests/test_browser.py and named as parameters

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from extensions import db
from models import SavedView, SavedViewDefault
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, live_server, log_in  # noqa: F401 - fixtures


def names_in_grid(driver) -> list[str]:
    cells = driver.find_elements(By.CSS_SELECTOR, "table.model-list td.col-name")
    # A demo client's name and the internal client's carry a badge.
    return [cell.text.removesuffix("Demo").removesuffix("Intern").strip() for cell in cells]


def args(driver) -> dict[str, list[str]]:
    return parse_qs(urlsplit(driver.current_url).query)


def test_a_saved_view_restores_filters_and_sort_from_the_menu_and_as_the_default(
    app, live_server, browser, bureau, make_staff, make_client
):
    assert CHROMIUM and CHROMEDRIVER
    staff = make_staff(bureau)
    for name, demo in (("Alfa Demo AS", True), ("Beta Demo AS", True), ("Gamma Ekte AS", False)):
        make_client(name=name, is_demo=demo)
    log_in(browser, live_server, staff)
    wait = WebDriverWait(browser, 10)

    # Filter (demo clients only, as a link from Hjem would) and sort by name, descending, in the grid.
    browser.get(f"{live_server}/admin/clients/?flt0_0=1")
    browser.find_element(By.CSS_SELECTOR, "th.col-name a").click()
    wait.until(lambda d: "sort" in args(d))
    browser.find_element(By.CSS_SELECTOR, "th.col-name a").click()
    wait.until(lambda d: "desc" in args(d))
    assert names_in_grid(browser) == ["Beta Demo AS", "Alfa Demo AS"]

    # "Lagre visning": opened and filled in by keyboard.
    summary = browser.find_element(By.CSS_SELECTOR, "details.saved-view-save summary")
    summary.send_keys(Keys.ENTER)
    field = browser.find_element(By.ID, "saved-view-name")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=saved-view-name]").text == "Navn på visningen"
    field.send_keys("Demokunder Å–Z", Keys.ENTER)
    wait.until(lambda d: "lagret" in d.find_element(By.CSS_SELECTOR, ".alert").text)
    db.session.rollback()
    [view] = db.session.scalars(select(SavedView)).all()
    assert (view.name, view.owner_id, view.shared) == ("Demokunder Å–Z", staff.id, False)
    db.session.rollback()  # the live server's threads write: this test holds no transaction open meanwhile

    # Away, back to the plain list, and the view from the menu.
    browser.get(f"{live_server}/admin/users/")
    browser.get(f"{live_server}/admin/clients/?page_size=50")
    assert names_in_grid(browser) == ["Alfa Demo AS", "Beta Demo AS", "Gamma Ekte AS", "Testbyrå AS"]
    browser.find_element(By.ID, "saved-views-toggle").click()
    link = wait.until(ec.element_to_be_clickable((By.LINK_TEXT, "Demokunder Å–Z")))
    link.click()
    wait.until(lambda d: "flt0_0" in args(d))
    assert args(browser) == {"flt0_0": ["1"], "sort": ["0"], "desc": ["1"], "page_size": ["50"]}
    assert names_in_grid(browser) == ["Beta Demo AS", "Alfa Demo AS"]
    assert browser.find_element(By.CSS_SELECTOR, ".saved-view-link.active").get_attribute("aria-current") == "true"

    # Set it as the default, then open the bare grid: the view applies; "no view" gives the plain list back.
    browser.find_element(By.ID, "saved-views-toggle").click()
    wait.until(ec.element_to_be_clickable((By.ID, "saved-views-manage"))).click()
    browser.find_element(By.XPATH, "//button[normalize-space()='Bruk som standard']").click()
    wait.until(lambda d: "åpnes nå" in d.find_element(By.CSS_SELECTOR, ".alert").text)
    db.session.rollback()
    assert [(d.user_id, d.grid, d.view_id) for d in db.session.scalars(select(SavedViewDefault))] == [
        (staff.id, "clients", view.id)
    ]
    db.session.rollback()
    browser.get(f"{live_server}/admin/clients/")
    wait.until(lambda d: "flt0_0" in args(d))
    assert names_in_grid(browser) == ["Beta Demo AS", "Alfa Demo AS"]
    browser.find_element(By.ID, "saved-views-toggle").click()
    wait.until(ec.element_to_be_clickable((By.LINK_TEXT, "Ingen visning (vanlig liste)"))).click()
    wait.until(lambda d: "flt0_0" not in args(d))
    assert names_in_grid(browser) == ["Alfa Demo AS", "Beta Demo AS", "Gamma Ekte AS", "Testbyrå AS"]

    # At phone width the saved-view controls stay within the screen.
    browser.set_window_size(390, 844)
    browser.get(f"{live_server}/admin/clients/?page_size=50")
    browser.find_element(By.CSS_SELECTOR, "details.saved-view-save summary").click()
    overflowing = (
        "return [...document.querySelectorAll(arguments[0])]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.outerHTML.slice(0, 80));"
    )
    assert browser.execute_script(overflowing, ".saved-views, .saved-views input, .saved-views button") == []
    browser.get(f"{live_server}/admin/clients/views/manage/")
    assert browser.execute_script(overflowing, ".saved-view-row, .saved-view-row input, .saved-view-row button") == []
