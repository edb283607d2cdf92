"""Every route and every grid filter, with hostile values, as an administrator and as ordinary staff.

The crawler walks ``app.url_map`` (nothing is listed by hand), fills each rule's path arguments with the ids of real
rows and with hostile values, adds hostile query arguments, every Flask-Admin list view's filters (``flt0_<n>``),
sort and page arguments, then POSTs every form it finds (the field names read from the page itself, a valid CSRF
token added) with hostile values. It asserts no 5xx anywhere, that no table gained or lost a row, and that no stored
text holds a NUL, an over-long value or a line break in a one-line column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import String, Text, func, select

from extensions import db
from models import AuditEntry, PersonKind
from services.outbox import enqueue_email

NUL = "a\x00b"
NOVEL = "x" * 10_000
HUGE = str(2**63)
HOSTILE = [NUL, NOVEL, HUGE, "-1", "not_a_value", "2026-13-45", "Kari\r\nBcc: x@example.no"]
# Values a path segment can carry (a URL holds NUL and CR/LF only percent-encoded; the test client encodes them).
HOSTILE_SEGMENTS = ["not_a_value", "a%00b", "x" * 2000, "-1", "Kari%0D%0ABcc"]
QUERY_NAMES = (
    "id", "page", "page_size", "sort", "desc", "search", "tab", "period", "client", "query", "name", "q", "org",
    "next", "url", "dialect", "detail", "offset", "limit", "kind",
)  # fmt: skip
# Routes the crawler leaves alone: logging out would end its session; the login form counts failed attempts (a row
# per try, by design; tests/test_hostile_inputs.py covers it); static files are files.
SKIPPED = {"auth.logout", "auth.login", "static", "admin.static"}
# Buttons that act on the row they name without any other input (archive, invite, switch on, consent again, the
# confirmed permanent delete): reached only with hostile ids, because with a real one they would rightly change it.
ACTS_WITHOUT_INPUT = {
    "clients.archive_one_view", "persons.archive_one_view", "users.archive_one_view", "clients.person_operation_view",
    "clients.switch_view", "clients.consent_view", "clients.refresh_view", "billing.close",
    "clients.delete_permanently_view", "persons.delete_permanently_view", "users.delete_permanently_view",
}  # fmt: skip
# Counted rows that a request may add by design, whatever it is given: failed logins, and the billing totals a page
# view folds the waiting changes into (derived caches, services/billing_totals.py).
COUNT_EXEMPT = {"login_failures", "billing_changes", "billing_totals", "billing_client_totals", "package_holder_counts"}
# Tables whose create forms are free text only (a code and a name), so "-1" or "not_a_value" is a valid entry there;
# their creation is recorded in the event log. A saved view is a name over the grid's checked arguments (a personal
# setting, not logged): "-1" is a valid name, NUL and 10 kB are refused like everywhere else.
FREE_TEXT_CREATES = {"permissions", "customer_templates", "audit_entries", "search_documents", "saved_views"}
_FIELD = re.compile(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"', re.IGNORECASE)
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def _row_counts() -> dict[str, int]:
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
        if table.name not in COUNT_EXEMPT
    }


def stored_text_problems() -> list[str]:
    """Every stored text that no form should have let through: a NUL, a value longer than its column, a line break in
    a one-line column, the crawler's 10 kB string."""
    problems = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, String | Text) or column.type.python_type is not str:
                continue
            for (value,) in db.session.execute(select(column).where(column.is_not(None))):
                if not isinstance(value, str):
                    continue
                length = getattr(column.type, "length", None)
                if "\x00" in value or NOVEL[:2000] in value:
                    problems.append(f"{table.name}.{column.name}: hostile text stored")
                elif length and len(value) > length:
                    problems.append(f"{table.name}.{column.name}: {len(value)} > {length} characters")
                elif isinstance(column.type, String) and not isinstance(column.type, Text):
                    if ("\r" in value or "\n" in value) and not table.name.startswith(("audit", "outbox")):
                        problems.append(f"{table.name}.{column.name}: a line break in a one-line column")
    return problems


@pytest.fixture
def world(app, bureau, make_client, make_person, make_user, make_package, make_permission, make_template, assign):
    """One row of every kind the routes take an id of."""
    from models import PackageKind

    template = make_template(name="Crawlmal")
    customer = make_client(name="Crawlkunde AS", template_id=template.id)
    person = make_person(customer, PersonKind.PERSON, first_name="Crawlperson")
    user = make_user(customer)
    main = make_package(code="CRAWLMAIN")
    make_package(code="CRAWLADD", kind=PackageKind.ADDON)
    assignment = assign(user, main)
    permission = make_permission(code="CRAWLRETT")
    message = enqueue_email(
        db.session, bureau_id=bureau.id, to="crawl@kunde.example", subject="Crawl", text="Crawl", kind="test"
    )
    db.session.commit()
    audit = db.session.scalar(select(func.max(AuditEntry.id)))
    return {
        "clients": customer.id,
        "persons": person.id,
        "users": user.id,
        "packages": main.id,
        "assignments": assignment.id,
        "permissions": permission.id,
        "templates": template.id,
        "outbox": message.id,
        "auditlog": audit,
        "person_id": user.person_id,
    }


def _segment_values(rule: Any, argument: str, real: dict[str, Any], endpoint_group: str) -> list[str]:
    converter = type(rule._converters[argument]).__name__
    if converter == "IntegerConverter":
        known = real.get("person_id") if argument == "person_id" else real.get(endpoint_group)
        return [str(known), HUGE, "0"] if known is not None else [HUGE, "0"]
    if converter == "PathConverter":
        return ["nothing.css"]
    known = {
        "kind": [kind.value for kind in PersonKind],
        "export_type": ["csv", "xlsx"],
        "operation": ["archive", "restore", "invite", "deactivate", "remove_access"],
        "switch": ["company_lookup", "custom_invoice_email"],
        "code": ["no", "en"],
    }.get(argument, [])
    return [*known, *HOSTILE_SEGMENTS]


def _paths(rule: Any, real: dict[str, Any]) -> Iterator[str]:
    """The rule with every combination of its arguments' values (first argument varied, the rest their first)."""
    group = rule.endpoint.split(".")[0]
    arguments = sorted(rule.arguments)
    values = {name: _segment_values(rule, name, real, group) for name in arguments}
    combos = [{name: options[0] for name, options in values.items()}]
    for name, options in values.items():
        for option in options[1:]:
            combos.append({**combos[0], name: option})
    for combo in combos:
        path = rule.rule
        for name, value in combo.items():
            path = re.sub(r"<(?:[a-z]+:)?" + name + ">", value, path)
        yield path


class Crawl:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.failures: list[str] = []
        self.requests = 0

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        self.requests += 1
        response = self.client.open(path, method=method, **kwargs)
        response.get_data()  # read, and close: a streamed download left open is a ResourceWarning
        response.close()
        if response.status_code >= 500:
            args = {k: (v[:20] if isinstance(v, str) else v) for k, v in (kwargs.get("query_string") or {}).items()}
            self.failures.append(f"{method} {path[:120]} {args} -> {response.status_code}")
        return response

    def token(self) -> str:
        page = self.client.get("/admin/clients/new/").get_data(as_text=True)
        match = _TOKEN.search(page)
        assert match, "no CSRF token on the new-client page"
        return match.group(1) or match.group(2)


def _admin_views(app) -> list[Any]:
    admin = app.extensions["admin"][0]
    return [view for view in admin._views if hasattr(view, "_filters")]


def _crawl_gets(app, crawl: Crawl, world: dict[str, Any]) -> None:
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED or "GET" not in rule.methods:
            continue
        real_id = str(world.get(rule.endpoint.split(".")[0], world["clients"]))
        for path in _paths(rule, world):
            crawl.call("GET", path)
            for value in HOSTILE:
                crawl.call("GET", path, query_string=dict.fromkeys(QUERY_NAMES, value))
                crawl.call("GET", path, query_string={**dict.fromkeys(QUERY_NAMES, value), "id": real_id})
    for view in _admin_views(app):
        index = f"/admin/{view.endpoint}/"
        for position, _flt in enumerate(view._filters or []):
            for value in HOSTILE:
                crawl.call("GET", index, query_string={f"flt0_{position}": value})
        for value in HOSTILE:
            crawl.call("GET", index, query_string={"sort": value, "desc": value, "page": value, "page_size": value})


def _crawl_posts(app, crawl: Crawl, world: dict[str, Any], values: list[str], token: str) -> None:
    """Every POST route with every field it shows (and the usual names) set to each value, a valid CSRF token."""
    views = {view.endpoint: view for view in _admin_views(app)}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED or "POST" not in rule.methods:
            continue
        group = rule.endpoint.split(".")[0]
        real_id = str(world.get(group, world["clients"]))
        acts = rule.endpoint in ACTS_WITHOUT_INPUT
        for path in _paths(rule, world):
            if acts and real_id in path.split("/"):
                continue  # a real row in the path of a button that acts on it: see ACTS_WITHOUT_INPUT
            fields = set(QUERY_NAMES) | {"rowid", "action", "version_check", "confirm"}
            if "GET" in rule.methods:
                fields |= set(_FIELD.findall(crawl.call("GET", path, query_string={"id": real_id}).text))
            fields.discard("csrf_token")
            for value in values:
                for key in ["0", HUGE, "-1"] if acts else [real_id, HUGE]:
                    data = {**dict.fromkeys(fields, value), "csrf_token": token}
                    crawl.call("POST", path, query_string={"id": key}, data=data)
        if rule.endpoint.endswith(".action_view") and group in views:
            for name, _label in views[group]._actions:
                for value in [*values, "0"]:
                    crawl.call("POST", rule.rule, data={"action": name, "rowid": [value], "csrf_token": token})


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_every_route_and_filter_takes_hostile_values(app, client, login_as, world, role):
    """GETs change nothing; POSTs of NUL or a 10 kB string in every field are refused everywhere (nothing stored);
    the other hostile values may be stored only where they are ordinary text (a permission named "-1"), made safe."""
    login_as(role)
    app.config["WTF_CSRF_ENABLED"] = True  # from here on the crawler sends a real token, as a browser would
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a failure is a 500 answer to count, as in production
    db.session.commit()
    crawl = Crawl(client)
    token = crawl.token()
    counts = {"start": _row_counts()}

    _crawl_gets(app, crawl, world)
    counts["after GETs"] = _after()
    _crawl_posts(app, crawl, world, [NUL, NOVEL], token)
    counts["after POSTs of NUL and 10 kB"] = _after()
    _crawl_posts(app, crawl, world, [value for value in HOSTILE if value not in (NUL, NOVEL)], token)
    counts["at the end"] = _after()

    assert crawl.requests > 2000  # the crawl reached the routes, not only the login page
    assert crawl.failures == [], f"{len(crawl.failures)} of {crawl.requests} requests answered 5xx:\n" + "\n".join(
        crawl.failures[:60]
    )
    assert counts["after GETs"] == counts["start"]
    assert counts["after POSTs of NUL and 10 kB"] == counts["start"]
    grown = {name for name, count in counts["at the end"].items() if count != counts["start"][name]}
    assert grown <= FREE_TEXT_CREATES, grown - FREE_TEXT_CREATES
    assert stored_text_problems() == []
    assert client.get("/admin/clients/").status_code == 200  # still logged in: the crawl was not just redirects


def _after() -> dict[str, int]:
    db.session.rollback()
    db.session.expire_all()
    return _row_counts()
