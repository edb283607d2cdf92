"""Real Chromium: the green "+ Ny kunde" can be seen (desktop and phone, hovered too), and the typeahead says
"finnes allerede: åpne" for a number the bureau has, with a link that opens that client.

Uses the Chromium setup of tests/test_browser.py (skipped there, and so here, without chromium/chromedriver).
"""

from __future__ import annotations

import pytest

from models import StaffRole
from tests import test_browser as chromium
from tests.test_browser import By, WebDriverWait, ec, log_in

# The same Chromium and live server as tests/test_browser.py (its fixtures, used here by name).
browser = chromium.browser
live_server = chromium.live_server

GREEN = (40, 167, 69)  # Bootstrap's success colour
GREEN_HOVER = (33, 136, 56)

BUTTON_COLOURS = """
const style = getComputedStyle(arguments[0]);
const rgb = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
return {background: rgb(style.backgroundColor), color: rgb(style.color), visible: arguments[0].offsetWidth > 0};
"""


def luminance(rgb) -> float:
    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(v) for v in rgb[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first, second) -> float:
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def opaque(rgb) -> bool:
    return len(rgb) == 3 or rgb[3] == 1


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (390, 844)])
def test_new_client_button_is_green_and_readable(app, live_server, browser, bureau, make_staff, width, height):
    staff = make_staff(bureau, StaffRole.STAFF)
    browser.set_window_size(width, height)
    log_in(browser, live_server, staff)
    browser.get(live_server + "/admin/clients/")
    button = WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.LINK_TEXT, "+ Ny kunde")))
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    colours = browser.execute_script(BUTTON_COLOURS, button)
    assert colours["visible"]
    assert opaque(colours["background"]) and tuple(colours["background"][:3]) == GREEN, colours
    # white on green: large enough for a bold-ish button label (WCAG's 3:1 for large text and UI components)
    assert contrast(colours["background"], colours["color"]) >= 3, colours

    webdriver = pytest.importorskip("selenium.webdriver")
    webdriver.ActionChains(browser).move_to_element(button).perform()
    WebDriverWait(browser, 5).until(
        lambda d: tuple(d.execute_script(BUTTON_COLOURS, button)["background"][:3]) != GREEN
    )
    hovered = browser.execute_script(BUTTON_COLOURS, button)
    assert opaque(hovered["background"]) and tuple(hovered["background"][:3]) == GREEN_HOVER, hovered
    assert contrast(hovered["background"], hovered["color"]) >= 3, hovered

    button.click()
    WebDriverWait(browser, 10).until(ec.url_contains("/admin/clients/new/"))


def test_typeahead_flags_a_client_the_bureau_already_has(app, live_server, browser, bureau, make_staff, make_client):
    mine = make_client(org_number="914375916", name="Vår Tollbugata AS")
    staff = make_staff(bureau, StaffRole.STAFF)
    log_in(browser, live_server, staff)
    browser.get(live_server + "/admin/clients/new/")
    wait = WebDriverWait(browser, 10)
    query = wait.until(ec.element_to_be_clickable((By.ID, "company_query")))
    query.send_keys("914375916")
    option = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#company-suggestions li")))
    assert "Finnes allerede: åpne" in option.text
    link = option.find_element(By.CSS_SELECTOR, "a.existing-client")
    assert link.get_attribute("href").endswith(f"/admin/clients/manage/?id={mine.id}")

    # choosing the match fills the form and keeps the warning, with the link, under the search box
    option.find_element(By.TAG_NAME, "div").click()
    wait.until(lambda d: d.find_element(By.ID, "org_number").get_attribute("value") == "914375916")
    status = browser.find_element(By.ID, "registry-status")
    assert "Finnes allerede: åpne" in status.text
    status.find_element(By.CSS_SELECTOR, "a.existing-client").click()
    wait.until(ec.url_contains(f"/admin/clients/manage/?id={mine.id}"))
    assert "Vår Tollbugata AS" in browser.page_source


def test_typeahead_shows_removed_company_and_ans_without_leaders(app, live_server, browser, bureau, make_staff):
    staff = make_staff(bureau, StaffRole.STAFF)
    log_in(browser, live_server, staff)
    browser.get(live_server + "/admin/clients/new/")
    wait = WebDriverWait(browser, 10)
    query = wait.until(ec.element_to_be_clickable((By.ID, "company_query")))
    query.send_keys("921000014")
    option = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#company-suggestions li")))
    assert "921000014 / 921000014" not in option.text.replace("\n", " / ")
    assert "Navnet står ikke i registeret" in option.text and "fjernet" in option.text

    query.clear()
    query.send_keys("810005912")
    option = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#company-suggestions li")))
    wait.until(lambda d: "ROLFSEN" in option.text)
    option.find_element(By.TAG_NAME, "div").click()
    note = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#role-suggestions .no-role-holders")))
    assert "ingen daglig leder eller styreleder" in note.text

    query.clear()
    query.send_keys("123456789")
    wait.until(lambda d: "gyldig" in d.find_element(By.ID, "registry-status").text)
    assert "ikke et gyldig organisasjonsnummer" in browser.find_element(By.ID, "registry-status").text
