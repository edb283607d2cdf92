"""Real Chromium: the Pakker tab and Fakturagrunnlag show amounts as Norwegian writes them (and English when chosen)."""

from datetime import date
from decimal import Decimal

from selenium.webdriver.common.by import By

from models import StaffRole
from tests.test_browser import browser, live_server, log_in  # noqa: F401 - the Chromium fixtures

SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})  # how the page separates thousands and "kr"


def shown(browser, selector: str) -> str:  # noqa: F811 - the fixture's name
    return browser.find_element(By.CSS_SELECTOR, selector).text.translate(SPACES).strip()


def test_pakker_tab_and_billing_page_show_norwegian_amounts(
    app,
    live_server,  # noqa: F811
    browser,  # noqa: F811
    bureau,
    make_staff,
    make_client,
    make_user,
    make_package,
    assign,
):
    month_start = date.today().replace(day=1)
    crm = make_package(code="CRM", name="CRM", rank=1, price=Decimal("3417.67"))
    customer = make_client(name="Bodø Bygg AS")
    for _ in range(3):
        assign(make_user(customer), crm, month_start)  # 3 × 3 417,67 = 10 253,01
    customer_id = customer.id  # read before logging in: the test's session must hold no transaction after it
    staff = make_staff(bureau, StaffRole.STAFF)
    log_in(browser, live_server, staff)

    browser.get(f"{live_server}/admin/clients/manage/?id={customer_id}&tab=packages")
    row = shown(browser, "#client-packages tbody tr")
    assert "Hovedpakke" in row and "3 417,67 kr" in row and "10 253,01 kr" in row
    assert shown(browser, "#client-packages-total") == "10 253,01 kr"
    assert "10253" not in browser.find_element(By.ID, "client-packages").text

    browser.get(f"{live_server}/admin/billing/?period={month_start:%Y-%m}")
    assert shown(browser, "#billing-total") == "10 253,01 kr"
    header = shown(browser, "#billing-preview thead")
    assert "Organisasjonsnummer" in header and "Beløp" in header and "client_org_number" not in header
    line = shown(browser, "#billing-preview tbody tr")
    assert "Bodø Bygg AS" in line and "Hovedpakke" in line and "3 417,67 kr" in line and "10 253,01 kr" in line
    assert " main " not in f" {line} "

    browser.get(f"{live_server}/language/en")  # the language menu's link
    browser.get(f"{live_server}/admin/billing/?period={month_start:%Y-%m}")
    assert shown(browser, "#billing-total") == "NOK 10,253.01"
    browser.get(f"{live_server}/admin/clients/manage/?id={customer_id}&tab=packages")
    assert shown(browser, "#client-packages-total") == "NOK 10,253.01"
    assert "Main package" in shown(browser, "#client-packages tbody tr")
