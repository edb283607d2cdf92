"""What a person can read on a page, and which of it is in the wrong language (used by tests/test_browser_texts.py).

"Readable" is more than ``document.body.innerText`` of the page as loaded: every dropdown menu is opened (the page
size menu, "Legg til filter", the language and category menus, bulk actions), every filter of the grid is added, so
its operations and values are on the page, and the texts a person meets without them being body text are read too:
tooltips (``title``), placeholders, ``aria-label``, button values and the options of every select.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# English a Norwegian page must not show: Flask-Admin's, WTForms' and Werkzeug's own words, our msgids when their
# translation is missing, and Python's reprs of values. Matched as whole words, case-sensitive (see ``Leftovers``).
ENGLISH_LEFTOVERS = (
    "items",
    "item",
    "Add Filter",
    "Reset Filters",
    "Save",
    "Cancel",
    "Delete",
    "Edit",
    "List",
    "Create",
    "Failed to save",
    "Failed",
    "record",
    "Record",
    "records",
    "Country Code",
    "Invoice Email Texts",
    "True",
    "False",
    "None",
    "Apply",
    "Search",
    "Actions",
    "Please",
    "Export",
    "Home",
    "Yes",
    "View",
    "Details",
    "With selected",
    "Select",
    "selected",
    "equals",
    "contains",
    "greater than",
    "smaller than",
    "between",
    "empty",
    "in list",
    "Forbidden",
    "Not Found",
    "Method Not Allowed",
    "Bad Request",
    "Unauthorized",
    "Error",
    "Back",
    "Close",
    "Add",
    "New",
    "Loading",
    "Submit",
    "Language",
    "Currency",
    "Log out",
    "Clients",
    "Client",
    "Users",
    "User",
    "People",
    "Packages",
    "Package",
    "Permissions",
    "Name",
    "Email",
    "E-mail",
    "Phone",
    "Created",
    "Updated",
    "Active",
    "Blocked",
    "Invited",
    "Pending",
    "This field is required",
    "Not a valid",
    "Invalid",
    "invalid",
    "check digit",
    "organisation number",
    "Download",
    "Upload",
    "Import",
    "Invite",
    "Settings",
    "Event log",
    "Outbox",
    "Jobs",
    "Billing",
    "Amount",
    "Price",
    "Month",
    "the",
    "and",
    "not",
)

# Norwegian an English page must not show (our own texts only: data such as names and addresses stay Norwegian).
NORWEGIAN_LEFTOVERS = (
    "Klienter",
    "Kunde",
    "kunde",
    "Personer",
    "Brukere",
    "Pakker",
    "Lagre",
    "Avbryt",
    "Slett",
    "Rediger",
    "Opprett",
    "Søk",
    "Liste",
    "Legg til",
    "gjenstander",
    "rader",
    "Ja",
    "Nei",
    "og",
    "ikke",
    "eller",
    "Hjem",
    "Språk",
    "Logg ut",
    "Innstillinger",
    "Hendelseslogg",
    "Utboks",
    "Jobber",
    "Fakturagrunnlag",
    "Tilgangspakker",
    "Kundemaler",
    "Samtykke",
    "samtykke",
    "Vis",
    "Velg",
    "Tilbake",
)


def leftover_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """Whole words (or phrases) only: "items" matches "20 items", not "itemsets"; "Rediger" not "Redigering".

    A merge field such as ``{Amount}`` is a code the accounting suite fills in, the same in every language: not text.
    """
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w{{-])(?:{alternatives})(?![\w}}-])")


@dataclass(frozen=True)
class Finding:
    page: str
    word: str
    context: str

    def __str__(self) -> str:
        return f"{self.page}: {self.word!r} in {self.context!r}"


# E-mail addresses and links are data (post@kunde.example, /samtykke/…), whatever words they hold.
ADDRESSES = re.compile(r"\S+@\S+|https?://\S+")


def _country_names() -> frozenset[str]:
    """Countries as the UI's languages name them ("New Zealand" is Norwegian too): names, not leftovers."""
    from babel import Locale

    return frozenset(name for locale in ("nb", "en") for name in Locale.parse(locale).territories.values())


COUNTRY_NAMES = _country_names()


def find_leftovers(page: str, texts: list[str], pattern: re.Pattern[str]) -> list[Finding]:
    findings = []
    for text in texts:
        for line in text.splitlines():
            if line.strip() in COUNTRY_NAMES:
                continue
            for match in pattern.finditer(ADDRESSES.sub(" ", line)):
                findings.append(Finding(page, match.group(0), line.strip()[:160]))
    return findings


# Opens every dropdown and reads the page: body text, then the texts outside it (see the module docstring). The
# values of inputs are what a person typed, not UI text, and are not read.
READ_PAGE = r"""
document.querySelectorAll('.dropdown-menu').forEach(m => m.classList.add('show'));
const texts = [document.body.innerText, document.title];
for (const el of document.querySelectorAll('[title], [placeholder], [aria-label], [alt], [data-original-title]')) {
  for (const name of ['title', 'placeholder', 'aria-label', 'alt', 'data-original-title']) {
    const value = el.getAttribute(name);
    if (value) texts.push(value);
  }
}
for (const el of document.querySelectorAll('input[type=submit], input[type=button], input[type=reset]')) {
  if (el.value) texts.push(el.value);
}
for (const option of document.querySelectorAll('select option')) {
  if (option.textContent.trim()) texts.push(option.textContent.trim());
}
for (const el of document.querySelectorAll('[data-confirm]')) texts.push(el.getAttribute('data-confirm'));
return texts;
"""

# Adds every filter of a Flask-Admin grid (its menu lists them as a.filter): each adds a row with its operations
# and, for a choice filter, its values, which READ_PAGE then reads.
ADD_EVERY_FILTER = r"""
const links = Array.from(document.querySelectorAll('.field-filters a.filter'));
links.forEach(a => a.click());
return links.length;
"""

# Removes what the page shows as stored, in the language it was written in: arguments[0] are CSS selectors,
# arguments[1] the labels of detail-page rows whose value goes.
REMOVE_STORED = r"""
arguments[0].forEach(sel => document.querySelectorAll(sel).forEach(e => e.remove()));
document.querySelectorAll('table tr').forEach(tr => {
  const cells = tr.querySelectorAll('td');
  if (cells.length === 2 && arguments[1].includes(cells[0].innerText.trim())) cells[1].remove();
});
"""
