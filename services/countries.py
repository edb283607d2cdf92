"""Countries as ISO 3166-1 alpha-2 codes, named in the user's language by Babel's CLDR data (no list of our own)."""

from __future__ import annotations

from babel import Locale

# CLDR territories with two letters that are not countries of ISO 3166-1 (regions, reserved and private-use codes).
NOT_COUNTRIES = frozenset({"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"})
# Where the bureaus' clients are: first in the list, then the rest alphabetically.
FIRST = ("NO", "SE", "DK")


def _locale() -> Locale:
    try:
        from flask_babel import get_locale

        return get_locale() or Locale.parse("nb")
    except RuntimeError:  # outside a request (CLI): the product's language
        return Locale.parse("nb")


def _territories(locale: Locale) -> dict[str, str]:
    return {
        code: name
        for code, name in locale.territories.items()
        if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
    }


def is_country(code: str | None) -> bool:
    return bool(code) and code in _territories(Locale.parse("en"))


def name(code: str) -> str:
    """The country's name in the user's language; an unknown code is shown as it is."""
    return _territories(_locale()).get(code, code)


# Æ, Ø and Å come last in the Norwegian alphabet, in that order (a code-point sort puts Å first).
_NORDIC_ORDER = str.maketrans({"æ": "{0", "ø": "{1", "å": "{2", "ä": "{0", "ö": "{1"})


def _sort_key(text: str) -> str:
    return text.lower().translate(_NORDIC_ORDER)


def choices() -> list[tuple[str, str]]:
    """(code, name) for a select: the Nordic countries first, then all others by name in the user's language."""
    territories = _territories(_locale())
    rest = sorted((code for code in territories if code not in FIRST), key=lambda code: _sort_key(territories[code]))
    return [(code, territories[code]) for code in (*FIRST, *rest)]
