"""grid sort and filter indexes

Revision: e52dda6e5325, after 5e4c7a1f9b2d, made 2026-12-01 18:55:00.

Every grid's default sort, each sortable column and the filters whose plans need one, within a bureau (bureau_id
first), so a page reads its rows in index order instead of sorting the bureau's rows (issue 9). The indexes are
plain rather than partial (WHERE archived_at IS NULL): archived rows are few, the "Archived: yes" grid uses the
same sorts, and no plan depends on the planner matching a partial index's condition. The statistics the planner
needs are refreshed after every upgrade (migrations/env.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "e52dda6e5325"
down_revision = "5e4c7a1f9b2d"
branch_labels = None
depends_on = None

INDEXES = {
    "clients": {
        "ix_clients_bureau_created": ["bureau_id", "created_at"],
        "ix_clients_bureau_demo_name": ["bureau_id", "is_demo", "name"],
        "ix_clients_bureau_consent_name": ["bureau_id", "consent_status", "name"],
        "ix_clients_bureau_template_name": ["bureau_id", "template_id", "name"],
        "ix_clients_bureau_form_name": ["bureau_id", "organisation_form", "name"],
        # SQLite cannot use the partial unique index (WHERE is_internal) for the filter's "is_internal = 1".
        "ix_clients_bureau_internal_name": ["bureau_id", "is_internal", "name"],
    },
    "persons": {
        "ix_persons_bureau_last_name": ["bureau_id", "last_name"],
        "ix_persons_bureau_first_name": ["bureau_id", "first_name"],
        "ix_persons_bureau_email": ["bureau_id", "email"],
        "ix_persons_bureau_kind_last_name": ["bureau_id", "kind", "last_name"],
    },
    "users": {
        "ix_users_bureau_newest": ["bureau_id", "id"],
        "ix_users_bureau_status_id": ["bureau_id", "status", "id"],
        "ix_users_bureau_kind_id": ["bureau_id", "person_kind", "id"],
        "ix_users_bureau_invitation_sent": ["bureau_id", "invitation_sent_at"],
        "ix_users_bureau_end_date": ["bureau_id", "end_date"],
    },
    "package_assignments": {
        "ix_package_assignments_bureau_from": ["bureau_id", "valid_from"],
        "ix_package_assignments_bureau_kind_from": ["bureau_id", "package_kind", "valid_from"],
        "ix_package_assignments_bureau_to": ["bureau_id", "valid_to"],
        "ix_package_assignments_user_package": ["user_id", "package_id", "valid_from", "valid_to"],
        "ix_package_assignments_package_to": ["package_id", "valid_to", "valid_from", "user_id"],
    },
    "audit_entries": {
        "ix_audit_entries_bureau_at": ["bureau_id", "at", "id"],
        "ix_audit_entries_bureau_entity_at": ["bureau_id", "entity", "at", "id"],
        "ix_audit_entries_bureau_action_at": ["bureau_id", "action", "at", "id"],
        "ix_audit_entries_bureau_actor": ["bureau_id", "actor_label"],
        "ix_audit_entries_bureau_entity_id": ["bureau_id", "entity_id"],
    },
    "outbox_messages": {
        "ix_outbox_messages_bureau_status_created": ["bureau_id", "status", "created_at", "id"],
        "ix_outbox_messages_bureau_kind_created": ["bureau_id", "kind", "created_at", "id"],
        "ix_outbox_messages_bureau_recipient": ["bureau_id", "recipient"],
        "ix_outbox_messages_bureau_attempts": ["bureau_id", "attempts"],
        "ix_outbox_messages_bureau_sent": ["bureau_id", "sent_at"],
    },
}


# Partial: few users have an end date or a bureau role, and few clients are archived; an index of only those tells the
# planner so (and "not archived through its client" reads the archived clients instead of every person's client).
PARTIAL_INDEXES = {
    "ix_clients_archived": ("clients", ["bureau_id", "id"], "archived_at IS NOT NULL"),
    "ix_users_bureau_end_date_set": ("users", ["bureau_id", "end_date"], "end_date IS NOT NULL"),
    "ix_users_bureau_reseller_role": ("users", ["bureau_id", "reseller_role"], "reseller_role IS NOT NULL"),
}


def upgrade():
    # The outbox's newest-first index gains the id that breaks ties between messages made in the same instant.
    op.drop_index("ix_outbox_messages_bureau_created", table_name="outbox_messages")
    op.create_index("ix_outbox_messages_bureau_created", "outbox_messages", ["bureau_id", "created_at", "id"])
    for table, indexes in INDEXES.items():
        for name, columns in indexes.items():
            op.create_index(name, table, columns)
    for name, (table, columns, where) in PARTIAL_INDEXES.items():
        op.create_index(name, table, columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def downgrade():
    for name, (table, _columns, _where) in PARTIAL_INDEXES.items():
        op.drop_index(name, table_name=table)
    for table, indexes in INDEXES.items():
        for name in indexes:
            op.drop_index(name, table_name=table)
    op.drop_index("ix_outbox_messages_bureau_created", table_name="outbox_messages")
    op.create_index("ix_outbox_messages_bureau_created", "outbox_messages", ["bureau_id", "created_at"])
