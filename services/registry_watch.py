"""The register watch: follow the register's change feed and tell each bureau what happened to its clients.

One run (the outbox worker every ``REGISTRY_WATCH_MINUTES``, or ``flask registry watch --once``):

1. takes the lease on the watch's row (``RegistryWatchState`` id 1), so one run at a time reads the feed;
2. reads the feed forward from the stored position (the last ``oppdateringsid`` handled; the first run from
   ``REGISTRY_WATCH_SINCE``, else from the moment it first ran, kept so that a failed first run loses nothing), one
   page after the other, and for each page asks the database ONCE which org numbers belong to a client of any bureau
   (``ix_clients_org_number``); updates about other companies are passed over without a lookup. Archived clients are
   not watched: the bureau has stopped working with them ("Gjenopprett" and "Oppdater fra Brønnøysund" bring one up
   to date);
3. fetches every matched company once, 100 numbers per register call (``lookup_many``), and the few the search does
   not return one by one (a removed company answers 410 there);
4. compares each with the stored client and, in ONE transaction with the new position, raises the alerts: one per
   (client, kind, change) — the unique key ``change_key`` and a check before inserting mean a second run, or a
   second update about the same change, raises none. A status (bankrupt, deleted, …) is recorded on the client at
   once (``registry_status``, in the client's history under "registry watch"); a new name, address or form is not
   applied: the alert offers "Oppdater fra Brønnøysund" (the existing diff).

If the register fails anywhere (unreachable, 5xx after retries, nonsense), nothing is written but the error: the
position stays where it was, so the next run reads the same updates again and nothing is skipped.

What the register's date of an alert is: for a status, the register's own date of it (``konkursdato``,
``underAvviklingDato``, the forced-dissolution dates, ``underRekonstruksjonsforhandlingDato``, ``slettedato``), else
the day (Europe/Oslo) of the feed's update; for a name, address or form, the day of the update that changed it.
A name, address or form alert is raised only when an update of the run touched that field (its ``endringer``; an
update that lists none counts as touching everything) and the register's value differs from the client's: a client
whose name was typed differently from the register's is not reported again on every unrelated update.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Client, RegistryAlert, RegistryWatchState
from models.alert import STATUS_KINDS, AlertKind
from models.base import utcnow
from services.audit import acting_as
from services.client_refresh import address_values, comparable, differs
from services.registry import (
    Address,
    CompanyNotFound,
    CompanyRecord,
    CompanyRegistry,
    CompanyStatus,
    RegistryError,
    RegistryUpdate,
    UpdateKind,
)

log = logging.getLogger(__name__)

STATE_ID = 1
LEASE = timedelta(minutes=10)
PAGE_SIZE = 100
MAX_PAGES = 200
ACTOR_LABEL = "registry watch"
OSLO = ZoneInfo("Europe/Oslo")
# The clients loaded at once when the alerts are raised (ids in one IN list).
CLIENT_CHUNK = 500

# Where the feed's JSON-Patch paths put each field an alert is about.
NAME_PATHS = ("/navn",)
FORM_PATHS = ("/organisasjonsform",)
ADDRESS_PATHS = {"business": ("/forretningsadresse", "/beliggenhetsadresse"), "postal": ("/postadresse",)}


class WatchBusy(Exception):
    """Another run holds the watch's lease (or took it over from this one): this run did nothing."""


@dataclass
class WatchReport:
    """What one run did: the CLI's JSON contract."""

    updates_read: int = 0
    clients_matched: int = 0
    alerts_created: int = 0
    position: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "updates_read": self.updates_read,
            "clients_matched": self.clients_matched,
            "alerts_created": self.alerts_created,
            "position": self.position,
        }


@dataclass(frozen=True)
class AlertDraft:
    kind: AlertKind
    change_key: str
    details: dict[str, Any]
    register_date: date | None
    update_id: int | None


@dataclass
class Assessment:
    """What the register says about one client: its new status (None: unchanged) and the alerts to raise."""

    status: str | None = None
    alerts: list[AlertDraft] = field(default_factory=list)


# --- the lease ----------------------------------------------------------------------------------------------------


def parse_since(value: str | None) -> datetime | None:
    """``REGISTRY_WATCH_SINCE`` as a moment: an ISO date or date-time; without a zone it is Europe/Oslo time."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"REGISTRY_WATCH_SINCE must be an ISO date-time such as 2026-12-01T00:00:00+01:00, not {value!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=OSLO)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes; everything stored is UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _ensure_state(session: Session) -> None:
    if session.scalar(select(RegistryWatchState.id).where(RegistryWatchState.id == STATE_ID)) is None:
        try:
            session.execute(insert(RegistryWatchState).values(id=STATE_ID, version=1))
            session.commit()
        except IntegrityError:  # another run made it first
            session.rollback()
    else:
        session.commit()


def _claim(session: Session, token: str, now: datetime, since: datetime) -> tuple[int | None, datetime]:
    """Take the lease (a compare-and-set, committed); the stored position and the first run's starting moment."""
    _ensure_state(session)
    state = RegistryWatchState
    result = session.execute(
        update(state)
        .where(state.id == STATE_ID, or_(state.locked_until.is_(None), state.locked_until < now))
        .values(
            locked_until=now + LEASE,
            lock_token=token,
            last_run_at=now,
            # The first run's moment is kept: a first run that fails starts again from the same moment.
            started_from=func.coalesce(state.started_from, since),
            version=state.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise WatchBusy("another run of the register watch is in progress")
    position, started = session.execute(select(state.position, state.started_from).where(state.id == STATE_ID)).one()
    session.commit()
    return position, _aware(started) or since


def _fenced(session: Session, token: str, **values: Any) -> bool:
    """Write the watch's row only while this run still holds the lease."""
    state = RegistryWatchState
    result = session.execute(
        update(state)
        .where(state.id == STATE_ID, state.lock_token == token)
        .values(version=state.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _release(session: Session, token: str, error: str) -> None:
    """End a failed run: the lease is given back and the reason kept; the position is not touched."""
    try:
        _fenced(session, token, locked_until=None, lock_token=None, last_error=error[:500])
        session.commit()
    except Exception:  # noqa: BLE001 - the run's own failure is what the caller must see
        session.rollback()
        log.exception("Could not record the register watch's failure")


# --- reading the feed ---------------------------------------------------------------------------------------------


@dataclass
class _Reading:
    read: int = 0
    last_id: int | None = None
    clients: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    updates: dict[str, list[RegistryUpdate]] = field(default_factory=lambda: defaultdict(list))


def watched_clients(session: Session, numbers: Iterable[str]) -> list[tuple[int, str]]:
    """(client id, org number) of every bureau's clients among ``numbers``: one query on ``ix_clients_org_number``."""
    wanted = sorted(set(numbers))
    if not wanted:
        return []
    rows = session.execute(
        select(Client.id, Client.org_number).where(Client.org_number.in_(wanted), Client.archived_at.is_(None))
    )
    return [(client_id, number) for client_id, number in rows]


def _read_feed(
    session: Session,
    registry: CompanyRegistry,
    token: str,
    position: int | None,
    started: datetime,
    *,
    page_size: int,
    max_pages: int,
    clock: Callable[[], datetime],
) -> _Reading:
    reading = _Reading()
    renewed = clock()
    for _page in range(max_pages):
        if reading.last_id is not None or position is not None:
            page = registry.updates(after_id=reading.last_id or position, size=page_size)
        else:
            page = registry.updates(since=started, size=page_size)
        if not page.updates:
            break
        reading.read += len(page.updates)
        reading.last_id = page.last_id
        matched = watched_clients(session, (u.org_number for u in page.updates))
        session.rollback()  # no transaction stays open while the register is asked
        for client_id, number in matched:
            reading.clients[number].add(client_id)
        for update_ in page.updates:
            if update_.org_number in reading.clients:
                reading.updates[update_.org_number].append(update_)
        if clock() - renewed > LEASE / 3:
            renewed = clock()
            if not _fenced(session, token, locked_until=renewed + LEASE):
                session.rollback()
                raise WatchBusy("the register watch's lease was taken over by another run")
            session.commit()
        if not page.has_more:
            break
    return reading


def fetch_companies(registry: CompanyRegistry, numbers: list[str]) -> dict[str, CompanyRecord]:
    """The companies, fresh from the register: 100 per call, then one by one those the search left out (a removed
    company answers 410 only there); numbers the register does not know are left out."""
    records = dict(registry.lookup_many(numbers, max_age=0)) if numbers else {}
    for number in numbers:
        if number not in records:
            try:
                records[number] = registry.lookup(number, max_age=0)
            except CompanyNotFound:
                continue
    return records


# --- comparing ----------------------------------------------------------------------------------------------------


def _day(moment: datetime | None) -> date | None:
    return moment.astimezone(OSLO).date() if moment is not None else None


def _fingerprint(*parts: str | None) -> str:
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode("utf-8")).hexdigest()[:40]


def _address_text(lines: str | None, postal_code: str | None, city: str | None, country: str | None) -> str:
    place = " ".join(part for part in (postal_code, city) if part)
    parts = [line.strip() for line in (lines or "").splitlines() if line.strip()] + ([place] if place else [])
    if country and country.upper() != "NO":
        parts.append(country.upper())
    return ", ".join(parts)


def client_address(client: Client, prefix: str) -> str:
    return _address_text(
        getattr(client, f"{prefix}_address_lines"),
        getattr(client, f"{prefix}_postal_code"),
        getattr(client, f"{prefix}_city"),
        getattr(client, f"{prefix}_country_code"),
    )


def record_address(address: Address) -> str:
    return _address_text("\n".join(address.lines), address.postal_code, address.city, address.country_code)


def _last_touching(updates: list[RegistryUpdate], paths: tuple[str, ...]) -> RegistryUpdate | None:
    touching = [u for u in updates if u.kind in (UpdateKind.CHANGE, UpdateKind.NEW, UpdateKind.UNKNOWN)]
    touching = [u for u in touching if u.touches(*paths)]
    return touching[-1] if touching else None


def assess(client: Client, record: CompanyRecord | None, updates: list[RegistryUpdate]) -> Assessment:
    """Compare the register's company with the stored client; ``updates`` are the run's updates about it."""
    result = Assessment()
    last = updates[-1] if updates else None
    if record is not None:
        status, status_date = record.status, record.status_date
    else:
        # The register no longer serves the company: the feed's word decides.
        kinds = {u.kind for u in updates}
        if UpdateKind.REMOVAL in kinds:
            status, status_date = CompanyStatus.REMOVED, None
        elif UpdateKind.DELETION in kinds:
            status, status_date = CompanyStatus.DELETED, None
        else:
            return result
    old = client.registry_status or str(CompanyStatus.ACTIVE)
    if str(status) != old:
        result.status = str(status)
        kind = AlertKind(str(status)) if str(status) in {k.value for k in STATUS_KINDS} else None
        if kind is not None:
            when = status_date or _day(last.at if last else None)
            result.alerts.append(
                AlertDraft(
                    kind=kind,
                    change_key=when.isoformat() if when else "undated",
                    details={"date": status_date.isoformat() if status_date else None, "previous": old},
                    register_date=when,
                    update_id=last.update_id if last else None,
                )
            )
    if record is None or status in (CompanyStatus.DELETED, CompanyStatus.REMOVED):
        return result
    touched = _last_touching(updates, NAME_PATHS)
    if touched is not None and record.name and differs("name", client.name, record.name):
        result.alerts.append(
            AlertDraft(
                kind=AlertKind.NAME_CHANGED,
                change_key=_fingerprint(comparable("name", record.name)),
                details={"old": client.name, "new": record.name},
                register_date=_day(touched.at),
                update_id=touched.update_id,
            )
        )
    touched = _last_touching(updates, FORM_PATHS)
    if (
        touched is not None
        and record.organisation_form
        and differs("organisation_form", client.organisation_form, record.organisation_form)
    ):
        result.alerts.append(
            AlertDraft(
                kind=AlertKind.ORGANISATION_FORM_CHANGED,
                change_key=_fingerprint(comparable("organisation_form", record.organisation_form)),
                details={"old": client.organisation_form, "new": record.organisation_form},
                register_date=_day(touched.at),
                update_id=touched.update_id,
            )
        )
    for prefix, paths in ADDRESS_PATHS.items():
        address = record.business_address if prefix == "business" else record.postal_address
        touched = _last_touching(updates, paths)
        if touched is None or address is None:
            continue
        values = address_values(prefix, address)
        if not any(differs(name, getattr(client, name), value) for name, value in values.items()):
            continue
        result.alerts.append(
            AlertDraft(
                kind=AlertKind.ADDRESS_CHANGED,
                change_key=f"{prefix}:" + _fingerprint(*(comparable(n, v) for n, v in values.items())),
                details={"address": prefix, "old": client_address(client, prefix), "new": record_address(address)},
                register_date=_day(touched.at),
                update_id=touched.update_id,
            )
        )
    return result


# --- writing ------------------------------------------------------------------------------------------------------


def _insert_ignoring_duplicates(session: Session, values: dict[str, Any]) -> bool:
    """Insert one alert unless the unique key (client, kind, change) already has one; whether it was inserted."""
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(RegistryAlert).values(**values)
    statement = statement.on_conflict_do_nothing(index_elements=["client_id", "kind", "change_key"])
    # RETURNING rather than rowcount: psycopg reports no row count for an INSERT … ON CONFLICT.
    return session.execute(statement.returning(RegistryAlert.id)).first() is not None


def raise_alerts(
    session: Session,
    reading_clients: dict[str, set[int]],
    updates: dict[str, list[RegistryUpdate]],
    records: dict[str, CompanyRecord],
    now: datetime,
) -> tuple[int, int]:
    """Record statuses and raise the alerts of a run in the caller's transaction: (clients matched, alerts raised)."""
    ids = sorted({client_id for client_ids in reading_clients.values() for client_id in client_ids})
    matched = created = 0
    for start in range(0, len(ids), CLIENT_CHUNK):
        chunk = ids[start : start + CLIENT_CHUNK]
        clients = session.scalars(
            select(Client).where(Client.id.in_(chunk), Client.archived_at.is_(None)).order_by(Client.id)
        ).all()
        existing = set(
            session.execute(
                select(RegistryAlert.client_id, RegistryAlert.kind, RegistryAlert.change_key).where(
                    RegistryAlert.client_id.in_(chunk)
                )
            ).tuples()
        )
        for client in clients:
            number = client.org_number or ""
            if number not in reading_clients:
                continue  # its org number was changed meanwhile: the updates are not about it any more
            matched += 1
            assessment = assess(client, records.get(number), updates.get(number, []))
            if assessment.status is not None:
                client.registry_status = assessment.status
            for draft in assessment.alerts:
                if (client.id, draft.kind, draft.change_key) in existing:
                    continue
                inserted = _insert_ignoring_duplicates(
                    session,
                    {
                        "bureau_id": client.bureau_id,
                        "client_id": client.id,
                        "kind": draft.kind,
                        "change_key": draft.change_key,
                        "org_number": client.org_number,
                        "client_name": client.name,
                        "details": draft.details,
                        "register_date": draft.register_date,
                        "update_id": draft.update_id,
                        "seen_at": now,
                        "version": 1,
                    },
                )
                if inserted:
                    existing.add((client.id, draft.kind, draft.change_key))
                    created += 1
        session.flush()
    return matched, created


# --- one run ------------------------------------------------------------------------------------------------------


def run_watch(
    session: Session,
    registry: CompanyRegistry,
    *,
    since: datetime | None = None,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES,
    clock: Callable[[], datetime] = utcnow,
) -> WatchReport:
    """One run of the watch (see the module's docstring). Raises ``RegistryError`` when the register failed (nothing
    changed but the recorded error) and ``WatchBusy`` when another run holds the lease."""
    token = uuid.uuid4().hex
    position, started = _claim(session, token, clock(), since or clock())
    report = WatchReport(position=position)
    try:
        reading = _read_feed(
            session, registry, token, position, started, page_size=page_size, max_pages=max_pages, clock=clock
        )
        records = fetch_companies(registry, sorted(reading.clients))
    except WatchBusy:
        raise
    except RegistryError as exc:
        session.rollback()
        _release(session, token, f"{type(exc).__name__}: {exc}")
        log.warning("Register watch failed; the position stays at %s: %s", position, exc)
        raise
    except BaseException as exc:
        session.rollback()
        _release(session, token, f"{type(exc).__name__}: {exc}")
        raise
    new_position = reading.last_id if reading.last_id is not None else position
    try:
        with acting_as(None, ACTOR_LABEL):
            now = clock()
            # The fence first: it also takes the row's lock, so no other run writes between it and the commit.
            if not _fenced(
                session,
                token,
                position=new_position,
                locked_until=None,
                lock_token=None,
                last_success_at=now,
                last_error=None,
            ):
                session.rollback()
                raise WatchBusy("the register watch's lease was taken over by another run")
            matched, created = raise_alerts(session, reading.clients, reading.updates, records, now)
            session.commit()
    except WatchBusy:
        raise
    except BaseException as exc:
        session.rollback()
        _release(session, token, f"{type(exc).__name__}: {exc}")
        raise
    report.updates_read = reading.read
    report.clients_matched = matched
    report.alerts_created = created
    report.position = new_position
    return report


def watch_state(session: Session) -> RegistryWatchState | None:
    return session.get(RegistryWatchState, STATE_ID)


def watch_from_app(app: Any) -> WatchReport:
    """One run with the app's settings and its background (retrying) registry."""
    from extensions import db
    from services.registry import background_registry

    config = app.config
    return run_watch(
        db.session,
        background_registry(app),
        since=parse_since(config.get("REGISTRY_WATCH_SINCE")),
        page_size=int(config.get("REGISTRY_WATCH_PAGE_SIZE") or PAGE_SIZE),
        max_pages=int(config.get("REGISTRY_WATCH_MAX_PAGES") or MAX_PAGES),
    )
