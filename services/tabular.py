"""Reading uploaded spreadsheets (CSV or XLSX) as rows of text, with clear refusals."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

from flask_babel import lazy_gettext as _

from services.errors import DomainError
from services.inputs import single_line, text_problem

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000


def read_table(
    data: bytes,
    filename: str,
    expected_header: Sequence[str],
    aliases: dict[str, str] | None = None,
    shown_header: Sequence[str] | None = None,
) -> list[dict[str, str]]:
    """Rows as dicts keyed by the header; refuses unknown formats, wrong headers and oversized files.

    ``aliases`` maps other accepted names of a column (compared as ``import_rows.plain_header`` makes them) to its
    name in ``expected_header``; ``shown_header`` is the header a refusal names (the template's).
    """
    if len(data) > MAX_BYTES:
        raise DomainError(_("The file is larger than %(mb)s MB.", mb=MAX_BYTES // (1024 * 1024)))
    name = (filename or "").lower()
    if name.endswith(".xlsx"):
        rows = _xlsx_rows(data)
    elif name.endswith(".csv") or name.endswith(".txt"):
        rows = _csv_rows(data)
    else:
        raise DomainError(_("Upload a .csv or .xlsx file."))
    try:
        header = [single_line(cell).strip().lower() for cell in next(rows)]
        if aliases:
            from services.import_rows import plain_header

            header = [aliases.get(plain_header(column), column) for column in header]
    except StopIteration:
        raise DomainError(_("The file is empty.")) from None
    duplicated = sorted({column for column in header if column and header.count(column) > 1})
    if duplicated:
        # Which of two same-named columns holds the data is a guess either way: the file is refused instead.
        raise DomainError(
            _("The header row names a column more than once: %(columns)s.", columns=", ".join(duplicated))
        )
    shown = dict(zip(expected_header, shown_header or expected_header, strict=True))
    missing = [shown[column] for column in expected_header if column not in header]
    unknown = [column for column in header if column and column not in expected_header]
    if missing or unknown:
        raise DomainError(
            _(
                "The header row must be: %(expected)s (missing: %(missing)s; unknown: %(unknown)s).",
                expected=",".join(shown_header or expected_header),
                missing=", ".join(missing) or "–",
                unknown=", ".join(repr(column) if text_problem(column, 100) else column for column in unknown) or "–",
            )
        )
    table = []
    for values in rows:
        if not any(v.strip() for v in values):
            continue
        if len(table) >= MAX_ROWS:
            raise DomainError(_("The file has more than %(rows)s rows; split it.", rows=MAX_ROWS))
        padded = list(values) + [""] * (len(header) - len(values))
        table.append({column: padded[i].strip() for i, column in enumerate(header) if column})
    return table


def _csv_rows(data: bytes) -> Iterator[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError(_('The CSV file is not UTF-8. Save it as "CSV UTF-8" and try again.')) from None
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    return iter(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise DomainError(_("The file could not be read as an Excel workbook (.xlsx).")) from None

    def rows() -> Iterator[list[str]]:
        try:
            for row in workbook.active.iter_rows(values_only=True):
                yield ["" if cell is None else _cell_text(cell) for cell in row]
        finally:
            workbook.close()

    return rows()


def _cell_text(cell: object) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if hasattr(cell, "isoformat"):
        return cell.isoformat()[:10]
    return str(cell)


def template_csv(header: Sequence[str], example: Sequence[Sequence[str]]) -> bytes:
    """A CSV template file: header and example rows, UTF-8 with BOM so spreadsheets show æøå."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(example)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
