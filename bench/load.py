"""Load mode of bench/grids.py (``--load``): many staff members working at once against gunicorn.

Each simulated staff member logs in as a staff user of the demo bureau of its own (``bench.staffNN@nordlys.example``,
created in the bench database when missing; one in five is a bureau administrator, the others plain staff) and, until
``--duration`` has passed, picks a task from a weighted mix, performs it as a browser would, and pauses ``--think``
seconds on average (exponentially distributed) before the next:

- grid (30): a list of clients, people or users (administrators also assignments and packages), sorted by one of its
  columns or filtered by one of its filters, often on page 2-5 — read from the application's own views;
- search (15): the clients, people or users grid searched for a name, trade, first name, e-mail or org number;
- lookup (5): an ajax lookup (contact person, template, …) with the same kind of terms;
- client page (30): one of 2,000 clients, tab Oversikt, Personer or Pakker (or a person's details);
- save (12): the edit form of a client (the client page's company form, where the generic edit URL leads) or a
  person is opened and sent back through the real form (CSRF token, version check and every field parsed from the
  page) with the phone number toggled between empty and ``BENCH_PHONE``, so repeated runs do not drift;
- bulk action (8): three blocked users are reactivated and blocked again through the users grid's action POSTs.

Every HTTP request is timed; an error is any status other than 2xx/3xx or an exception. A save that answers 200 (the
form shown again: validation refused it, or someone else saved the row first) is counted apart as "refused".
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import threading
import time
from collections import Counter, defaultdict
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from grids import DEMO_BUREAU, ROOT, build, csrf_token, login, pages, percentile, served, workers_peak_rss_mb

BENCH_PHONE = "22 00 00 09"
STAFF_PASSWORD = "demo-passord-2026"
TARGET_MS = 300.0
MIX = {"grid": 30, "search": 15, "lookup": 5, "client page": 30, "save": 12, "bulk action": 8}
GRID_VIEWS = ("clients", "persons", "users", "assignments", "packages")
SEARCH_VIEWS = ("clients", "persons", "users")


def staff_email(number: int) -> str:
    return f"bench.staff{number:02d}@nordlys.example"


def prepare(url: str, staff: int, seed: int) -> dict[str, Any]:
    """Create the missing bench staff users and draw the pools the mix works on (all in the demo bureau)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("APP_ENV", "development")
    from sqlalchemy import func, or_, select

    from app import create_app
    from extensions import db
    from models import Bureau, Client, Person, PersonKind, StaffRole, User, UserStatus
    from services.synthetic import FIRST_NAMES, LAST_NAMES, TRADES

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        bureau = db.session.scalar(select(Bureau).where(Bureau.org_number == DEMO_BUREAU))
        internal = db.session.scalar(
            select(Client).where(Client.bureau_id == bureau.id, Client.is_internal.is_(True)).limit(1)
        )
        password_hash = None
        accounts = []
        for number in range(1, staff + 1):
            email, admin = staff_email(number), number % 5 == 1
            accounts.append((email, admin))
            if db.session.scalar(select(User.id).where(User.login_email == email)) is not None:
                continue
            if password_hash is None:  # one hash for all: hashing is slow on purpose
                probe = User()
                probe.set_password(STAFF_PASSWORD)
                password_hash = probe.password_hash
            person = Person(
                bureau_id=bureau.id,
                client=internal,
                kind=PersonKind.USER,
                first_name="Bench",
                last_name=f"Staff {number:02d}",
                email=email,
            )
            role = StaffRole.ADMIN if admin else StaffRole.STAFF
            user = User(bureau_id=bureau.id, person=person, status=UserStatus.ACTIVE, staff_role=role)
            user.password_hash = password_hash
            db.session.add_all([person, user])
        db.session.commit()

        rng = func.random()
        real_client = (Client.bureau_id == bureau.id, Client.is_internal.is_(False), Client.archived_at.is_(None))
        clients = db.session.execute(select(Client.id, Client.org_number).where(*real_client).order_by(rng).limit(2000))
        clients = clients.all()
        save_clients = db.session.scalars(
            select(Client.id)
            .where(*real_client, or_(Client.phone.is_(None), Client.phone.in_(("", BENCH_PHONE))))
            .order_by(rng)
            .limit(500)
        ).all()
        save_persons = db.session.scalars(
            select(Person.id)
            .join(Person.client)
            .where(*real_client, Person.archived_at.is_(None))
            .where(or_(Person.phone.is_(None), Person.phone.in_(("", BENCH_PHONE))))
            .order_by(rng)
            .limit(500)
        ).all()
        blocked = db.session.scalars(
            select(User.id)
            .join(User.person)
            .join(Person.client)
            .where(*real_client, User.status == UserStatus.BLOCKED, User.end_date.is_(None))
            .where(User.staff_role.is_(None), User.archived_at.is_(None))
            .order_by(rng)
            .limit(300)
        ).all()
        db.session.rollback()
        db.engine.dispose()
    picker = random.Random(seed)
    client_ids = [row.id for row in clients]
    terms = [*TRADES, *LAST_NAMES, *FIRST_NAMES[:5], "syntetisk.example"]
    terms += [str(picker.choice(client_ids))[-4:] for _ in range(10)]
    terms += [org[:5] for _id, org in picker.sample(clients, min(10, len(clients))) if org]
    return {
        "accounts": accounts,
        "clients": client_ids,
        "save_clients": save_clients,
        "save_persons": save_persons,
        "blocked_users": blocked,
        "terms": terms,
    }


class FormFields(HTMLParser):
    """The fields each POST form on a page sends, as a browser would send them. ``edit`` is the edit form: the one
    holding a ``phone`` field (the field the save task toggles), else the biggest; ``fields`` and ``action`` are its."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[list[tuple[str, str]]] = []
        self.actions: list[str] = []
        self._form: list[tuple[str, str]] | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self._text: list[str] = []

    @property
    def edit(self) -> int | None:
        with_phone = [n for n, form in enumerate(self.forms) if any(name == "phone" for name, _value in form)]
        by_size = sorted(range(len(self.forms)), key=lambda n: len(self.forms[n]), reverse=True)
        return (with_phone or by_size or [None])[0]

    @property
    def fields(self) -> list[tuple[str, str]]:
        return [] if self.edit is None else self.forms[self.edit]

    @property
    def action(self) -> str:
        return "" if self.edit is None else self.actions[self.edit]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self._form = []
            self.forms.append(self._form)
            self.actions.append(a.get("action", ""))
        if self._form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self._form.append((name, a.get("value", "y" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select, self._select_first, self._select_chosen = name, None, False
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                self._form.append((self._select, value))
                self._select_chosen = True
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag: str) -> None:
        if self._form is None:
            return
        if tag == "select" and self._select:
            if not self._select_chosen and self._select_first is not None:
                self._form.append((self._select, self._select_first))
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = "".join(self._text)
            for newline in ("\r\n", "\n"):  # a browser drops the newline that follows <textarea>
                if text.startswith(newline):
                    text = text[len(newline) :]
                    break
            self._form.append((self._textarea, text))
            self._textarea = None
        elif tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)


class Staff(threading.Thread):
    """One staff member: logs in, then performs tasks from the mix until the deadline."""

    def __init__(self, number: int, base: str, account: tuple[str, bool], shared: dict[str, Any], args) -> None:
        super().__init__(name=f"staff-{number}", daemon=True)
        self.base, (self.email, self.admin), self.shared, self.args = base, account, shared, args
        self.rng = random.Random(args.seed * 1000 + number)
        self.records: list[tuple[str, float, int | None, str]] = []  # (kind, ms, status or None, path)
        self.refused: list[str] = []
        self.failures: list[str] = []
        self.reconnects = 0
        self.session = None

    def log_in(self) -> None:
        self.session = login(self.base, self.email, STAFF_PASSWORD)
        self.token = csrf_token(self.session.get(f"{self.base}/admin/clients/", timeout=60).text)

    def run(self) -> None:
        deadline = self.shared["start"] + self.args.duration
        self.shared["barrier"].wait()
        kinds, weights = zip(*MIX.items(), strict=True)
        while time.monotonic() < deadline and not self.shared["stop"].is_set():
            kind = self.rng.choices(kinds, weights)[0]
            try:
                getattr(self, "task_" + kind.replace(" ", "_"))()
            except Exception as exc:  # noqa: BLE001 - every failure is counted, the staff member goes on
                self.failures.append(f"{kind}: {type(exc).__name__}: {exc}"[:300])
            pause = self.rng.expovariate(1 / self.args.think) if self.args.think > 0 else 0
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))

    # --- one HTTP request, timed -------------------------------------------------------------------
    def fetch(self, kind: str, method: str, path: str, **kwargs: Any):
        import requests

        started = time.perf_counter()
        try:
            try:
                answer = self.session.request(
                    method, f"{self.base}{path}", timeout=120, allow_redirects=False, **kwargs
                )
            except requests.ConnectionError as exc:
                # The server closed an idle keep-alive connection just as the request went out (gthread keeps them
                # 2 s); nothing was processed, and a browser sends the request again on a new connection.
                if "Connection aborted" not in str(exc):
                    raise
                self.reconnects += 1
                answer = self.session.request(
                    method, f"{self.base}{path}", timeout=120, allow_redirects=False, **kwargs
                )
        except Exception:
            self.records.append((kind, (time.perf_counter() - started) * 1000, None, path))
            raise
        self.records.append((kind, (time.perf_counter() - started) * 1000, answer.status_code, answer.url))
        if answer.status_code >= 400:
            self.failures.append(f"{kind}: {method} {path} -> {answer.status_code}")
        return answer

    # --- the tasks -----------------------------------------------------------------------------------
    def _pages(self, kinds: set[str], views: tuple[str, ...]) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.shared["catalogue"]
            if entry["kind"] in kinds and entry.get("view") in views and (self.admin or not entry.get("admin_only"))
        ]

    def task_grid(self) -> None:
        entry = self.rng.choice(self._pages({"list", "sort", "filter"}, GRID_VIEWS))
        path = entry["path"]
        if self.rng.random() < 0.3:
            path += ("&" if "?" in path else "?") + f"page={self.rng.randint(1, 4)}"
        self.fetch("grid", "GET", path)

    def _term(self) -> str:
        return self.rng.choice(self.shared["terms"])

    def task_search(self) -> None:
        entry = self.rng.choice(self._pages({"search"}, SEARCH_VIEWS))
        path = entry["path"].split("?")[0]
        self.fetch("search", "GET", path, params={"search": self._term()})

    def task_lookup(self) -> None:
        entry = self.rng.choice(self._pages({"lookup"}, GRID_VIEWS))
        path = entry["path"].split("?")[0]
        self.fetch("lookup", "GET", path, params={"name": entry["name"], "query": self._term()})

    def task_client_page(self) -> None:
        client = self.rng.choice(self.shared["clients"])
        tab = self.rng.choice(("overview", "overview", "people", "packages"))
        self.fetch("client page", "GET", "/admin/clients/manage/", params={"id": client, "tab": tab})

    def task_save(self) -> None:
        """Open a client's or a person's edit form and send it back with the phone toggled. A client's generic edit
        URL leads to the client page's company form (the purpose-built flow), which is then the one sent."""
        view, pool = self.rng.choice((("clients", "save_clients"), ("persons", "save_persons")))
        if not self.shared[pool]:
            return
        key = self.rng.choice(self.shared[pool])
        path = f"/admin/{view}/edit/?id={key}&url=/admin/{view}/"
        form = self.fetch("edit form", "GET", path)
        if form.is_redirect:
            path = urljoin(path, form.headers["Location"])
            form = self.fetch("edit form", "GET", path)
        if form.status_code != 200:
            return
        parser = FormFields()
        parser.feed(form.text)
        fields = [(name, value) for name, value in parser.fields if name != "phone"]
        phone = dict(parser.fields).get("phone", "")
        fields.append(("phone", "" if phone == BENCH_PHONE else BENCH_PHONE))
        answer = self.fetch("save", "POST", urljoin(path, parser.action) if parser.action else path, data=fields)
        if answer.status_code == 200:
            self.refused.append(f"{view} {key}: {_alert(answer.text)}")

    def task_bulk_action(self) -> None:
        users = self.shared["blocked_users"]
        if not users:
            return
        chosen = [str(user) for user in self.rng.sample(users, min(3, len(users)))]
        for verb in ("reactivate", "deactivate"):
            data = [("action", verb), ("url", "/admin/users/"), ("csrf_token", self.token)]
            data += [("rowid", user) for user in chosen]
            self.fetch("bulk action", "POST", "/admin/users/action/", data=data)


def _alert(html: str) -> str:
    """The first error message shown on a page, for the report."""
    import re

    found = re.search(r'class="[^"]*(?:invalid-feedback|text-danger)[^"]*"[^>]*>\s*(?:<li>)?(.*?)</', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()[:200] if found else "form shown again"


def run(args: argparse.Namespace) -> dict[str, Any]:
    url = build(args.database, args.clients, args.data_dir, args.pg_prefix, args.fresh)
    catalogue = pages(url)
    shared = prepare(url, args.staff, args.seed)
    shared["catalogue"] = catalogue
    with served("app:create_app()", url, args.port, args, "product") as base:
        staff = [Staff(n, base, account, shared, args) for n, account in enumerate(shared["accounts"], start=1)]
        started = time.monotonic()
        for member in staff:
            member.log_in()
        print(f"{len(staff)} staff logged in in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        shared["barrier"] = threading.Barrier(len(staff) + 1)
        shared["stop"] = threading.Event()
        shared["start"] = time.monotonic()
        for member in staff:
            member.start()
        shared["barrier"].wait()
        machine_before, own_before = machine_cpu(), own_cpu()
        try:
            while any(member.is_alive() for member in staff):
                time.sleep(0.5)
        finally:  # on Ctrl-C, let every staff member finish its request before the server stops
            shared["stop"].set()
            for member in staff:
                member.join(timeout=130)
        elapsed = time.monotonic() - shared["start"]
        machine_after, own_after = machine_cpu(), own_cpu()
        peak_rss_mb = workers_peak_rss_mb(base)
    report = summarise(args, staff, elapsed)
    busy, total = (after - before for after, before in zip(machine_after, machine_before, strict=True))
    report["cpu"] = {
        "cores": os.cpu_count(),
        "machine_busy": busy / total if total else 0.0,
        "generator_seconds": own_after - own_before,
        "server_ms_per_request": 1000
        * (busy / _TICKS - (own_after - own_before))
        / max(report["overall"]["requests"], 1),
    }
    report["worker_peak_rss_mb"] = peak_rss_mb
    return report


_TICKS = os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat: the server, the database and this
    generator share the same cores, so the report says how busy they were."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def own_cpu() -> float:
    """CPU seconds this generator process has used (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summarise(args: argparse.Namespace, staff: list[Staff], elapsed: float) -> dict[str, Any]:
    by_kind: dict[str, list[float]] = defaultdict(list)
    errors_by_kind: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for member in staff:
        for kind, ms, status, _path in member.records:
            by_kind[kind].append(ms)
            statuses[str(status)] += 1
            if status is None or status >= 400:
                errors_by_kind[kind] += 1
    every = [ms for values in by_kind.values() for ms in values]
    failures = [failure for member in staff for failure in member.failures]
    refused = [refusal for member in staff for refusal in member.refused]

    def figures(values: list[float], errors: int) -> dict[str, Any]:
        return {
            "requests": len(values),
            "errors": errors,
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "p99": percentile(values, 99),
            "max": max(values, default=0.0),
            "per_second": len(values) / elapsed if elapsed else 0.0,
        }

    return {
        "database": args.database,
        "clients": args.clients,
        "staff": len(staff),
        "duration": elapsed,
        "think": args.think,
        "server": {"workers": args.workers, "worker_class": args.worker_class, "threads": args.threads},
        "overall": figures(every, sum(errors_by_kind.values())),
        "kinds": {kind: figures(values, errors_by_kind[kind]) for kind, values in sorted(by_kind.items())},
        "statuses": dict(statuses),
        "refused_saves": len(refused),
        "refused_examples": refused[:10],
        "slowest": [
            {"kind": kind, "ms": ms, "status": status, "url": path}
            for kind, ms, status, path in sorted(
                (record for member in staff for record in member.records), key=lambda record: -record[1]
            )[:20]
        ],
        "reconnects": sum(member.reconnects for member in staff),
        "failures": len(failures),
        "failure_examples": failures[:20],
    }


def print_report(args: argparse.Namespace, report: dict[str, Any]) -> None:
    server = report["server"]
    print(
        f"\n{report['database']}, {report['clients']:,} clients: {report['staff']} staff for {report['duration']:.0f} s, "
        f"{report['think']:g} s mean pause between clicks; gunicorn {server['workers']} workers, "
        f"{server['worker_class']}, {server['threads']} threads. Times in ms.\n"
    )
    print("| requests | kind | errors | p50 | p95 | p99 | max | per second |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    rows = [("overall", report["overall"]), *report["kinds"].items()]
    for kind, f in rows:
        print(
            f"| {f['requests']:,} | {kind} | {f['errors']} | {f['p50']:.0f} | {f['p95']:.0f} | {f['p99']:.0f} "
            f"| {f['max']:.0f} | {f['per_second']:.1f} |"
        )
    overall = report["overall"]
    met = overall["p95"] <= TARGET_MS and overall["errors"] == 0 and report["failures"] == 0
    print(
        f"\nTarget p95 <= {TARGET_MS:.0f} ms with 0 errors: {'met' if met else 'MISSED'} "
        f"(p95 {overall['p95']:.0f} ms, {overall['errors']} error responses, {report['failures']} failures, "
        f"{report['refused_saves']} saves refused, {report['reconnects']} requests sent again after the server "
        "closed an idle keep-alive connection)."
    )
    cpu = report.get("cpu")
    if cpu:
        print(
            f"CPU: the {cpu['cores']} cores were {cpu['machine_busy']:.0%} busy during the run; this load generator "
            f"used {cpu['generator_seconds']:.0f} CPU seconds of them; the server and the database used about "
            f"{cpu['server_ms_per_request']:.0f} CPU ms per request."
        )
    if report.get("worker_peak_rss_mb") is not None:
        print(f"Memory: the largest gunicorn worker peaked at {report['worker_peak_rss_mb']:.0f} MB resident.")
    for example in report["failure_examples"][:10]:
        print(f"  failure: {example}")
    for example in report["refused_examples"][:5]:
        print(f"  refused save: {example}")
