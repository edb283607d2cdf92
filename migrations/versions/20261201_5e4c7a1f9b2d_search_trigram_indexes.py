"""search trigram indexes

Revision: 5e4c7a1f9b2d, after 81548f645c05, made 2026-12-01 19:00:00.

PostgreSQL: the pg_trgm extension and a GIN trigram index on each searched document; SQLite: an FTS5 trigram table
per document, filled from the existing rows and kept in step by triggers (models/search.py has the statements).
"""

from alembic import op

from models.search import DOCUMENTS, search_sql


revision = '5e4c7a1f9b2d'
down_revision = '81548f645c05'
branch_labels = None
depends_on = None


def upgrade():
    dialect = op.get_bind().dialect.name
    for statement in search_sql(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        # Statistics of the new index expressions: without them the planner guesses how many rows a fragment
        # matches, and for a short one may scan the table instead of the index.
        for document in DOCUMENTS:
            op.execute(f"ANALYZE {document.table}")


def downgrade():
    for statement in search_sql(op.get_bind().dialect.name, drop=True):
        op.execute(statement)
