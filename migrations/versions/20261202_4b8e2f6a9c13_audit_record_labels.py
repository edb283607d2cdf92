"""audit record labels: each history entry names its record and its client

Revision: 4b8e2f6a9c13, after a4f2c8d1e9b3 (the head when it was written), made 2026-12-02.

Three nullable columns on ``audit_entries`` (the record's label, the client it belongs to and that client's label)
and an index for the event log's client filter. Existing entries are labelled from the records that still exist
(clients, people, users, packages, templates, permissions, package assignments, closed months); an entry of a
record deleted since keeps no label. Consent nonces written into old entries are replaced by "***", as new entries
store them.
"""

import json

import sqlalchemy as sa
from alembic import op


revision = '4b8e2f6a9c13'
down_revision = 'a4f2c8d1e9b3'
branch_labels = None
depends_on = None


def _client_label(prefix):
    """SQL for "Name (org number)" of the clients row aliased ``prefix`` (the name alone without a number)."""
    return (
        f"CASE WHEN {prefix}.org_number IS NULL THEN {prefix}.name"
        f" ELSE {prefix}.name || ' (' || {prefix}.org_number || ')' END"
    )


PERSON_NAME = "TRIM(p.first_name || ' ' || p.last_name)"

LABELS = {
    "clients": (f"SELECT {_client_label('c')} FROM clients c WHERE c.id = audit_entries.entity_id", "entity_id"),
    "persons": (
        f"SELECT {PERSON_NAME} FROM persons p WHERE p.id = audit_entries.entity_id",
        "(SELECT p.client_id FROM persons p WHERE p.id = audit_entries.entity_id)",
    ),
    "users": (
        f"SELECT {PERSON_NAME} FROM users u JOIN persons p ON p.id = u.person_id WHERE u.id = audit_entries.entity_id",
        "(SELECT p.client_id FROM users u JOIN persons p ON p.id = u.person_id WHERE u.id = audit_entries.entity_id)",
    ),
    "package_assignments": (
        f"SELECT k.name || ' – ' || {PERSON_NAME} FROM package_assignments a"
        " JOIN packages k ON k.id = a.package_id JOIN users u ON u.id = a.user_id"
        " JOIN persons p ON p.id = u.person_id WHERE a.id = audit_entries.entity_id",
        "(SELECT p.client_id FROM package_assignments a JOIN users u ON u.id = a.user_id"
        " JOIN persons p ON p.id = u.person_id WHERE a.id = audit_entries.entity_id)",
    ),
    "packages": ("SELECT k.name FROM packages k WHERE k.id = audit_entries.entity_id", None),
    "customer_templates": ("SELECT t.name FROM customer_templates t WHERE t.id = audit_entries.entity_id", None),
    "permissions": ("SELECT r.name FROM permissions r WHERE r.id = audit_entries.entity_id", None),
    "billing_months": ("SELECT m.period FROM billing_months m WHERE m.id = audit_entries.entity_id", None),
}


def upgrade():
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_label', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('client_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('client_label', sa.String(length=300), nullable=True))
        batch_op.create_index('ix_audit_entries_bureau_client_at', ['bureau_id', 'client_id', 'at', 'id'], unique=False)
    for entity, (label_sql, client_sql) in LABELS.items():
        assignments = [f"record_label = SUBSTR(({label_sql}), 1, 300)"]
        if client_sql:
            assignments.append(f"client_id = {client_sql}")
        op.execute(f"UPDATE audit_entries SET {', '.join(assignments)} WHERE entity = '{entity}'")
    op.execute(
        f"UPDATE audit_entries SET client_label = SUBSTR((SELECT {_client_label('c')} FROM clients c"
        " WHERE c.id = audit_entries.client_id), 1, 300) WHERE client_id IS NOT NULL"
    )
    _hide_consent_nonces()


def _hide_consent_nonces():
    """Old entries kept the consent link's nonce in clear; it becomes "***" like a new entry's."""
    conn = op.get_bind()
    entries = sa.table('audit_entries', sa.column('id', sa.Integer), sa.column('changes', sa.JSON))
    rows = conn.execute(
        sa.select(entries.c.id, entries.c.changes).where(
            sa.cast(entries.c.changes, sa.Text).like('%consent_nonce%')
        )
    ).all()
    for key, changes in rows:
        changes = json.loads(changes) if isinstance(changes, str) else dict(changes or {})
        change = changes.get('consent_nonce')
        if not isinstance(change, dict):
            continue
        changes['consent_nonce'] = {side: ('***' if change.get(side) else None) for side in ('from', 'to')}
        conn.execute(entries.update().where(entries.c.id == key).values(changes=changes))


def downgrade():
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_bureau_client_at')
        batch_op.drop_column('client_label')
        batch_op.drop_column('client_id')
        batch_op.drop_column('record_label')
