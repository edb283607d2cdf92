"""Rules the database enforces beyond plain constraints: triggers and exclusion constraints.

The same statements run from ``create_all`` (tests) and from the Alembic migrations, so the
rules are identical however the schema was made.
"""

from __future__ import annotations

from sqlalchemy import DDL, event

# Error texts raised by the database; services/errors.py maps them to user messages.
DEMO_PERMANENT = "demo_flag_is_permanent"
MAIN_PACKAGE_OVERLAP = "main_package_overlap"

SQLITE = [
    f"""
    CREATE TRIGGER clients_demo_is_permanent
    BEFORE UPDATE OF is_demo ON clients
    WHEN OLD.is_demo AND NOT NEW.is_demo
    BEGIN SELECT RAISE(ABORT, '{DEMO_PERMANENT}'); END
    """,
    f"""
    CREATE TRIGGER package_assignments_one_main_insert
    BEFORE INSERT ON package_assignments
    WHEN NEW.package_kind = 'main' AND EXISTS (
        SELECT 1 FROM package_assignments pa
        WHERE pa.user_id = NEW.user_id AND pa.package_kind = 'main'
          AND pa.valid_from <= COALESCE(NEW.valid_to, '9999-12-31')
          AND COALESCE(pa.valid_to, '9999-12-31') >= NEW.valid_from)
    BEGIN SELECT RAISE(ABORT, '{MAIN_PACKAGE_OVERLAP}'); END
    """,
    f"""
    CREATE TRIGGER package_assignments_one_main_update
    BEFORE UPDATE OF user_id, package_kind, valid_from, valid_to ON package_assignments
    WHEN NEW.package_kind = 'main' AND EXISTS (
        SELECT 1 FROM package_assignments pa
        WHERE pa.user_id = NEW.user_id AND pa.package_kind = 'main' AND pa.id <> NEW.id
          AND pa.valid_from <= COALESCE(NEW.valid_to, '9999-12-31')
          AND COALESCE(pa.valid_to, '9999-12-31') >= NEW.valid_from)
    BEGIN SELECT RAISE(ABORT, '{MAIN_PACKAGE_OVERLAP}'); END
    """,
]

POSTGRESQL = [
    f"""
    CREATE OR REPLACE FUNCTION clients_demo_is_permanent() RETURNS trigger AS $$
    BEGIN
        IF OLD.is_demo AND NOT NEW.is_demo THEN
            RAISE EXCEPTION '{DEMO_PERMANENT}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER clients_demo_is_permanent BEFORE UPDATE OF is_demo ON clients
    FOR EACH ROW EXECUTE FUNCTION clients_demo_is_permanent()
    """,
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    f"""
    ALTER TABLE package_assignments ADD CONSTRAINT {MAIN_PACKAGE_OVERLAP}
    EXCLUDE USING gist (user_id WITH =, daterange(valid_from, valid_to, '[]') WITH &&)
    WHERE (package_kind = 'main')
    """,
]

DROP_SQLITE = [
    "DROP TRIGGER IF EXISTS package_assignments_one_main_update",
    "DROP TRIGGER IF EXISTS package_assignments_one_main_insert",
    "DROP TRIGGER IF EXISTS clients_demo_is_permanent",
]
DROP_POSTGRESQL = [
    f"ALTER TABLE package_assignments DROP CONSTRAINT IF EXISTS {MAIN_PACKAGE_OVERLAP}",
    "DROP TRIGGER IF EXISTS clients_demo_is_permanent ON clients",
    "DROP FUNCTION IF EXISTS clients_demo_is_permanent()",
]


def statements_for(dialect: str, drop: bool = False) -> list[str]:
    if dialect == "sqlite":
        return DROP_SQLITE if drop else SQLITE
    if dialect == "postgresql":
        return DROP_POSTGRESQL if drop else POSTGRESQL
    raise RuntimeError(f"Unsupported database dialect: {dialect}")


def attach_to_metadata(metadata) -> None:
    """Run the rules after ``metadata.create_all`` has made the tables."""
    for dialect, statements in (("sqlite", SQLITE), ("postgresql", POSTGRESQL)):
        for statement in statements:
            event.listen(metadata, "after_create", DDL(statement).execute_if(dialect=dialect))
