"""Every page a bureau user opens reads in their language: no English left in the Norwegian UI, and no Norwegian in
the English one. Real Chromium walks the demo data as an administrator and as staff (tests/ui_texts.py says what
"readable" covers: menus opened, every grid filter added, tooltips, placeholders, options).
"""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from extensions import db
from models import (
    AuditEntry,
    Bureau,
    Client,
    CustomerTemplate,
    OutboxMessage,
    Package,
    PackageAssignment,
    Permission,
    Person,
    PersonKind,
    StaffRole,
    User,
)
from services.demo import DEMO_PASSWORD, seed_demo
from tests.test_browser import browser, live_server  # noqa: F401  (fixtures)
from tests.ui_texts import (
    ADD_EVERY_FILTER,
    ENGLISH_LEFTOVERS,
    NORWEGIAN_LEFTOVERS,
    READ_PAGE,
    REMOVE_STORED,
    find_leftovers,
    leftover_pattern,
)

# Stored texts, in the language they were written in: an e-mail as it was sent (in its client's language), and a
# job's title and row messages (written in DEFAULT_LOCALE by the worker, a documented limit of jobs; the title, shown
# as the job page's heading, is left out by its text).
STORED_TEXTS = (
    "td.col-subject",
    "#job-summary",
    "#job-error",
    "#job-retry",
    "#job-results td:nth-child(3)",
    "td > a[href*='/admin/jobs/']",
)
STORED_DETAIL_ROWS = ["Emne", "Subject", "Tekst", "Text"]


def hide_stored(driver) -> None:
    driver.execute_script(REMOVE_STORED, list(STORED_TEXTS), STORED_DETAIL_ROWS)


def ids(bureau_id: int) -> dict[str, int]:
    """One record of each kind in the demo bureau, to open its pages."""

    def first(model, *where):
        return db.session.scalar(select(model.id).where(model.bureau_id == bureau_id, *where).order_by(model.id))

    customer = first(Client, Client.is_internal.is_(False), Client.language == "nb", Client.is_demo.is_(False))
    user_person = first(Person, Person.client_id == customer, Person.kind == PersonKind.USER)
    return {
        "client": customer,
        "swedish": first(Client, Client.language == "sv"),
        "demo": first(Client, Client.is_demo.is_(True)),
        "person": user_person,
        "user": db.session.scalar(select(User.id).where(User.person_id == user_person)),
        "package": first(Package),
        "assignment": first(PackageAssignment),
        "permission": first(Permission),
        "template": first(CustomerTemplate),
        "outbox": first(OutboxMessage),
        "audit": first(AuditEntry),
    }


def pages(n: dict[str, int], *, admin: bool, job_id: int) -> list[str]:
    c = n["client"]
    common = [
        "/admin/",
        "/admin/clients/",
        "/admin/clients/?flt0_0=1",  # a filter applied: its row and the "Nullstill filtre" button
        "/admin/clients/new/",
        f"/admin/clients/details/?id={c}",
        f"/admin/clients/edit/?id={c}",
        f"/admin/clients/manage/?id={c}",
        f"/admin/clients/manage/?id={c}&tab=people",
        f"/admin/clients/manage/?id={c}&tab=packages",
        f"/admin/clients/manage/?id={n['swedish']}",
        f"/admin/clients/manage/?id={n['demo']}",
        *(f"/admin/clients/people/add/{kind.value}/?id={c}" for kind in PersonKind),
        f"/admin/clients/people/{n['person']}/access/?id={c}",
        "/admin/clients/import/",
        f"/admin/clients/people/import/?id={c}",
        f"/admin/clients/refresh/?id={c}",
        "/admin/persons/",
        f"/admin/persons/details/?id={n['person']}",
        f"/admin/persons/edit/?id={n['person']}",
        "/admin/users/",
        f"/admin/users/details/?id={n['user']}",
        f"/admin/users/edit/?id={n['user']}",
        "/admin/packages/",
        f"/admin/packages/details/?id={n['package']}",
        "/admin/billing/",
        "/admin/jobs/",
        f"/admin/jobs/{job_id}/",
        "/admin/auditlog/",
        f"/admin/auditlog/details/?id={n['audit']}",
        "/admin/outbox/",
        f"/admin/outbox/details/?id={n['outbox']}",
        "/admin/alerts/",
        "/admin/alerts/?flt0_0=open",
        "/admin/no-such-page/",
        "/admin/clients/details/?id=987654321",
        "/samtykke/not-a-valid-link",
        "/invitasjon/not-a-valid-link",
    ]
    if not admin:
        return [*common, "/admin/permissions/"]  # 403: the administrators' grid
    return [
        *common,
        "/admin/packages/new/",
        f"/admin/packages/edit/?id={n['package']}",
        "/admin/assignments/",
        "/admin/assignments/new/",
        f"/admin/assignments/details/?id={n['assignment']}",
        "/admin/permissions/",
        "/admin/permissions/new/",
        f"/admin/permissions/edit/?id={n['permission']}",
        "/admin/templates/",
        "/admin/templates/new/",
        f"/admin/templates/details/?id={n['template']}",
        f"/admin/templates/edit/?id={n['template']}",
    ]


@pytest.fixture
def demo(app, client):
    """The demo data, a consent e-mail in the outbox and a finished register job, as the UI made them."""
    logins = seed_demo(db.session)
    db.session.commit()
    bureau_id = db.session.scalar(select(Bureau.id).where(Bureau.org_number == "923456783"))
    numbers = ids(bureau_id)
    admin_email = next(login.email for login in logins if login.role == StaffRole.ADMIN.value)
    staff_email = next(login.email for login in logins if login.role == StaffRole.STAFF.value)
    client.post("/login", data={"email": admin_email, "password": DEMO_PASSWORD})
    client.post("/admin/clients/consent/", query_string={"id": numbers["client"]}, data={})
    client.post("/admin/clients/action/", data={"action": "refresh_registry", "rowid": [numbers["client"]]})
    db.session.rollback()
    from services.jobs import run_until_idle

    run_until_idle(app)
    db.session.rollback()
    from models import Job

    job_id, job_title = db.session.execute(select(Job.id, Job.title).where(Job.bureau_id == bureau_id)).one()
    numbers = ids(bureau_id)
    db.session.rollback()
    assert job_id is not None and numbers["outbox"] is not None and numbers["audit"] is not None
    return {"ids": numbers, "job": job_id, "job_title": job_title, "admin": admin_email, "staff": staff_email}


def log_in_as(driver, base, email: str) -> None:
    db.session.rollback()
    driver.get(base + "/login")
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(DEMO_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]").click()
    WebDriverWait(driver, 10).until(ec.url_contains("/admin/"))


def read(driver, base, path: str) -> list[str]:
    driver.get(base + path)
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
    driver.execute_script(ADD_EVERY_FILTER)
    hide_stored(driver)
    return driver.execute_script(READ_PAGE)


def typeahead_texts(driver, base, bad_number: str) -> list[str]:
    """ "+ Ny kunde" with an org number whose check digit is wrong: what the typeahead then says."""
    driver.get(base + "/admin/clients/new/")
    query = WebDriverWait(driver, 10).until(ec.element_to_be_clickable((By.ID, "company_query")))
    query.send_keys(bad_number)
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "registry-status").text.strip())
    return [driver.find_element(By.ID, "registry-status").text]


def failed_save_texts(driver, base, person_id: int) -> list[str]:
    """Flask-Admin's own edit form (a person's; the client has its own cards since issue 11) sent with the first name
    emptied: its flash and the field's message."""
    driver.get(base + f"/admin/persons/edit/?id={person_id}")
    name = driver.find_element(By.ID, "first_name")
    name.clear()
    name.submit()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".alert"))
    hide_stored(driver)
    texts = driver.execute_script(READ_PAGE)
    assert any("Endringene ble ikke lagret" in text or "Failed to save record." in text for text in texts)
    return texts


def walk(driver, base, demo, role: str, language: str) -> list:
    pattern = leftover_pattern(ENGLISH_LEFTOVERS if language == "no" else NORWEGIAN_LEFTOVERS)
    findings = []
    driver.get(base + f"/language/{language}")
    findings += find_leftovers("/login", read(driver, base, "/login"), pattern)
    log_in_as(driver, base, demo[role])
    driver.get(base + f"/language/{language}")
    for path in pages(demo["ids"], admin=role == "admin", job_id=demo["job"]):
        findings += find_leftovers(path, read(driver, base, path), pattern)
    findings += find_leftovers("typeahead", typeahead_texts(driver, base, "123456789"), pattern)
    findings += find_leftovers("failed save", failed_save_texts(driver, base, demo["ids"]["person"]), pattern)
    db.session.rollback()
    return [finding for finding in findings if finding.context != demo["job_title"]]


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_norwegian_pages_show_no_english(app, live_server, browser, demo, role):  # noqa: F811
    findings = walk(browser, live_server, demo, role, "no")
    unique = sorted({str(f) for f in findings})
    assert not unique, f"{len(unique)} English leftover(s) in the Norwegian UI:\n" + "\n".join(unique)


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_english_pages_show_no_norwegian(app, live_server, browser, demo, role):  # noqa: F811
    findings = walk(browser, live_server, demo, role, "en")
    unique = sorted({str(f) for f in findings})
    assert not unique, f"{len(unique)} Norwegian leftover(s) in the English UI:\n" + "\n".join(unique)


def test_the_leftover_matcher_matches_whole_words_only():
    pattern = leftover_pattern(ENGLISH_LEFTOVERS)
    assert [m.group(0) for m in pattern.finditer("50 items · Legg til filter · Add Filter · Rediger")] == [
        "items",
        "Add Filter",
    ]
    assert not pattern.search("Itemsett, Lagret, Listeside, e-post: post@kunde.example, {Amount} {Currency}")
    assert re.fullmatch(r"\w+", "Search") and pattern.search("Search")
