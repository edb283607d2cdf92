"""Amounts, numbers, dates and months in the user's language (services/formats.py), and the Jinja filters."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask import render_template_string, session
from flask_babel import refresh

from services.formats import format_day, format_moment, format_money, format_month, format_number

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("value", "norwegian", "english"),
    [
        (Decimal("10253"), f"10{NBSP}253,00{NBSP}kr", f"NOK{NBSP}10,253.00"),
        (Decimal("149.00"), f"149,00{NBSP}kr", f"NOK{NBSP}149.00"),
        (Decimal("0.5"), f"0,50{NBSP}kr", f"NOK{NBSP}0.50"),
        (Decimal("-1234567.89"), f"-1{NBSP}234{NBSP}567,89{NBSP}kr", f"-NOK{NBSP}1,234,567.89"),
        (0, f"0,00{NBSP}kr", f"NOK{NBSP}0.00"),
        ("447.00", f"447,00{NBSP}kr", f"NOK{NBSP}447.00"),  # the billing file's text
    ],
)
def test_money(value, norwegian, english):
    assert format_money(value, locale="no") == norwegian
    assert format_money(value, locale="nb") == norwegian
    assert format_money(value, locale="en") == english


def test_money_never_loses_an_ore():
    # A float would write 0.1 + 0.2 as 0,30000000000000004; amounts are Decimals and keep two places.
    assert format_money(Decimal("0.1") + Decimal("0.2"), locale="no") == f"0,30{NBSP}kr"
    assert format_money(Decimal("99999999.99"), locale="no") == f"99{NBSP}999{NBSP}999,99{NBSP}kr"


def test_nothing_is_written_as_nothing():
    assert format_money(None) == format_money("") == format_day(None) == format_moment(None) == ""
    assert format_number(None) == format_month(None) == ""


def test_numbers():
    assert format_number(12345, locale="no") == f"12{NBSP}345"
    assert format_number(12345, locale="en") == "12,345"
    assert format_number(Decimal("3.5"), decimals=2, locale="no") == "3,50"
    assert format_number(7, locale="no") == "7"


def test_days():
    assert format_day(date(2026, 12, 1), locale="no") == "01.12.2026"
    assert format_day(date(2026, 12, 1), locale="en") == "Dec 1, 2026"


def test_moments_are_shown_in_oslo_time(app):
    winter = datetime(2026, 12, 1, 13, 5, tzinfo=UTC)  # 14:05 in Oslo (CET)
    summer = datetime(2026, 7, 1, 22, 30)  # naive as SQLite gives it back: UTC, 00:30 the next day in Oslo (CEST)
    with app.test_request_context():
        assert format_moment(winter, locale="no") == "01.12.2026, 14:05"
        assert format_moment(winter, locale="en") == "Dec 1, 2026, 2:05\u202fPM"
        assert format_moment(summer, locale="no") == "02.07.2026, 00:30"
        assert format_day(summer, locale="no") == "02.07.2026"


def test_months():
    assert format_month("2026-12", locale="no") == "desember 2026"
    assert format_month("2026-12", locale="en") == "December 2026"
    assert format_month(date(2026, 3, 15), locale="no") == "mars 2026"


def test_the_request_language_decides(app):
    """Without a locale given, the user's chosen language (Norwegian by default) is used, also in templates."""
    template = "{{ amount|money }} {{ day|day }} {{ period|month }} {{ users|number }}"
    values = {"amount": Decimal("10253"), "day": date(2026, 12, 1), "period": "2026-11", "users": 1200}
    with app.test_request_context():
        assert render_template_string(template, **values) == (
            f"10{NBSP}253,00{NBSP}kr 01.12.2026 november 2026 1{NBSP}200"
        )
    with app.test_request_context():
        session["locale"] = "en"  # what the language menu stores
        refresh()  # the test's app context outlives one request: forget the locale found before
        assert render_template_string(template, **values) == f"NOK{NBSP}10,253.00 Dec 1, 2026 November 2026 1,200"
