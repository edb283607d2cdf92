"""The searched text of the big tables and its trigram indexes (services/search.py queries them).

Each searched table has one *document*: its searched columns, lower-cased, without the punctuation of e-mails and
names (``IGNORED_PUNCTUATION``) and joined into one string, every column preceded by two spaces
(``"  ola  nordmann  olafirmano"``). A fragment of three or more characters is found
anywhere in it; the spaces let a short term match the start of a word (``" no"``) or of a column (``"  n"``), which
is how one- and two-character terms are searched (a trigram index cannot find shorter fragments anywhere).

- PostgreSQL: a GIN trigram index (``pg_trgm``) on the document expression; ``LIKE`` on the same expression uses it.
- SQLite: an FTS5 table with the ``trigram`` tokenizer (contentless: it keeps the index, not a copy of the text),
  kept in step by triggers on insert, update of a searched column and delete.

The same statements run from ``create_all`` (tests) and from the migration, so the indexes are identical however
the schema was made; on a table that already has rows the SQLite statements also index them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import DDL, event

FIELD_SEPARATOR = "  "
# Left out of the documents and of the typed words alike. pg_trgm indexes letters and digits only, so
# ``ola.nordmann`` would be held as the words ``ola`` and ``nordmann`` and a fragment across the dot found only
# through both words anywhere (thousands of rows to check for a common name); joined, ``olanordmann`` keeps the
# fragment's trigrams together. (``_`` and ``%`` stay: they are searched as themselves.)
IGNORED_PUNCTUATION = ".@-+&,/"


@dataclass(frozen=True)
class SearchDocument:
    """A table's searched columns and the names of its index objects."""

    table: str
    columns: tuple[str, ...]

    @property
    def fts_table(self) -> str:
        """SQLite: the FTS5 table (its rowid is the row's id)."""
        return f"{self.table}_search"

    @property
    def pg_index(self) -> str:
        """PostgreSQL: the GIN trigram index on the document expression."""
        return f"ix_{self.table}_search_trgm"

    def expression(self, dialect: str, row: str | None = None) -> str:
        """The document as SQL over ``row``'s columns (``NEW``/``OLD`` in a trigger; unqualified in the index, which
        PostgreSQL matches against the same expression over qualified columns in a query)."""
        prefix = f"{row}." if row else ""
        parts = []
        for name in self.columns:
            column = f"coalesce({prefix}{name}, '')"
            if dialect == "postgresql":
                column = f"translate(lower({column}), '{IGNORED_PUNCTUATION}', '')"
            else:  # FTS5 folds case itself (Unicode, æøå included); SQLite's lower() knows ASCII only
                for character in IGNORED_PUNCTUATION:
                    column = f"replace({column}, '{character}', '')"
            parts.append(f"'{FIELD_SEPARATOR}' || {column}")
        return "(" + " || ".join(parts) + ")"

    def create_sql(self, dialect: str) -> list[str]:
        if dialect == "postgresql":
            return [
                f"CREATE INDEX IF NOT EXISTS {self.pg_index} ON {self.table}"
                f" USING gin ({self.expression(dialect)} gin_trgm_ops)"
            ]
        fts, columns = self.fts_table, ", ".join(self.columns)
        new, old = self.expression(dialect, "NEW"), self.expression(dialect, "OLD")
        forget = f"INSERT INTO {fts} ({fts}, rowid, doc) VALUES ('delete', OLD.id, {old});"
        remember = f"INSERT INTO {fts} (rowid, doc) VALUES (NEW.id, {new});"
        return [
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(doc, content='', tokenize='trigram')",
            f"INSERT INTO {fts} (rowid, doc) SELECT id, {self.expression(dialect)} FROM {self.table}",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT ON {self.table} BEGIN {remember} END",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE ON {self.table} BEGIN {forget} END",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE OF {columns} ON {self.table}"
            f" BEGIN {forget} {remember} END",
        ]

    def drop_sql(self, dialect: str) -> list[str]:
        if dialect == "postgresql":
            return [f"DROP INDEX IF EXISTS {self.pg_index}"]
        fts = self.fts_table
        return [
            *(f"DROP TRIGGER IF EXISTS {fts}_{event_}" for event_ in ("insert", "delete", "update")),
            f"DROP TABLE IF EXISTS {fts}",
        ]


CLIENTS = SearchDocument("clients", ("name", "org_number"))
PERSONS = SearchDocument("persons", ("first_name", "last_name", "email"))
OUTBOX = SearchDocument("outbox_messages", ("recipient", "subject"))
AUDIT = SearchDocument("audit_entries", ("actor_label",))
DOCUMENTS = (CLIENTS, PERSONS, OUTBOX, AUDIT)


def search_sql(dialect: str, drop: bool = False) -> list[str]:
    """Every statement that creates (or drops) the search indexes on ``dialect``."""
    if dialect not in ("sqlite", "postgresql"):
        raise RuntimeError(f"Unsupported database dialect: {dialect}")
    if drop:
        return [statement for document in DOCUMENTS for statement in document.drop_sql(dialect)]
    extension = ["CREATE EXTENSION IF NOT EXISTS pg_trgm"] if dialect == "postgresql" else []
    return extension + [statement for document in DOCUMENTS for statement in document.create_sql(dialect)]


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's comparison of the schema with the models (autogenerate, tests/test_migrations.py) leaves out the
    search indexes: these statements make them, not the models."""
    return not name or not any(
        name == document.pg_index or name == document.fts_table or name.startswith(f"{document.fts_table}_")
        for document in DOCUMENTS
    )


def attach_to_metadata(metadata) -> None:
    """Create the search indexes after ``metadata.create_all`` has made the tables, drop them before ``drop_all``."""
    for dialect in ("sqlite", "postgresql"):
        for statement in search_sql(dialect):
            event.listen(metadata, "after_create", DDL(statement).execute_if(dialect=dialect))
        for statement in search_sql(dialect, drop=True):
            event.listen(metadata, "before_drop", DDL(statement).execute_if(dialect=dialect))
