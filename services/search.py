"""One search for every grid search box and every ajax picker, bounded at any size.

What the user types is split into words; a row matches when every word is found in its searched columns, without
regard to case (æøå included). ``%``, ``_`` and ``"`` are characters like any other, a NUL is dropped (another
control character separates words), the punctuation of e-mails and names (``. @ - + & , /``) is left out of both
the rows and the words (``ola.nordmann``, ``ola-nordmann`` and ``olanordmann`` find the same), a word with fewer than
two letters or digits is ignored, and digits separated by spaces are one number (an org number typed ``923 456 783``).

- A word with three or more letters or digits is found anywhere (a fragment of a name, an e-mail or an org number),
  through the trigram index of the table's document (models/search.py).
- A word with two only matches the start of a word (``an`` finds Anne and Andersen AS, not Hansen), and one with a
  single letter or digit is ignored: a trigram index cannot find shorter fragments anywhere, a scan of every row
  for them (or for a short word nothing contains) takes seconds at a million clients, and PostgreSQL's trigrams
  cannot tell a column's first letter from any word's (``a`` would recheck every client called "… AS").

The big tables are searched for the ids of the first ``CANDIDATE_LIMIT`` matching rows of the bureau (in the table's
order, the same on every page); the grid then sorts and pages those (so a page never sorts every match). A search with more matches
than that shows the first of them: typing one more word narrows it. The small tables (packages, permissions,
customer templates) are matched by the same rules with a plain ``LIKE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, column, false, func, literal, literal_column, select, table, text
from sqlalchemy.orm import Session

from models import AuditEntry, Client, OutboxMessage, Person, User
from models.search import AUDIT, CLIENTS, FIELD_SEPARATOR, IGNORED_PUNCTUATION, OUTBOX, PERSONS, SearchDocument

CANDIDATE_LIMIT = 1000
MAX_SEARCH_LENGTH = 200  # a grid search longer than this finds nothing anyway
MAX_WORDS = 10
_CONTROL = re.compile(r"[\x01-\x1f\x7f]")
_SPACED_DIGITS = re.compile(r"(?<=\d)\s+(?=\d)")
_IGNORED = {ord(character): None for character in IGNORED_PUNCTUATION}


@dataclass(frozen=True)
class Source:
    """A document to search and how a listed row reaches it: ``link`` is the listed model's column holding the
    document row's id (``None``: the listed row is the document's own row)."""

    document: SearchDocument
    model: type
    link: Any = None


@dataclass(frozen=True)
class Searchable:
    """What a grid or picker of ``model`` searches: a row matches when it matches through any of the sources."""

    model: type
    sources: tuple[Source, ...]


CLIENTS_BY_NAME = Searchable(Client, (Source(CLIENTS, Client),))
PERSONS_BY_NAME = Searchable(Person, (Source(PERSONS, Person),))
PERSONS_BY_NAME_OR_CLIENT = Searchable(Person, (Source(PERSONS, Person), Source(CLIENTS, Client, Person.client_id)))
PERSONS_BY_CLIENT = Searchable(Person, (Source(CLIENTS, Client, Person.client_id),))
USERS_BY_NAME = Searchable(User, (Source(PERSONS, Person, User.person_id),))
OUTBOX_BY_RECIPIENT = Searchable(OutboxMessage, (Source(OUTBOX, OutboxMessage),))
AUDIT_BY_ACTOR = Searchable(AuditEntry, (Source(AUDIT, AuditEntry),))


def search_words(text_: str | None) -> list[str]:
    """The words of a search as the documents hold them: lower case, without control characters and the ignored
    punctuation, digits separated by spaces joined."""
    cleaned = _CONTROL.sub(" ", (text_ or "").replace("\x00", "")[:MAX_SEARCH_LENGTH]).translate(_IGNORED)
    words = [word for word in _SPACED_DIGITS.sub("", cleaned).lower().split() if _letters(word) >= 2]
    return list(dict.fromkeys(words))[:MAX_WORDS]


def _letters(word: str) -> int:
    return sum(character.isalnum() for character in word)


def needle(word: str) -> str:
    """The text a word must be found as in a document: anywhere when it has three letters or digits, else at the
    start of a word."""
    return word if _letters(word) >= 3 else " " + word


def _escape_like(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_pattern(word: str) -> str:
    """``LIKE`` pattern containing the word's needle, with ``%``, ``_`` and ``\\`` as themselves."""
    return f"%{_escape_like(needle(word))}%"


def fts_query(words: Sequence[str]) -> str:
    """FTS5 query: every needle as a quoted phrase (a trigram phrase is a substring), all of them required."""
    return " AND ".join('"' + needle(word).replace('"', '""') + '"' for word in words)


def matching_ids(
    session: Session, searchable: Searchable, words: Sequence[str], *, bureau_id: int, limit: int | None = None
) -> list[int]:
    """Ids of the first ``limit`` (``CANDIDATE_LIMIT``) rows of the bureau per source that contain every word, in
    the table's order (SQLite: by id)."""
    limit = limit or CANDIDATE_LIMIT
    if session.get_bind().dialect.name == "postgresql":
        # The same search gives the same rows on every page: a table scan starts at the table's first block, not
        # wherever another scan of the same table happens to be (this transaction only).
        session.execute(text("SET LOCAL synchronize_seqscans = off"))
    ids: dict[int, None] = {}
    for source in searchable.sources:
        query = _source_query(session, searchable.model, source, words, bureau_id, limit)
        ids.update(dict.fromkeys(session.scalars(query)))
    return list(ids)


def _source_query(session: Session, model: type, source: Source, words: Sequence[str], bureau_id: int, limit: int):
    owner, document = source.model, source.document
    if session.get_bind().dialect.name == "postgresql":
        # The very expression of the GIN index (as SQL text: a bound separator would not match it).
        expression = literal_column(document.expression("postgresql", document.table))
        matching = (owner.bureau_id == bureau_id, *(expression.like(like_pattern(word)) for word in words))
        if all(_letters(word) < 3 for word in words):
            # Only word or column starts: common ones ("an") are found fastest by walking the rows in id order
            # until the limit, rare ones through the index (the planner tells them apart by its statistics).
            query = select(owner.id) if source.link is None else select(model.id).join(owner, source.link == owner.id)
            return query.where(*matching).order_by(owner.id).limit(limit)
        # A fragment: the matches are a MATERIALIZED CTE without a limit, so the planner chooses between the index
        # and a table scan by the number of matches alone. Under a LIMIT it walks the table for any fragment it
        # expects often, not knowing how costly the document is to compute: for a common name that read 150,000
        # rows for 1000 matches (0.5 s). The CTE is read lazily, so the LIMIT still stops at the 1000th match.
        matches = select(owner.id).where(*matching).cte("search_matches").prefix_with("MATERIALIZED")
        if source.link is None:
            return select(matches.c.id).limit(limit)
        return select(model.id).join(matches, source.link == matches.c.id).limit(limit)
    # SQLite: the FTS5 table drives the loop (its matches come in rowid order and stop at the limit); the bureau is
    # compared as "+ 0" so that the planner cannot walk the bureau's index and probe the FTS table per row.
    fts = table(document.fts_table, column("rowid"))
    query = select(owner.id) if source.link is None else select(model.id).join(owner, source.link == owner.id)
    query = query.join(fts, fts.c.rowid == owner.id).where(
        text(f"{document.fts_table} MATCH :fts_query").bindparams(fts_query=fts_query(words)),
        owner.bureau_id + 0 == bureau_id,
    )
    return query.order_by(fts.c.rowid).limit(limit)


def search_criterion(
    session: Session, searchable: Searchable, text_: str | None, *, bureau_id: int
) -> ColumnElement[bool] | None:
    """SQL for "the row matches the search" on ``searchable.model`` (an id list of at most ``CANDIDATE_LIMIT`` rows
    per source), or None when the search has no words."""
    words = search_words(text_)
    if not words:
        return None
    ids = matching_ids(session, searchable, words, bureau_id=bureau_id)
    return searchable.model.id.in_(ids) if ids else false()


def columns_criterion(session: Session, columns: Iterable[Any], text_: str | None) -> ColumnElement[bool] | None:
    """The same rules over ``columns`` of a small table, without an index; None when the search has no words."""
    words = search_words(text_)
    if not words:
        return None
    columns = list(columns)
    if not columns:
        return false()
    lower = func.search_fold if session.get_bind().dialect.name == "sqlite" else func.lower
    document = literal("")
    for item in columns:
        text_column = lower(func.coalesce(item, ""))
        for character in IGNORED_PUNCTUATION:
            text_column = func.replace(text_column, character, "")
        document = document + literal(FIELD_SEPARATOR) + text_column
    return and_(*(document.like(like_pattern(word), escape="\\") for word in words))
