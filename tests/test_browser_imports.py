"""Real Chromium through "Importer personer": upload, the preview of every row, "Importer N rader", and the corrected
file uploaded again (only its corrected rows are added; the rest are skipped as duplicates)."""

from datetime import date, timedelta

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from extensions import db
from models import OutboxMessage, Person, PersonKind, StaffRole
from services.person_import import TEMPLATE_HEADER
from tests.fixtures.imports import csv_bytes
from tests.test_browser import browser, live_server, log_in  # noqa: F401 - fixtures

LATER = (date.today() + timedelta(days=90)).strftime("%d.%m.%Y")


def stored(query):
    """Read what the live server committed, then let go: on SQLite an open transaction holds the write lock."""
    db.session.rollback()
    try:
        return db.session.scalars(query).all()
    finally:
        db.session.rollback()


def people_of(customer_id: int) -> set[str]:
    return set(stored(select(Person.first_name).where(Person.client_id == customer_id)))


def invitations() -> list[str]:
    return list(stored(select(OutboxMessage.recipient).where(OutboxMessage.kind == "invitation")))


def row_statuses(driver) -> list[str]:
    return [
        row.get_attribute("data-status") for row in driver.find_elements(By.CSS_SELECTOR, "#import-report tbody tr")
    ]


def upload_file(driver, path) -> None:
    wait = WebDriverWait(driver, 10)
    field = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '#import-upload input[type="file"]')))
    field.send_keys(str(path))
    driver.find_element(By.CSS_SELECTOR, '#import-upload button[type="submit"]').click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '#import-summary[data-stage="preview"]')))


def test_person_import_preview_import_and_corrected_file(
    app,
    live_server,  # noqa: F811 - the fixture imported above
    browser,  # noqa: F811
    bureau,
    make_staff,
    make_client,
    make_person,
    tmp_path,
):
    staff = make_staff(bureau, StaffRole.STAFF)
    customer = make_client(name="Bodø Bygg AS")
    make_person(customer, PersonKind.PERSON, first_name="Finnes", last_name="Fra Før", email="finnes@bodo.example")
    customer_id = customer.id
    db.session.commit()
    rows = [
        ["", "bruker uten pakker", "Kari", "Nordmann", "kari@bodo.example", "", "", "", "", "ja"],
        ["", "person", "Ola", "Nordmann", "", "", "", "", "", "nei"],
        ["", "Person", "Dobbel", "Finnes", "FINNES@bodo.example", "", "", "", "", ""],  # already on the client
        ["", "ekstern bruker", "Per", "Revisor", "per@revisor.example", "", "", "", "", "nei"],  # no end date
        ["", "superbruker", "Nils", "Feil", "nils@bodo.example", "", "", "", "", "kanskje"],
    ]
    first_file = tmp_path / "personer.csv"
    first_file.write_bytes(csv_bytes(TEMPLATE_HEADER, rows, ";"))
    log_in(browser, live_server, staff)
    browser.get(f"{live_server}/admin/clients/manage/?id={customer_id}&tab=people")
    browser.find_element(By.ID, "import-people").click()
    page_text = browser.find_element(By.TAG_NAME, "body").text
    assert "hoppes over som duplikater" in page_text and "ingen av dem" not in page_text

    upload_file(browser, first_file)
    assert row_statuses(browser) == ["created", "created", "duplicate", "refused", "refused"]
    report = browser.find_element(By.ID, "import-report").text
    assert "Blir opprettet" in report and "Duplikat (hoppes over)" in report and "Avvist" in report
    assert "sluttdato" in report and "type: superbruker" in report
    browser.save_screenshot(str(tmp_path / "import-preview.png"))
    assert people_of(customer_id) == {"Finnes"}  # the preview added nobody

    button = browser.find_element(By.CSS_SELECTOR, "#import-confirm button")
    assert button.text == "Importer 2 rader"
    button.click()
    WebDriverWait(browser, 10).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, '#import-summary[data-stage="done"]'))
    )
    assert row_statuses(browser) == ["created", "created", "duplicate", "refused", "refused"]
    assert people_of(customer_id) == {"Finnes", "Kari", "Ola"}
    assert invitations() == ["kari@bodo.example"]

    rows[3][8] = LATER  # corrected: the external user gets an end date
    rows[4][1], rows[4][9] = "bruker uten pakker", "nei"
    corrected = tmp_path / "personer-rettet.csv"
    corrected.write_bytes(csv_bytes(TEMPLATE_HEADER, rows, ";"))
    upload_file(browser, corrected)
    assert row_statuses(browser) == ["duplicate", "duplicate", "duplicate", "created", "created"]
    browser.save_screenshot(str(tmp_path / "import-reupload.png"))
    browser.find_element(By.CSS_SELECTOR, "#import-confirm button").click()
    WebDriverWait(browser, 10).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, '#import-summary[data-stage="done"]'))
    )
    assert people_of(customer_id) == {"Finnes", "Kari", "Ola", "Per", "Nils"}
    assert invitations() == ["kari@bodo.example"]  # nobody invited twice
    db.session.rollback()
    per = db.session.scalar(select(Person).where(Person.first_name == "Per"))
    assert per.kind is PersonKind.EXTERNAL_USER and per.user.end_date == date.today() + timedelta(days=90)
    db.session.rollback()

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert errors == []  # no script error and no CSP violation on the import pages
