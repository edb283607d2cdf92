"""Synthetic bulk data: up to millions of clients with users and packages, for load and billing tests.

Rows are streamed straight to the driver (PostgreSQL ``COPY``, SQLite ``executemany``) with ids
computed from each table's current ``MAX(id)``, so memory stays flat whatever the size. Run it
while nobody else writes to the same tables: the ids are not reserved against concurrent inserts.
Unlike other services it commits (once per batch). The history and e-mails the same clients would have left behind
are written as rows too (audit entries for the client and each user, a consent e-mail per client, an invitation per
user), already sent, so the event log and outbox grids are measured at scale; no e-mail is ever sent for them.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import Column, Connection, Engine, Table, func, insert, select, text
from sqlalchemy.exc import OperationalError

from models import (
    AlertKind,
    AuditEntry,
    Bureau,
    Client,
    OutboxMessage,
    Package,
    PackageAssignment,
    PackageKind,
    Person,
    RegistryAlert,
    User,
)
from models.base import utcnow
from models.search import DOCUMENTS
from services.billing_totals import record_bureau_change
from services.errors import DomainError
from services.orgnumbers import valid_numbers
from services.statistics import refresh_statistics

log = logging.getLogger(__name__)

# SQLite's page cache while an index or search document is built again after a load (KiB): the sort of a million
# clients' keys spilled to disk with the default 2 MB and took over half an hour.
REBUILD_CACHE_KIB = 1_048_576

if TYPE_CHECKING:
    import sqlite3

    import psycopg

SYNTHETIC_BUREAU_ORG_NUMBER = "999999999"
SYNTHETIC_BUREAU_NAME = "Syntetisk byrå AS"

# Real organisation numbers start with 8 or 9; synthetic clients take the 3xxxxxxxx range so they
# never collide with real ones or with the demo data (91xxxxxxx).
FIRST_PREFIX = 30_000_000
LAST_PREFIX = 39_999_999

# code, name, kind, rank, price
CATALOGUE = [
    ("BASIS", "Basis", PackageKind.MAIN, 1, Decimal("199.00")),
    ("PLUSS", "Pluss", PackageKind.MAIN, 2, Decimal("349.00")),
    ("PREMIUM", "Premium", PackageKind.MAIN, 3, Decimal("599.00")),
    ("FAKTURA", "Fakturering", PackageKind.ADDON, None, Decimal("99.00")),
    ("LONN", "Lønn", PackageKind.ADDON, None, Decimal("79.00")),
    ("BANK", "Bankintegrasjon", PackageKind.ADDON, None, Decimal("49.00")),
]

# Lengths 13 and 11 are coprime, so first and last names combine in 143 ways.
FIRST_NAMES = "Anne Bjørn Camilla Daniel Eva Fredrik Guro Håkon Ida Jonas Kari Linn Magnus".split()
LAST_NAMES = "Andersen Bakke Dahl Eide Haugen Johansen Moen Nilsen Solberg Strand Aas".split()
TRADES = "Bakeri Bygg Elektro Frisør Gartneri IT Maskin Rør Snekkeri Transport Verksted".split()

CLIENT_COLUMNS = (
    "id bureau_id name org_number organisation_form is_internal is_demo"
    " company_lookup_enabled custom_invoice_email_enabled consent_status version created_at"
).split()
PERSON_COLUMNS = "id bureau_id client_id kind first_name last_name email version created_at".split()
USER_COLUMNS = "id bureau_id person_id person_kind status bank_access user_admin version created_at".split()
ASSIGNMENT_COLUMNS = "id bureau_id user_id package_id package_kind valid_from valid_to version created_at".split()
AUDIT_COLUMNS = "id bureau_id at actor_label action entity entity_id changes version".split()
OUTBOX_COLUMNS = (
    "id bureau_id message_id recipient subject body_text kind client_id related status attempts last_error sent_at"
    " version created_at"
).split()
ALERT_COLUMNS = (
    "id bureau_id client_id kind change_key org_number client_name details register_date seen_at acknowledged_at"
    " acknowledged_by_label digested_at version"
).split()
# One client in ALERT_EVERY has had a register alert, and one alert in ALERT_OPEN_EVERY is still open (a million
# clients: 5,000 alerts, 500 open), so the alerts grid and Hjem are measured with rows to read.
ALERT_EVERY, ALERT_OFFSET, ALERT_OPEN_EVERY = 200, 77, 10
ALERT_KINDS = tuple(AlertKind)
# Who made the synthetic changes (the event log's "Who"), and over how long the history and e-mails are spread.
STAFF_LABELS = ("Kari Nilsen", "Ola Haugen", "Ingrid Dahl", "Per Moen", "Synthetic load (CLI)")
HISTORY_SPAN = timedelta(days=365)

SQLITE_PRAGMAS = ("journal_mode", "synchronous", "cache_size")
LOADED_TABLES: tuple[Table, ...] = (
    Client.__table__,
    Person.__table__,
    User.__table__,
    PackageAssignment.__table__,
    AuditEntry.__table__,
    OutboxMessage.__table__,
    RegistryAlert.__table__,
)


Rows = Iterator[tuple[Any, ...]]
TableRows = tuple[str, Sequence[str], Rows]


class UnknownBureauError(DomainError):
    """No bureau has the org number the caller named."""


class SeedSummary(TypedDict):
    """Rows added by one ``seed_synthetic`` call."""

    bureau_id: int
    bureaus: int
    packages: int
    clients: int
    persons: int
    users: int
    package_assignments: int
    audit_entries: int
    outbox_messages: int
    registry_alerts: int


def persons_before(n: int) -> int:
    """Persons belonging to the first ``n`` synthetic clients (client ``i`` has ``2 + i % 3``: three on average)."""
    return 2 * n + 3 * (n // 3) + (1 if n % 3 == 2 else 0)


def audit_entries_before(n: int) -> int:
    """Audit entries of the first ``n`` synthetic clients: two for the client, one for each of its users."""
    return 2 * n + persons_before(n)


def outbox_messages_before(n: int) -> int:
    """E-mails of the first ``n`` synthetic clients: the consent request, and one invitation per user."""
    return n + persons_before(n)


def alerts_before(n: int) -> int:
    """Register alerts of the first ``n`` synthetic clients (client ``i`` has one when ``i % 200 == 77``)."""
    return (n + ALERT_EVERY - ALERT_OFFSET - 1) // ALERT_EVERY


@dataclass(frozen=True)
class _Plan:
    """Everything the row generators need, with constants already in the driver's format."""

    bureau_id: int
    client_base: int
    person_base: int
    user_base: int
    assignment_base: int
    audit_base: int
    outbox_base: int
    alert_base: int
    clients_total: int
    history_start: datetime  # the first client's history begins here; the last one's ends about now
    stamp: Callable[[datetime], Any]  # a timestamp as the driver takes it
    main_ids: Sequence[int]
    addon_ids: Sequence[int]
    true: Any
    false: Any
    created_at: Any
    valid_from: Sequence[Any]  # first day of each of the last 12 months
    ended: Any  # last day of the previous month

    def clients(self, start: int, stop: int, org_numbers: Iterator[str]) -> Rows:
        true, false, bureau_id, created_at = self.true, self.false, self.bureau_id, self.created_at
        for i, org_number in zip(range(start, stop), org_numbers):  # noqa: B905 - org_numbers is open-ended
            client_id = self.client_base + 1 + i
            name = f"{TRADES[i % len(TRADES)]} {client_id} AS"
            is_demo = true if i % 50 == 49 else false
            consent = "pending" if i % 12 == 5 else "declined" if i % 97 == 13 else "given"
            yield (client_id, bureau_id, name, org_number, "AS", false, is_demo, false, false, consent, 1, created_at)

    def persons(self, start: int, stop: int) -> Rows:
        bureau_id, created_at = self.bureau_id, self.created_at
        k = persons_before(start)
        for i in range(start, stop):
            client_id = self.client_base + 1 + i
            for _ in range(2 + i % 3):
                person_id = self.person_base + 1 + k
                first, last, email = FIRST_NAMES[k % 13], LAST_NAMES[k % 11], f"p{person_id}@syntetisk.example"
                yield (person_id, bureau_id, client_id, "user", first, last, email, 1, created_at)
                k += 1

    def users(self, start: int, stop: int) -> Rows:
        bureau_id, created_at, false = self.bureau_id, self.created_at, self.false
        for k in range(persons_before(start), persons_before(stop)):
            status = "invited" if k % 20 == 0 else "blocked" if k % 50 == 7 else "active"
            user_id, person_id = self.user_base + 1 + k, self.person_base + 1 + k
            yield (user_id, bureau_id, person_id, "user", status, false, false, 1, created_at)

    def assignments(self, start: int, stop: int) -> Rows:
        """One main package and one add-on per user; about a tenth of each ended last month."""
        bureau_id, created_at, valid_from, ended = self.bureau_id, self.created_at, self.valid_from, self.ended
        mains, addons = self.main_ids, self.addon_ids
        for k in range(persons_before(start), persons_before(stop)):
            user_id = self.user_base + 1 + k
            first_id = self.assignment_base + 1 + 2 * k
            main_end = ended if k % 10 == 3 else None
            addon_end = ended if k % 7 == 2 else None
            main = mains[k % len(mains)]
            addon = addons[k % len(addons)]
            yield (first_id, bureau_id, user_id, main, "main", valid_from[k % 12], main_end, 1, created_at)
            yield (first_id + 1, bureau_id, user_id, addon, "addon", valid_from[k * 7 % 12], addon_end, 1, created_at)

    def moment(self, i: int, seconds: int = 0) -> datetime:
        """When client ``i``'s history happened: spread evenly over ``HISTORY_SPAN``, in client order."""
        return self.history_start + HISTORY_SPAN * i / self.clients_total + timedelta(seconds=seconds)

    def audit_entries(self, start: int, stop: int) -> Rows:
        """The client's creation and a later change, and each of its users' creation."""
        bureau_id, stamp, labels = self.bureau_id, self.stamp, STAFF_LABELS
        entry_id = self.audit_base + audit_entries_before(start)
        k = persons_before(start)
        for i in range(start, stop):
            client_id = self.client_base + 1 + i
            actor = labels[i % len(labels)]
            created = json.dumps({"name": {"from": None, "to": f"{TRADES[i % len(TRADES)]} {client_id} AS"}})
            changed = json.dumps({"organisation_form": {"from": None, "to": "AS"}})
            entry_id += 1
            yield (entry_id, bureau_id, stamp(self.moment(i)), actor, "create", "clients", client_id, created, 1)
            entry_id += 1
            yield (entry_id, bureau_id, stamp(self.moment(i, 3600)), actor, "update", "clients", client_id, changed, 1)
            for j in range(2 + i % 3):
                user_id = self.user_base + 1 + k
                status = json.dumps({"status": {"from": None, "to": "invited"}})
                entry_id += 1
                yield (entry_id, bureau_id, stamp(self.moment(i, 60 + j)), actor, "create", "users", user_id, status, 1)
                k += 1

    def outbox_messages(self, start: int, stop: int) -> Rows:
        """The consent request to the client's first person and an invitation to each user, nearly all sent."""
        bureau_id, stamp = self.bureau_id, self.stamp
        message_id = self.outbox_base + outbox_messages_before(start)
        k = persons_before(start)
        for i in range(start, stop):
            client_id = self.client_base + 1 + i
            name = f"{TRADES[i % len(TRADES)]} {client_id} AS"
            contact = f"p{self.person_base + 1 + k}@syntetisk.example"
            message_id += 1
            sent = stamp(self.moment(i, 5))
            yield (
                message_id, bureau_id, f"<synthetic-{message_id}@synthetic.invalid>", contact,
                f"Samtykke til å føre regnskapet for {name}", f"Godkjenn at regnskapet for {name} føres hos oss.",
                "consent", client_id, None, "sent", 1, None, sent, 1, stamp(self.moment(i)),
            )  # fmt: skip
            for _ in range(2 + i % 3):
                user_id, recipient = self.user_base + 1 + k, f"p{self.person_base + 1 + k}@syntetisk.example"
                failed = k % 40 == 17
                message_id += 1
                yield (
                    message_id, bureau_id, f"<synthetic-{message_id}@synthetic.invalid>", recipient,
                    f"Invitasjon til {name} i regnskapsprogrammet", f"Du er invitert til {name}.",
                    "invitation", client_id, f"user:{user_id}", "failed" if failed else "sent", 5 if failed else 1,
                    "550 mailbox unavailable" if failed else None, None if failed else stamp(self.moment(i, 120)),
                    1, stamp(self.moment(i, 60)),
                )  # fmt: skip
                k += 1

    def alerts(self, start: int, stop: int, org_numbers: Sequence[str]) -> Rows:
        """A register alert for one client in ``ALERT_EVERY``, of every kind in turn; most acknowledged."""
        bureau_id, stamp = self.bureau_id, self.stamp
        alert_id = self.alert_base + alerts_before(start)
        for i in range(start + (ALERT_OFFSET - start) % ALERT_EVERY, stop, ALERT_EVERY):
            client_id = self.client_base + 1 + i
            n = (i - ALERT_OFFSET) // ALERT_EVERY
            kind = ALERT_KINDS[n % len(ALERT_KINDS)]
            name = f"{TRADES[i % len(TRADES)]} {client_id} AS"
            seen = self.moment(i, 7200)
            details = (
                {"old": name, "new": f"{name} Holding"} if kind is AlertKind.NAME_CHANGED else {"previous": "active"}
            )
            is_open = n % ALERT_OPEN_EVERY == 0
            alert_id += 1
            yield (
                alert_id, bureau_id, client_id, kind.value, f"synthetic-{n}", org_numbers[i - start], name,
                json.dumps(details), seen.date().isoformat(), stamp(seen), None if is_open else stamp(seen),
                None if is_open else STAFF_LABELS[n % len(STAFF_LABELS)], stamp(seen), 1,
            )  # fmt: skip

    def tables(self, start: int, stop: int, org_numbers: Iterator[str]) -> list[TableRows]:
        """The rows of clients ``start`` to ``stop - 1``, parents before children."""
        numbers = list(itertools.islice(org_numbers, stop - start))
        return [
            ("clients", CLIENT_COLUMNS, self.clients(start, stop, iter(numbers))),
            ("persons", PERSON_COLUMNS, self.persons(start, stop)),
            ("users", USER_COLUMNS, self.users(start, stop)),
            ("package_assignments", ASSIGNMENT_COLUMNS, self.assignments(start, stop)),
            ("audit_entries", AUDIT_COLUMNS, self.audit_entries(start, stop)),
            ("outbox_messages", OUTBOX_COLUMNS, self.outbox_messages(start, stop)),
            ("registry_alerts", ALERT_COLUMNS, self.alerts(start, stop, numbers)),
        ]


def seed_synthetic(
    engine: Engine,
    *,
    clients: int,
    bureau_org_number: str | None = None,
    batch_size: int = 50_000,
    workers: int = 2,
) -> SeedSummary:
    """Bulk-load ``clients`` synthetic clients into a bureau (by default the synthetic one), committing per batch.

    ``batch_size`` counts clients per committed batch; each client brings on average three persons,
    three users and six package assignments. On PostgreSQL ``workers`` connections load batches in
    parallel (the constraint checks, not Python, are the bottleneck); SQLite has one writer. An error
    keeps the batches committed before it.
    """
    if clients < 1 or batch_size < 1 or workers < 1:
        raise ValueError("clients, batch_size and workers must be positive")
    dialect = engine.dialect.name
    if dialect not in _LOADERS:
        raise DomainError(f"Synthetic data can only be loaded into SQLite or PostgreSQL, not {dialect}.")

    with engine.connect() as connection:
        bureau_id, bureaus_added = _bureau(connection, bureau_org_number)
        packages_added = _catalogue(connection, bureau_id) if bureau_org_number is None else 0
        main_ids, addon_ids = _package_ids(connection, bureau_id)
        org_numbers = _org_numbers(connection, bureau_id, clients)
        plan = _plan(connection, bureau_id, main_ids, addon_ids, clients)
        connection.commit()

    parallel = workers if dialect == "postgresql" else 1  # SQLite has a single writer at a time
    with _secondary_indexes_set_aside(engine):
        _run_batches(engine, _LOADERS[dialect], plan, org_numbers, clients, batch_size, parallel)
    if dialect == "postgresql":
        _move_postgresql_sequences(engine)
    with engine.begin() as connection:  # the rows bypassed the ORM's change hook: the worker recomputes the bureau
        record_bureau_change(connection, bureau_id)
    with engine.connect() as connection:
        refresh_statistics(connection)
        connection.commit()

    persons = persons_before(clients)
    return SeedSummary(
        bureau_id=bureau_id,
        bureaus=bureaus_added,
        packages=packages_added,
        clients=clients,
        persons=persons,
        users=persons,
        package_assignments=2 * persons,
        audit_entries=audit_entries_before(clients),
        outbox_messages=outbox_messages_before(clients),
        registry_alerts=alerts_before(clients),
    )


def _bureau(connection: Connection, org_number: str | None) -> tuple[int, int]:
    """The target bureau's id and whether it was created (only the synthetic bureau ever is)."""
    table = Bureau.__table__
    wanted = SYNTHETIC_BUREAU_ORG_NUMBER if org_number is None else "".join(org_number.split())
    bureau_id = connection.scalar(select(table.c.id).where(table.c.org_number == wanted))
    if bureau_id is not None:
        return bureau_id, 0
    if org_number is not None:
        raise UnknownBureauError(f"No bureau has org number {org_number!r}.")
    result = connection.execute(insert(table).values(org_number=wanted, name=SYNTHETIC_BUREAU_NAME))
    return result.inserted_primary_key[0], 1


def _catalogue(connection: Connection, bureau_id: int) -> int:
    """Give the synthetic bureau a small package catalogue when it has none; returns packages added."""
    table = Package.__table__
    if connection.scalar(select(table.c.id).where(table.c.bureau_id == bureau_id).limit(1)) is not None:
        return 0
    common = {"bureau_id": bureau_id, "requires_main": False, "active": True}
    rows = [
        {**common, "code": code, "name": name, "kind": kind, "rank": rank, "price": price}
        for code, name, kind, rank, price in CATALOGUE
    ]
    connection.execute(insert(table), rows)
    return len(rows)


def _package_ids(connection: Connection, bureau_id: int) -> tuple[list[int], list[int]]:
    """The bureau's active main packages (by rank) and add-ons (by code); both kinds are needed."""
    table = Package.__table__
    rows = connection.execute(
        select(table.c.id, table.c.kind)
        .where(table.c.bureau_id == bureau_id, table.c.active.is_(True))
        .order_by(table.c.rank, table.c.code)
    ).all()
    mains = [package_id for package_id, kind in rows if kind is PackageKind.MAIN]
    addons = [package_id for package_id, kind in rows if kind is PackageKind.ADDON]
    if not mains or not addons:
        raise DomainError("The bureau needs at least one active main package and one active add-on.")
    return mains, addons


def _org_numbers(connection: Connection, bureau_id: int, clients: int) -> Iterator[str]:
    """Valid org numbers in the synthetic range above any the bureau already uses, enough for ``clients``."""
    org_number = Client.__table__.c.org_number
    highest = connection.scalar(
        select(func.max(org_number)).where(
            Client.__table__.c.bureau_id == bureau_id,
            org_number.between(f"{FIRST_PREFIX}0", f"{LAST_PREFIX}9"),
        )
    )
    start = int(highest[:8]) + 1 if highest else FIRST_PREFIX
    # Prefixes ending 0-9 differ by 2 in weighted sum, so at most one in each ten lacks a check digit.
    if ((LAST_PREFIX + 1 - start) // 10 - 1) * 9 < clients:
        raise DomainError(f"The synthetic org number range has no room for {clients} more clients in this bureau.")
    return valid_numbers(start)


def _plan(
    connection: Connection, bureau_id: int, main_ids: list[int], addon_ids: list[int], clients_total: int
) -> _Plan:
    def highest_id(table: Table) -> int:
        return connection.scalar(select(func.max(table.c.id))) or 0

    def bound(column: Column[Any], value: Any) -> Any:
        """``value`` as the driver takes it for ``column`` (SQLite keeps booleans as 0/1, dates as text)."""
        processor = column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
        return processor(value) if processor else value

    assignments = PackageAssignment.__table__
    clients = Client.__table__
    this_month = date.today().replace(day=1)
    months: list[date] = []
    first = this_month
    for _ in range(12):
        first = (first - timedelta(days=1)).replace(day=1)
        months.append(first)
    return _Plan(
        bureau_id=bureau_id,
        client_base=highest_id(clients),
        person_base=highest_id(Person.__table__),
        user_base=highest_id(User.__table__),
        assignment_base=highest_id(assignments),
        audit_base=highest_id(AuditEntry.__table__),
        outbox_base=highest_id(OutboxMessage.__table__),
        alert_base=highest_id(RegistryAlert.__table__),
        clients_total=clients_total,
        history_start=utcnow() - HISTORY_SPAN,
        stamp=_stamper(connection),
        main_ids=main_ids,
        addon_ids=addon_ids,
        true=bound(clients.c.is_demo, True),
        false=bound(clients.c.is_demo, False),
        created_at=bound(clients.c.created_at, utcnow()),
        valid_from=[bound(assignments.c.valid_from, month) for month in months],
        ended=bound(assignments.c.valid_to, this_month - timedelta(days=1)),
    )


def _stamper(connection: Connection) -> Callable[[datetime], Any]:
    """Timestamps as the driver takes them (SQLite: text), converted without a lookup per row."""
    dialect = connection.dialect
    processor = Client.__table__.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    return processor or (lambda moment: moment)


def _run_batches(
    engine: Engine,
    loader: _Loader,
    plan: _Plan,
    org_numbers: Iterator[str],
    clients: int,
    batch_size: int,
    workers: int,
) -> None:
    """Load every batch, each worker on its own connection taking the next batch until none is left."""
    starts = iter(range(0, clients, batch_size))
    lock = threading.Lock()
    failed = threading.Event()

    def next_batch() -> list[TableRows] | None:
        with lock:  # org numbers are drawn in order, so each batch takes its own run of them
            start = next(starts, None)
            if start is None or failed.is_set():
                return None
            stop = min(start + batch_size, clients)
            numbers = list(itertools.islice(org_numbers, stop - start))
        return plan.tables(start, stop, iter(numbers))

    def work() -> None:
        with engine.connect() as connection, loader.session(connection.connection.driver_connection) as raw:
            try:
                while (batch := next_batch()) is not None:
                    for table, columns, rows in batch:
                        loader.write(raw, table, columns, rows)
                    raw.commit()
            except BaseException:
                failed.set()
                raw.rollback()
                raise

    if workers == 1:
        work()
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seed-synthetic") as pool:
        futures = [pool.submit(work) for _ in range(workers)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            failed.set()  # the other workers stop after their current batch
            raise


@contextmanager
def _secondary_indexes_set_aside(engine: Engine) -> Iterator[None]:
    """For the load only, the grids' indexes (bureau first) and the search documents of the loaded tables are set
    aside and built again from the loaded rows afterwards (also when the load fails). Inserting millions of rows at
    random places into some forty indexes and four trigram documents, a page cache's worth at a time, made a million
    clients take hours; building each index once takes minutes. Unique indexes, constraints, the rules' triggers and
    the indexes they read (a user's assignments for the one-main-package rule) stay on."""
    dialect = engine.dialect.name
    loaded = {table.name for table in LOADED_TABLES}
    indexes = [
        index
        for table in LOADED_TABLES
        for index in sorted(table.indexes, key=str)
        if not index.unique and next(iter(index.columns)).name == "bureau_id"  # the grids'; the rules' stay
    ]
    documents = [document for document in DOCUMENTS if document.table in loaded]
    with engine.begin() as connection:
        first_new = {
            document.table: connection.scalar(text(f"SELECT coalesce(max(id), 0) FROM {document.table}"))
            for document in documents
        }
        for index in indexes:
            index.drop(connection, checkfirst=True)
        for document in documents:
            for statement in document.drop_sql(dialect):
                if not statement.startswith("DROP TABLE"):  # SQLite keeps the FTS table: only its triggers go
                    connection.execute(text(statement))
    try:
        yield
    finally:
        _rebuild(engine, indexes, documents, first_new)


def _rebuild(engine: Engine, indexes: list[Any], documents: list[Any], first_new: dict[str, int]) -> None:
    """Each set-aside index and search document built again, one committed step at a time, the time of each logged.
    One transaction for all of them kept every new page in SQLite's write-ahead log until the end (gigabytes, read
    back page by page); a step that fails leaves the earlier ones built, and seeding again builds the rest (indexes
    are created only when missing)."""
    dialect = engine.dialect.name
    steps: list[tuple[str, Callable[[Connection], None]]] = [
        (f"index {index.name}", lambda connection, index=index: index.create(connection, checkfirst=True))
        for index in indexes
    ]
    for document in documents:
        if dialect == "postgresql":
            statements = [text(statement) for statement in document.create_sql(dialect)]
        else:
            statements = [
                text(
                    f"INSERT INTO {document.fts_table} (rowid, doc)"
                    f" SELECT id, {document.expression(dialect)} FROM {document.table} WHERE id > :first"
                ).bindparams(first=first_new[document.table]),
                *(text(sql) for sql in document.create_sql(dialect) if sql.startswith("CREATE TRIGGER")),
            ]
        steps.append(
            (
                f"search document of {document.table}",
                lambda connection, statements=statements: [connection.execute(sql) for sql in statements],
            )
        )
    for label, step in steps:
        started = time.monotonic()
        with engine.begin() as connection:
            if dialect == "postgresql":
                connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            else:  # SQLite sorts an index's keys in its page cache: the default 2 MB spilled millions of rows to disk
                cache_size = connection.exec_driver_sql("PRAGMA cache_size").scalar()
                connection.exec_driver_sql(f"PRAGMA cache_size = {-REBUILD_CACHE_KIB}")
            try:
                step(connection)
            finally:
                if dialect == "sqlite":
                    connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache_size)}")
        if dialect == "sqlite":
            _checkpoint(engine)
        log.info("seed-synthetic: built %s in %.0f s", label, time.monotonic() - started)


def _checkpoint(engine: Engine) -> None:
    """Move the step's pages from SQLite's write-ahead log into the database file and restart the log. Only a
    saving: when another connection holds the database (an in-memory test database), the log simply grows."""
    with engine.connect() as connection:
        try:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except OperationalError as exc:
            log.debug("seed-synthetic: no checkpoint (%s)", exc)


@contextmanager
def _sqlite_session(raw: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A fast but crash-unsafe journal for the load only; the previous settings come back afterwards."""
    saved = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in SQLITE_PRAGMAS}
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = OFF")
    raw.execute("PRAGMA cache_size = -65536")  # 64 MiB
    try:
        yield raw
    finally:
        for name, value in saved.items():
            raw.execute(f"PRAGMA {name} = {value}")


def _sqlite_write(raw: sqlite3.Connection, table: str, columns: Sequence[str], rows: Rows) -> None:
    if not raw.in_transaction:
        raw.execute("BEGIN")
    placeholders = ", ".join("?" * len(columns))
    raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)


def _postgresql_write(raw: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Rows) -> None:
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)


def _move_postgresql_sequences(engine: Engine) -> None:
    """Move the id sequences past the explicit ids."""
    with engine.connect() as connection:
        for table in LOADED_TABLES:
            highest = select(func.max(table.c.id)).scalar_subquery()
            connection.execute(select(func.setval(func.pg_get_serial_sequence(table.name, "id"), highest)))
        connection.commit()


@dataclass(frozen=True)
class _Loader:
    """How one dialect prepares a connection for the load and streams a table's rows into it."""

    session: Callable[[Any], AbstractContextManager[Any]]
    write: Callable[[Any, str, Sequence[str], Rows], None]


_LOADERS = {
    "sqlite": _Loader(_sqlite_session, _sqlite_write),
    "postgresql": _Loader(nullcontext, _postgresql_write),
}
