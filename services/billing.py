"""The billing basis (fakturagrunnlag): per client and package, the billable users and the amount of a month.

Rules: a user counts for a package in the period when the package was assigned to them on at least one day of
the period while they were not blocked. A blocked user is taken as blocked from the day of ``blocked_at`` (a
blocked user without that date as blocked throughout); an external user is blocked after their end date. Demo
and internal clients are never billed. The unit price is the price in force on the first day of the period
(``package_prices``), so changing a price later never changes a past period.

The export reads one consistent snapshot (one REPEATABLE READ transaction on PostgreSQL, one read
transaction on SQLite), streams rows (memory does not grow with the row count), and is written so that a
failure can never leave a file that looks complete.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, BinaryIO

from flask_babel import lazy_gettext as _
from sqlalchemy import Select, and_, case, distinct, func, or_, select
from sqlalchemy.engine import Connection

from models import (
    BillingMonth,
    BillingSnapshotDetail,
    BillingSnapshotRow,
    Client,
    Package,
    PackageAssignment,
    PackagePrice,
    Person,
    User,
    UserStatus,
)
from services.errors import DomainError
from services.packages import held_between_clause

SUMMARY_HEADER = (
    "period",
    "client_org_number",
    "client_name",
    "package_code",
    "package_name",
    "package_kind",
    "users",
    "unit_price",
    "amount",
)
DETAIL_HEADER = (
    "period",
    "client_org_number",
    "client_name",
    "user_name",
    "user_email",
    "package_code",
    "package_name",
    "package_kind",
    "days_billable",
)
# The excel-no dialect and the XLSX file are read by people in Norwegian Excel: Norwegian headers and kinds, whatever
# the language of the page they were downloaded from (the CLI writes the same bytes). The standard dialect keeps the
# code names above: other programs read it.
SUMMARY_HEADER_NO = (
    "Periode",
    "Organisasjonsnummer",
    "Klient",
    "Pakkekode",
    "Pakke",
    "Pakketype",
    "Brukere",
    "Enhetspris",
    "Beløp",
)
DETAIL_HEADER_NO = (
    "Periode",
    "Organisasjonsnummer",
    "Klient",
    "Bruker",
    "E-post",
    "Pakkekode",
    "Pakke",
    "Pakketype",
    "Fakturerbare dager",
)
KIND_NO = {"main": "Hovedpakke", "addon": "Tilleggspakke"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
STREAM_BATCH = 5000  # rows per fetch from the database


class Dialect(enum.StrEnum):
    STANDARD = "standard"  # comma, decimal point
    EXCEL_NO = "excel-no"  # semicolon, decimal comma, UTF-8 BOM: what Norwegian Excel opens correctly


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @classmethod
    def parse(cls, text: str) -> Period:
        """A calendar month written YYYY-MM."""
        year, month = (int(part) for part in text.split("-", 1)) if "-" in text else (0, 0)
        if not (2000 <= year <= 2100 and 1 <= month <= 12) or len(text) != 7:
            raise ValueError(text)
        start = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
        return cls(start, following - timedelta(days=1))

    @classmethod
    def previous_month(cls, today: date) -> Period:
        return cls.parse((today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m"))

    def __str__(self) -> str:
        return self.start.strftime("%Y-%m")


def _billable(period: Period):
    """The assignment overlaps the period on a day when the user was not blocked (see module docstring)."""
    first_day = case((PackageAssignment.valid_from > period.start, PackageAssignment.valid_from), else_=period.start)
    blocked_at = func.date(User.blocked_at)  # a date on PostgreSQL, ISO text on SQLite: compares alike
    return and_(
        held_between_clause(period.start, period.end),
        or_(User.status != UserStatus.BLOCKED, and_(User.blocked_at.is_not(None), first_day < blocked_at)),
        or_(User.end_date.is_(None), first_day <= User.end_date),
    )


def billed_client_clause():
    """SQL, the one home of "is this client billed": demo and internal clients never are."""
    return and_(Client.is_demo.is_(False), Client.is_internal.is_(False))


def is_billed_client(client: Client) -> bool:
    """Python, the same rule as ``billed_client_clause``."""
    return not (client.is_demo or client.is_internal)


def _billed_clients(bureau_id: int, client_ids: Sequence[int] | None):
    conditions = [Client.bureau_id == bureau_id, billed_client_clause()]
    if client_ids is not None:
        conditions.append(Client.id.in_(client_ids))
    return conditions


def _unit_price(period: Period):
    """The price in force on the first day of the period; before any recorded price, the earliest one."""
    in_force = (
        select(PackagePrice.price)
        .where(PackagePrice.package_id == Package.id, PackagePrice.valid_from <= period.start)
        .order_by(PackagePrice.valid_from.desc())
        .limit(1)
        .scalar_subquery()
    )
    earliest = (
        select(PackagePrice.price)
        .where(PackagePrice.package_id == Package.id)
        .order_by(PackagePrice.valid_from)
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(in_force, earliest, Package.price)


def _billable_assignments(columns, bureau_id: int, period: Period, client_ids: Sequence[int] | None) -> Select:
    """The assignments billable in the period, joined to their user, person, client and package."""
    return (
        select(*columns)
        .select_from(PackageAssignment)
        .join(User, User.id == PackageAssignment.user_id)
        .join(Person, Person.id == User.person_id)
        .join(Client, Client.id == Person.client_id)
        .join(Package, Package.id == PackageAssignment.package_id)
        .where(*_billed_clients(bureau_id, client_ids), _billable(period))
    )


def summary_query(bureau_id: int, period: Period, client_ids: Sequence[int] | None = None) -> Select:
    """One row per billable client and package: the distinct users it is billed for, and the unit price."""
    columns = (
        Client.org_number,
        Client.name,
        Package.code,
        Package.name,
        Package.kind,
        func.count(distinct(User.id)).label("users"),
        _unit_price(period).label("unit_price"),
    )
    return (
        _billable_assignments(columns, bureau_id, period, client_ids)
        .group_by(Client.id, Client.org_number, Client.name, Package.id, Package.code, Package.name, Package.kind)
        .order_by(Client.name, Client.id, Package.kind.desc(), Package.code)
    )


def detail_query(bureau_id: int, period: Period, client_ids: Sequence[int] | None = None) -> Select:
    """One row per billable assignment, with what is needed to count its billable days."""
    columns = (
        Client.org_number,
        Client.name,
        Person.first_name,
        Person.last_name,
        Person.email,
        Package.code,
        Package.name,
        Package.kind,
        PackageAssignment.valid_from,
        PackageAssignment.valid_to,
        User.status,
        func.date(User.blocked_at).label("blocked_on"),
        User.end_date,
        User.id,
    )
    return _billable_assignments(columns, bureau_id, period, client_ids).order_by(
        Client.name, Client.id, Person.last_name, Person.first_name, User.id, Package.code
    )


# --- rows as text ------------------------------------------------------------------------------


def inert(value: str) -> str:
    """A cell a spreadsheet would run as a formula is prefixed with an apostrophe, so it stays text."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def money(value: Decimal, dialect: Dialect) -> str:
    text = f"{Decimal(value).quantize(Decimal('0.01')):f}"
    return text.replace(".", ",") if dialect is Dialect.EXCEL_NO else text


def _kind_text(kind, dialect: Dialect = Dialect.STANDARD) -> str:
    code = str(kind.value if hasattr(kind, "value") else kind)
    return KIND_NO.get(code, code) if dialect is Dialect.EXCEL_NO else code


def period_cell(period: str, dialect: Dialect) -> str:
    """The period as the dialect writes it: ``2026-11``, or ``="2026-11"`` for Norwegian Excel.

    Excel turns a bare ``2026-11`` into the date 1 November 2026 (shown "nov.26"). A leading apostrophe is no help
    in a CSV file: Excel shows it as part of the text. What Excel keeps is a formula whose result is the text, and
    the cell is written unquoted (``write_csv`` knows), as Excel expects it. The text inside is always a period
    this module made (digits and a hyphen), never user data.
    """
    return f'="{period}"' if dialect is Dialect.EXCEL_NO else period


def header_for(dialect: Dialect, detail: bool) -> tuple[str, ...]:
    if dialect is Dialect.EXCEL_NO:
        return DETAIL_HEADER_NO if detail else SUMMARY_HEADER_NO
    return DETAIL_HEADER if detail else SUMMARY_HEADER


def _streamed(conn: Connection, query: Select) -> AbstractContextManager[Iterable[Sequence[Any]]]:
    """The rows of ``query`` as they arrive, never the whole result in memory; use it in a ``with`` block.

    A connection with the execution option ``chunked_rows`` (the export sets it) reads PostgreSQL through psycopg
    in chunks of the plain query (libpq's chunked mode) instead of from a server-side cursor: PostgreSQL never
    plans a cursor with parallel workers, and fetching from one leaves the server idle while Python works, which
    made the export take twice as long as the database's own COPY. The rows then come as the driver returns them
    (enum columns as their text), and psycopg holds the connection until they are all read or the block ends: any
    other statement on it meanwhile, the transaction's end included, would wait forever.
    """
    if (
        conn.get_execution_options().get("chunked_rows")
        and conn.dialect.name == "postgresql"
        and conn.dialect.driver == "psycopg"
    ):
        return closing(_psycopg_chunks(conn, query))
    # Options for this statement only: set on the connection they would stay for every later statement on it,
    # and an INSERT ... RETURNING after them (a month being closed) would be sent as a server-side cursor.
    return conn.execute(query, execution_options={"stream_results": True, "yield_per": STREAM_BATCH})


def _psycopg_chunks(conn: Connection, query: Select) -> Iterator[tuple[Any, ...]]:
    import psycopg

    dialect = conn.dialect
    compiled = query.compile(dialect=dialect)
    expanded = compiled.construct_expanded_state()  # IN lists written out, one parameter per value
    parent = {name: key for key, names in expanded.parameter_expansion.items() for name in names}
    parameters = {}
    for name, value in expanded.parameters.items():
        # the value as SQLAlchemy would pass it to the driver (e.g. an enum member as its text)
        process = compiled.binds[parent.get(name, name)].type.dialect_impl(dialect).bind_processor(dialect)
        parameters[name] = process(value) if process else value
    size = STREAM_BATCH if psycopg.capabilities.has_stream_chunked() else 1  # chunks need libpq 17
    with conn.connection.driver_connection.cursor() as cursor:
        yield from cursor.stream(expanded.statement, parameters, size=size)


def summary_rows(
    conn: Connection, bureau_id: int, period: Period, dialect: Dialect, client_ids=None
) -> Iterator[list[str]]:
    label = period_cell(str(period), dialect)
    # Exports run to millions of rows but hold few distinct clients in a row, packages and prices: the cells
    # are computed once per distinct value (pure functions of it), which halves the Python work per row.
    client_name_seen, client_cell = None, ""
    package_cells: dict[tuple, tuple[str, str, str]] = {}
    amount_cells: dict[tuple, tuple[str, str, str]] = {}
    with _streamed(conn, summary_query(bureau_id, period, client_ids)) as result:
        for org_number, client_name, code, name, kind, users, unit_price in result:
            if client_name != client_name_seen:
                client_name_seen, client_cell = client_name, inert(client_name)
            package = package_cells.get((code, name, kind))
            if package is None:
                package = package_cells[code, name, kind] = (inert(code), inert(name), _kind_text(kind, dialect))
            amounts = amount_cells.get((unit_price, users))
            if amounts is None:
                price = Decimal(unit_price)
                amounts = amount_cells[unit_price, users] = (
                    str(users),
                    money(price, dialect),
                    money(price * users, dialect),
                )
            yield [label, org_number or "", client_cell, *package, *amounts]


def _as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def billable_days(period: Period, valid_from: date, valid_to: date | None, status, blocked_on, end_date) -> int:
    # Called once per detail row: comparisons rather than min() and max(), which cost twice as much.
    first = valid_from if valid_from > period.start else period.start
    last = period.end if valid_to is None or valid_to > period.end else valid_to
    if end_date is not None and end_date < last:
        last = end_date
    if status == UserStatus.BLOCKED or status == "blocked":
        blocked_on = _as_date(blocked_on)
        if blocked_on is None:
            return 0
        last = min(last, blocked_on - timedelta(days=1))
    days = (last - first).days + 1
    return days if days > 0 else 0


def detail_rows(
    conn: Connection, bureau_id: int, period: Period, dialect: Dialect, client_ids=None
) -> Iterator[list[str]]:
    label = period_cell(str(period), dialect)
    # As in summary_rows, cells are computed once per distinct client, user and package. The dates come as
    # dates on both databases (Date columns); only ``blocked_on`` (SQL date() of a timestamp) may be text.
    client_name_seen, client_cell = None, ""
    user_seen, user_cells = None, ("", "")
    package_cells: dict[tuple, tuple[str, str, str]] = {}
    with _streamed(conn, detail_query(bureau_id, period, client_ids)) as result:
        for (
            org,
            client_name,
            first,
            last,
            email,
            code,
            name,
            kind,
            valid_from,
            valid_to,
            status,
            blocked_on,
            end_date,
            user_id,
        ) in result:
            if client_name != client_name_seen:
                client_name_seen, client_cell = client_name, inert(client_name)
            if user_id != user_seen:  # a user's rows are consecutive, and the name and e-mail are the user's
                user_seen, user_cells = user_id, (inert(f"{first} {last}"), inert(email or ""))
            package = package_cells.get((code, name, kind))
            if package is None:
                package = package_cells[code, name, kind] = (inert(code), inert(name), _kind_text(kind, dialect))
            days = billable_days(period, valid_from, valid_to, status, blocked_on, end_date)
            yield [label, org or "", client_cell, *user_cells, *package, str(days)]


def write_csv(out: io.TextIOBase, header: Sequence[str], rows: Iterable[list[str]], dialect: Dialect) -> int:
    """RFC 4180 CSV (CRLF, quotes as needed) in the dialect; returns how many data rows were written."""
    delimiter = ";" if dialect is Dialect.EXCEL_NO else ","
    if dialect is Dialect.EXCEL_NO:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    write, separators = out.write, delimiter  # locals: this loop runs once per row, millions of times
    period_as_formula = dialect is Dialect.EXCEL_NO  # written as it is, unquoted: see period_cell
    count = 0
    for row in rows:
        if period_as_formula:
            write(row[0] + separators)
            row = row[1:]
        # csv.writer costs three times the plain join. A row whose joined text has no quote, no line break and
        # no delimiter beyond the separators needs no quoting, so csv.writer would write exactly that text;
        # every other row (and any cell that is not text) still goes through csv.writer.
        try:
            line = separators.join(row)
        except TypeError:
            line = ""
        if not line or '"' in line or "\r" in line or "\n" in line or line.count(separators) != len(row) - 1:
            writer.writerow(row)
        else:
            write(line + "\r\n")
        count += 1
    return count


@dataclass(frozen=True)
class Summary:
    clients: int
    users: int
    rows: int
    amount: Decimal


def summarise(conn: Connection, bureau_id: int, period: Period, client_ids=None) -> Summary:
    """What the page shows before download: clients, users (distinct), rows and the total amount."""
    # Streamed like the export: a million clients' summary held in memory took over 1 GB. The rows come ordered
    # by client name, so the distinct clients are counted one name at a time.
    clients, rows, amount = 0, 0, Decimal("0")
    name_seen, clients_of_name = None, set()
    with _streamed(conn, summary_query(bureau_id, period, client_ids)) as result:
        for org, name, _code, _pname, _kind, users, unit_price in result:
            if name != name_seen:
                clients += len(clients_of_name)
                name_seen, clients_of_name = name, set()
            clients_of_name.add(f"{org}|{name}")
            rows += 1
            amount += Decimal(unit_price) * users
    clients += len(clients_of_name)
    users = conn.execute(
        _billable_assignments([func.count(distinct(User.id))], bureau_id, period, client_ids)
    ).scalar_one()
    return Summary(clients=clients, users=users, rows=rows, amount=amount)


def snapshot(engine):
    """A connection in one read transaction: REPEATABLE READ on PostgreSQL, a WAL read snapshot on SQLite."""
    conn = engine.connect()
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    else:
        conn.execution_options(read_only_snapshot=True)
    conn.begin()
    return conn


def export(
    engine,
    out: io.TextIOBase,
    *,
    bureau_id: int,
    period: Period,
    dialect: Dialect,
    detail: bool = False,
    client_ids=None,
) -> int:
    """Write the whole file from one snapshot; returns the data rows written (raises on any failure)."""
    with snapshot(engine) as conn:
        conn.execution_options(chunked_rows=True)  # this connection does nothing else: see _streamed
        rows = basis_rows(conn, bureau_id, period, dialect, detail=detail, client_ids=client_ids)
        with closing(rows):  # a failed write ends the rows (and the query) before the transaction
            return write_csv(out, header_for(dialect, detail), rows, dialect)


# --- the billing basis as an Excel workbook -----------------------------------------------------

XLSX_MAX_ROWS = 1_048_576 - 1  # Excel's rows per sheet, less the header
XLSX_AMOUNT_FORMAT = "#,##0.00"
XLSX_SUMMARY_WIDTHS = (10, 20, 36, 14, 28, 16, 10, 14, 16)  # characters, one per column of the header
XLSX_DETAIL_WIDTHS = (10, 20, 36, 28, 32, 14, 28, 16, 18)


class TooManyRowsForExcel(DomainError):
    """The month has more lines than one Excel sheet holds: the CSV file has them all."""


def export_xlsx(engine, out: BinaryIO, *, bureau_id: int, period: Period, detail: bool = False, client_ids=None) -> int:
    """The billing basis as an XLSX workbook: the same lines and amounts as the CSV export, from one snapshot.

    Amounts and counts are number cells (amounts with two decimals), the period and org numbers text cells,
    headers and kinds Norwegian (as in the excel-no dialect). Each cell is made from the standard CSV line, so the
    workbook agrees with the CSV to the øre. Returns the data rows written; raises TooManyRowsForExcel rather
    than leaving lines out.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(f"{'Detaljer' if detail else 'Fakturagrunnlag'} {period}")
    header = DETAIL_HEADER_NO if detail else SUMMARY_HEADER_NO
    for letter, width in zip("ABCDEFGHI", XLSX_DETAIL_WIDTHS if detail else XLSX_SUMMARY_WIDTHS, strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    cells = []
    for title in header:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        cells.append(cell)
    sheet.append(cells)

    def number(value: Decimal) -> WriteOnlyCell:
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = XLSX_AMOUNT_FORMAT
        return cell

    count = 0
    try:
        with snapshot(engine) as conn:
            conn.execution_options(chunked_rows=True)  # this connection does nothing else: see _streamed
            rows = basis_rows(conn, bureau_id, period, Dialect.STANDARD, detail=detail, client_ids=client_ids)
            with closing(rows):
                for row in rows:
                    count += 1
                    if count > XLSX_MAX_ROWS:
                        raise TooManyRowsForExcel(
                            _("The billing basis has more lines than an Excel sheet can hold; download the CSV file.")
                        )
                    kind = KIND_NO.get(row[7 if detail else 5], row[7 if detail else 5])
                    if detail:
                        sheet.append([*row[:7], kind, int(row[8])])
                    else:
                        sheet.append([*row[:5], kind, int(row[6]), number(Decimal(row[7])), number(Decimal(row[8]))])
    except BaseException:
        _discard(sheet)
        raise
    workbook.save(out)
    return count


def _discard(sheet) -> None:
    """End a write-only sheet that will never be saved, and remove the temporary file openpyxl streams it to."""
    sheet.close()
    writer = getattr(sheet, "_writer", None)
    if writer is not None:
        writer.cleanup()


# --- closed months: read from the stored snapshot ------------------------------------------------
#
# A closed month (services/billing_close.py closes one) is read from its snapshot, an open month from the live
# tables. ``closed_month`` is the one place that decides; ``basis_rows`` and ``basis_summary`` are what every
# reader calls (the export behind the CLI and the page, the page's preview and totals, the Pakker tab).


def closed_month(conn: Connection, bureau_id: int, period: Period) -> BillingMonth | None:
    """The bureau's closed month for ``period``, or None while the month is open."""
    row = conn.execute(
        select(BillingMonth.__table__).where(BillingMonth.bureau_id == bureau_id, BillingMonth.period == str(period))
    ).first()
    return BillingMonth(**row._mapping) if row is not None else None


def _snapshot_summary_rows(
    conn: Connection, month: BillingMonth, dialect: Dialect, client_ids=None
) -> Iterator[list[str]]:
    """The stored summary lines, written exactly as ``summary_rows`` wrote them when the month was closed."""
    table = BillingSnapshotRow.__table__
    query = (
        select(
            table.c.client_org_number,
            table.c.client_name,
            table.c.package_code,
            table.c.package_name,
            table.c.package_kind,
            table.c.users,
            table.c.unit_price,
            table.c.amount,
        )
        .where(table.c.month_id == month.id)
        .order_by(table.c.position)
    )
    if client_ids is not None:
        query = query.where(table.c.client_id.in_(client_ids))
    with _streamed(conn, query) as result:
        label = period_cell(month.period, dialect)
        for org_number, client_name, code, name, kind, users, unit_price, amount in result:
            yield [
                label,
                org_number or "",
                inert(client_name),
                inert(code),
                inert(name),
                _kind_text(kind, dialect),
                str(users),
                money(Decimal(unit_price), dialect),
                money(Decimal(amount), dialect),
            ]


def _snapshot_detail_rows(
    conn: Connection, month: BillingMonth, dialect: Dialect, client_ids=None
) -> Iterator[list[str]]:
    """The stored detail lines, written exactly as ``detail_rows`` wrote them when the month was closed."""
    table = BillingSnapshotDetail.__table__
    query = (
        select(
            table.c.client_org_number,
            table.c.client_name,
            table.c.user_name,
            table.c.user_email,
            table.c.package_code,
            table.c.package_name,
            table.c.package_kind,
            table.c.days_billable,
        )
        .where(table.c.month_id == month.id)
        .order_by(table.c.position)
    )
    if client_ids is not None:
        query = query.where(table.c.client_id.in_(client_ids))
    with _streamed(conn, query) as result:
        label = period_cell(month.period, dialect)
        for org_number, client_name, user_name, email, code, name, kind, days in result:
            yield [
                label,
                org_number or "",
                inert(client_name),
                inert(user_name),
                inert(email or ""),
                inert(code),
                inert(name),
                _kind_text(kind, dialect),
                str(days),
            ]


def basis_rows(
    conn: Connection, bureau_id: int, period: Period, dialect: Dialect, *, detail: bool = False, client_ids=None
) -> Iterator[list[str]]:
    """The billing basis lines of the month: from the snapshot when it is closed, else computed live."""
    month = closed_month(conn, bureau_id, period)
    if month is not None:
        return (_snapshot_detail_rows if detail else _snapshot_summary_rows)(conn, month, dialect, client_ids)
    return (detail_rows if detail else summary_rows)(conn, bureau_id, period, dialect, client_ids)


def basis_summary(conn: Connection, bureau_id: int, period: Period, client_ids=None) -> Summary:
    """The month's totals: stored when it is closed (no scan of the month's assignments), else computed live."""
    month = closed_month(conn, bureau_id, period)
    if month is None:
        return summarise(conn, bureau_id, period, client_ids)
    if client_ids is None:
        return Summary(clients=month.clients, users=month.users, rows=month.rows, amount=Decimal(month.amount))
    rows, details = BillingSnapshotRow.__table__, BillingSnapshotDetail.__table__
    clients, count, amount = conn.execute(
        select(
            func.count(distinct(rows.c.client_id)),
            func.count(),
            func.coalesce(func.sum(rows.c.amount), 0),
        ).where(rows.c.month_id == month.id, rows.c.client_id.in_(client_ids))
    ).one()
    users = conn.execute(
        select(func.count(distinct(details.c.user_id))).where(
            details.c.month_id == month.id, details.c.client_id.in_(client_ids)
        )
    ).scalar_one()
    return Summary(clients=clients, users=users, rows=count, amount=Decimal(amount))


def snapshot_clients(conn: Connection, month: BillingMonth, org_numbers: Sequence[str]) -> dict[str, int]:
    """The clients of a closed month by org number, also those deleted since (the snapshot keeps their id)."""
    table = BillingSnapshotRow.__table__
    return dict(
        conn.execute(
            select(table.c.client_org_number, table.c.client_id)
            .where(table.c.month_id == month.id, table.c.client_org_number.in_(org_numbers))
            .distinct()
        ).all()
    )
