"""Amounts, numbers, dates and months as the user's language writes them: the one home of display formats.

Norwegian (the default): ``10 253,00 kr``, ``01.12.2026``, ``01.12.2026, 14:05``, ``desember 2026``; English:
``NOK 10,253.00``, ``Dec 1, 2026``, ``Dec 1, 2026, 2:05 PM``, ``December 2026``. The locale is the request's (the
user's chosen language, see ``app.select_locale``) unless one is given; times are shown in the configured time zone
(Europe/Oslo). Templates use the same functions as filters: ``{{ amount|money }}``, ``{{ day|day }}``,
``{{ when|moment }}``, ``{{ period|month }}``, ``{{ count|number }}``.

Files for other programs (the billing CSV and XLSX) never go through here: their formats are a contract.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from flask import current_app, has_app_context
from flask_babel import get_locale, get_timezone

CURRENCY = "NOK"  # what the bureau bills in: package prices and the billing basis
# Babel writes "NOK10,253.00" in English; CLDR asks for a space between a currency code and the digits.
_CODE_BEFORE_DIGIT = re.compile(r"^(-?)([A-Z]{3})(?=\d)")
# A date written as digits where the language has an unambiguous short form (01.12.2026); elsewhere
# (English "12/1/26") the month's abbreviated name.
_DATE_FORMAT = {"nb": "short", "nn": "short", "no": "short", "sv": "short", "da": "short"}


def _locale(locale: str | Locale | None) -> Locale:
    if locale is not None:
        return Locale.parse(locale)
    if has_app_context():
        found = get_locale()
        if found is not None:
            return found
        return Locale.parse(current_app.config.get("BABEL_DEFAULT_LOCALE", "no"))
    return Locale.parse("no")


def _date_format(locale: Locale) -> str:
    return _DATE_FORMAT.get(locale.language, "medium")


def format_money(value: Decimal | int | float | str | None, *, currency: str = CURRENCY, locale=None) -> str:
    """An amount with two decimals and the currency: ``10 253,00 kr``; empty for no value."""
    if value is None or value == "":
        return ""
    text = babel_numbers.format_currency(Decimal(str(value)), currency, locale=_locale(locale))
    return _CODE_BEFORE_DIGIT.sub("\\1\\2\u00a0", text)


def format_number(value: Decimal | int | float | str | None, *, decimals: int | None = None, locale=None) -> str:
    """A count or a number with the language's separators (``1 234``), with ``decimals`` fixed places if given."""
    if value is None or value == "":
        return ""
    pattern = None if decimals is None else "#,##0" + ("." + "0" * decimals if decimals else "")
    return babel_numbers.format_decimal(Decimal(str(value)), format=pattern, locale=_locale(locale))


def format_day(value: date | datetime | None, *, locale=None) -> str:
    """A calendar day: ``01.12.2026`` (Norwegian), ``Dec 1, 2026`` (English); empty for no value."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _local(value).date()
    found = _locale(locale)
    return babel_dates.format_date(value, _date_format(found), locale=found)


def format_moment(value: datetime | None, *, locale=None) -> str:
    """A point in time in the configured time zone: ``01.12.2026, 14:05``; empty for no value."""
    if value is None:
        return ""
    found = _locale(locale)
    local = _local(value)
    return f"{format_day(local.date(), locale=found)}, {babel_dates.format_time(local, 'short', locale=found)}"


def format_month(value, *, short: bool = False, locale=None) -> str:
    """A calendar month (a date in it, or a billing period ``YYYY-MM``): ``desember 2026``; ``short``: ``des.``."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:7] + "-01")
    elif not isinstance(value, date):
        value = value.start  # a billing.Period
    return babel_dates.format_date(value, "LLL" if short else "LLLL y", locale=_locale(locale))


def _local(value: datetime) -> datetime:
    """A stored time (UTC, naive on SQLite) in the configured time zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    zone = get_timezone() if has_app_context() else None
    return value.astimezone(zone) if zone is not None else value


FILTERS = {
    "money": format_money,
    "number": format_number,
    "day": format_day,
    "moment": format_moment,
    "month": format_month,
}


def register_format_filters(app) -> None:
    """Make the formats Jinja filters of ``app`` (``{{ price|money }}``)."""
    app.jinja_env.filters.update(FILTERS)
