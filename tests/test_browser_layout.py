"""Layout in real Chromium: no page scrolls sideways on a phone (390×844), and the screenshots in the README.

The phone test logs in as an administrator and walks every page the menu and the client page reach, following the
links it finds (each kind of page once), plus the login page and the public consent and invitation pages. With
``SCREENSHOTS=1`` the main pages are also saved, at 1440×900 and 390×844, into ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from extensions import db
from models import ContactRole, JobKind, PackageKind, PersonKind, StaffRole, UserStatus
from services.consent import consent_url, request_consent
from services.invitations import invitation_url, invite_user
from services.jobs import create_job
from tests.test_browser import By, WebDriverWait, browser, live_server, log_in  # noqa: F401 - fixtures

PHONE = (390, 844)
DESKTOP = (1440, 900)
SCREENSHOT_DIR = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
# Links the walk does not follow: they end the session, switch the language, download a file or only sort/page a
# grid already seen (the layout of a grid does not depend on its order or page).
NOT_FOLLOWED = re.compile(r"/logout|/language/|/download|/export|\.csv|\.xlsx|template\.csv|/static/")
SAME_LAYOUT_ARGS = {"sort", "desc", "page", "page_size", "search", "id", "url", "person_id", "record_id", "period"}
MAX_PAGES = 150

# The page is measured against the phone's width: with a phone's viewport Chromium widens the layout viewport (and
# window.innerWidth) to the content, so innerWidth alone would always pass. What sticks out is named, so a failure says which element to fix.
OVERFLOW_SCRIPT = """
const width = Math.min(window.innerWidth, arguments[0]);
const wide = [];
for (const el of document.querySelectorAll('body *')) {
  const box = el.getBoundingClientRect();
  if (box.width > 0 && box.right > width + 1) {
    let scroller = el.parentElement, clipped = false;
    while (scroller && scroller !== document.body) {
      const style = getComputedStyle(scroller);
      if (['auto', 'scroll', 'hidden'].includes(style.overflowX)) { clipped = true; break; }
      scroller = scroller.parentElement;
    }
    if (!clipped) wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
      ' right=' + Math.round(box.right));
  }
}
return [document.documentElement.scrollWidth, width, wide.slice(0, 6)];
"""


def emulate(driver, size: tuple[int, int]) -> None:
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def settle(driver) -> None:
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")


def layout_key(url: str) -> str:
    """One visit per kind of page: the path with its ids as N, and the arguments that change what is shown."""
    parts = urlsplit(url)
    path = re.sub(r"/\d+(?=/|$)", "/N", parts.path)
    args = sorted(
        (name, value)
        for name, value in parse_qsl(parts.query)
        if name not in SAME_LAYOUT_ARGS and not name.startswith("flt")
    )
    return f"{path}?{args}"


@pytest.fixture
def bureau_with_everything(app, bureau, make_staff, make_client, make_person, make_user, make_package, assign):
    """An administrator, and a client with every kind of person, packages, history, consent and an invitation."""
    admin = make_staff(bureau, StaffRole.ADMIN, first_name="Administrator med et langt navn")
    make_staff(bureau, StaffRole.STAFF)
    main = make_package(name="Prosjektstyring med fakturering", code="PROSJEKT")
    addon = make_package(name="Fakturering", code="FAKT", kind=PackageKind.ADDON)
    customer = make_client(
        name="Nordlandsbuss og Bodø Bygg Entreprenør Aksjeselskap",
        business_address_lines="Sjøgata 1\nc/o Regnskapskontoret",
        business_postal_code="8006",
        business_city="Bodø",
        email="post.og.faktura@bodo-bygg-entreprenor.example",
    )
    contact = make_person(
        customer, PersonKind.PERSON, first_name="Kari", email="kari.nordmann.daglig.leder@bodo-bygg.example"
    )
    customer.contact_person, customer.contact_role = contact, ContactRole.CEO
    db.session.commit()
    request_consent(db.session, customer)
    user = make_user(customer, person=make_person(customer, PersonKind.USER, email="ola.nordmann@bodo-bygg.example"))
    assign(user, main, date.today().replace(day=1))
    assign(user, addon, date.today().replace(day=1))
    external = make_user(customer, PersonKind.EXTERNAL_USER, end_date=date.today() + timedelta(days=20))
    assign(external, main, date.today().replace(day=1))
    make_user(customer, PersonKind.USER_WITHOUT_PACKAGES)
    invited = make_user(customer, status=UserStatus.INVITED)
    invite_user(db.session, invited)
    customer.name = customer.name + " "  # a change, so the history has a row
    create_job(
        db.session,
        bureau_id=bureau.id,
        kind=JobKind.CLIENT_REFRESH,
        actor=admin,
        title="Oppdater fra Brønnøysund: 1 klient(er)",
        rows=[{"client_id": customer.id, "org_number": customer.org_number, "name": customer.name}],
        columns=("org_number", "name"),
    )  # a job, so its page is walked too
    db.session.commit()
    return {
        "admin": admin,
        "client_id": customer.id,
        "consent": urlsplit(consent_url(customer)).path,
        "invitation": urlsplit(invitation_url(invited)).path,
    }


def walk(driver, start: str, base: str) -> list[str]:
    """Every page reachable from ``start`` by links inside /admin/ (each kind of page once), in visiting order."""
    queue, seen, visited = [start], {layout_key(start)}, []
    while queue and len(visited) < MAX_PAGES:
        url = queue.pop(0)
        driver.get(url)
        settle(driver)
        visited.append(url)
        hrefs = driver.execute_script("return Array.from(document.querySelectorAll('a[href]'), a => a.href)")
        for href in hrefs:
            href = href.split("#", 1)[0]
            if not href.startswith(base + "/admin/") or NOT_FOLLOWED.search(href):
                continue
            key = layout_key(href)
            if key not in seen:
                seen.add(key)
                queue.append(href)
    return visited


def test_no_page_scrolls_sideways_on_a_phone(app, live_server, browser, bureau_with_everything):  # noqa: F811
    setup = bureau_with_everything
    emulate(browser, PHONE)
    log_in(browser, live_server, setup["admin"])
    client_page = f"{live_server}/admin/clients/manage/?id={setup['client_id']}"
    pages = walk(browser, live_server + "/admin/", live_server)
    pages += [p for p in walk(browser, client_page, live_server) if p not in pages]
    assert any("/admin/clients/manage/" in p and "tab=people" in p for p in pages)
    assert any("edit=company" in p for p in pages) and any("/admin/billing/" in p for p in pages)
    assert any("/admin/outbox/" in p for p in pages) and any(re.search(r"/admin/jobs/.*\d", p) for p in pages)
    assert any("/admin/auditlog/" in p for p in pages) and any("/people/add/" in p for p in pages)

    too_wide = []
    for url in pages:
        browser.get(url)
        settle(browser)
        scroll_width, inner_width, culprits = browser.execute_script(OVERFLOW_SCRIPT, PHONE[0])
        if scroll_width > inner_width:
            too_wide.append(f"{url.removeprefix(live_server)}: {scroll_width} > {inner_width} {culprits}")
    browser.get(live_server + "/admin/")
    browser.execute_script("const f = document.querySelector('form[action$=\"/logout\"]'); if (f) { f.submit(); }")
    settle(browser)
    for path in ("/login", setup["consent"], setup["invitation"], "/samtykke/ugyldig"):
        browser.get(live_server + path)
        settle(browser)
        scroll_width, inner_width, culprits = browser.execute_script(OVERFLOW_SCRIPT, PHONE[0])
        if scroll_width > inner_width:
            too_wide.append(f"{path}: {scroll_width} > {inner_width} {culprits}")
    assert not too_wide, f"{len(too_wide)} of {len(pages) + 4} pages scroll sideways at 390 px:\n" + "\n".join(too_wide)


def test_the_personer_rows_keep_their_actions_in_one_menu(app, live_server, browser, bureau_with_everything):  # noqa: F811
    setup = bureau_with_everything
    emulate(browser, PHONE)
    log_in(browser, live_server, setup["admin"])
    browser.get(f"{live_server}/admin/clients/manage/?id={setup['client_id']}&tab=people")
    settle(browser)
    row = browser.find_element(By.CSS_SELECTOR, "#group-user tr[data-person]")
    assert not [b for b in row.find_elements(By.CSS_SELECTOR, "button[data-op]") if b.is_displayed()]
    row.find_element(By.CSS_SELECTOR, "details.row-menu > summary").click()  # opens without any script of ours
    shown = [b.text for b in row.find_elements(By.CSS_SELECTOR, "[data-op]") if b.is_displayed()]
    assert "Endre tilgang" in shown and "Deaktiver" in shown
    assert row.size["height"] < 400
    # the add form's fields use the whole width
    browser.get(f"{live_server}/admin/clients/people/add/user/?id={setup['client_id']}")
    settle(browser)
    email = browser.find_element(By.CSS_SELECTOR, 'input[name="email"]')
    assert email.size["width"] > 250


@pytest.mark.skipif(os.environ.get("SCREENSHOTS") != "1", reason="SCREENSHOTS=1 saves the README's screenshots")
def test_screenshots_of_the_main_pages(app, live_server, browser, bureau_with_everything):  # noqa: F811
    setup = bureau_with_everything
    log_in(browser, live_server, setup["admin"])
    client_page = f"/admin/clients/manage/?id={setup['client_id']}"
    pages = {
        "home": "/admin/",
        "clients": "/admin/clients/",
        "client-overview": client_page,
        "client-people": client_page + "&tab=people",
        "billing": "/admin/billing/",
    }
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        emulate(browser, size)
        for name, path in pages.items():
            browser.get(live_server + path)
            settle(browser)
            assert browser.save_screenshot(str(SCREENSHOT_DIR / f"{name}-{label}.png"))
