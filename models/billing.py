"""Closed billing months: the billing basis of a past month, computed once and stored for good.

A closed month is a row in ``billing_months`` (one per bureau and month) with its totals, plus the rows of its
summary export (``billing_snapshot_rows``) and of its detail export (``billing_snapshot_details``). The snapshot
names clients, users and packages by value (a client id is a plain integer without a foreign key), so deleting or
changing them later never changes it. The database refuses any UPDATE of these tables (triggers below, the same
from ``create_all`` and the migration), so their ``version`` (every table has one) stays 1; rows go only when
their bureau does.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import OrgNumber, TenantOwned, Versioned, utcnow

# Raised by the database when anything tries to change a closed month.
CLOSED_MONTH_IMMUTABLE = "closed_billing_month_is_immutable"
IMMUTABLE_TABLES = ("billing_months", "billing_snapshot_rows", "billing_snapshot_details")


class BillingMonth(TenantOwned, Versioned, db.Model):
    """A bureau's closed month: when and by whom it was closed, and its totals as the page shows them."""

    __tablename__ = "billing_months"
    __table_args__ = (UniqueConstraint("bureau_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(7), nullable=False)  # YYYY-MM
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    closed_by_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: a deleted user stays named
    closed_by_label: Mapped[str] = mapped_column(String(300), nullable=False)
    clients: Mapped[int] = mapped_column(Integer, nullable=False)
    users: Mapped[int] = mapped_column(Integer, nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)

    def __str__(self) -> str:
        return self.period


class BillingSnapshotRow(Versioned, db.Model):
    """One line of a closed month's summary export: a client and package, its users, unit price and amount."""

    __tablename__ = "billing_snapshot_rows"
    __table_args__ = (UniqueConstraint("month_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month_id: Mapped[int] = mapped_column(ForeignKey("billing_months.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)  # the line's place in the export
    client_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)  # no foreign key on purpose
    client_org_number: Mapped[str | None] = mapped_column(OrgNumber)
    client_name: Mapped[str] = mapped_column(String(200), nullable=False)
    package_code: Mapped[str] = mapped_column(String(30), nullable=False)
    package_name: Mapped[str] = mapped_column(String(100), nullable=False)
    package_kind: Mapped[str] = mapped_column(String(10), nullable=False)
    users: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)


class BillingSnapshotDetail(Versioned, db.Model):
    """One line of a closed month's detail export: a user's package on a client and the days billable."""

    __tablename__ = "billing_snapshot_details"
    __table_args__ = (UniqueConstraint("month_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month_id: Mapped[int] = mapped_column(ForeignKey("billing_months.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    client_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    client_org_number: Mapped[str | None] = mapped_column(OrgNumber)
    client_name: Mapped[str] = mapped_column(String(200), nullable=False)
    user_id: Mapped[int] = mapped_column(Integer, nullable=False)  # no foreign key on purpose
    user_name: Mapped[str] = mapped_column(String(201), nullable=False)
    user_email: Mapped[str | None] = mapped_column(String(254))
    package_code: Mapped[str] = mapped_column(String(30), nullable=False)
    package_name: Mapped[str] = mapped_column(String(100), nullable=False)
    package_kind: Mapped[str] = mapped_column(String(10), nullable=False)
    days_billable: Mapped[int] = mapped_column(Integer, nullable=False)


def immutable_sql(dialect: str, drop: bool = False) -> list[str]:
    """The triggers that refuse UPDATE of a closed month (DELETE stays possible: tests empty tables with it)."""
    statements: list[str] = []
    for table in IMMUTABLE_TABLES:
        if dialect == "sqlite":
            statements += (
                [f"DROP TRIGGER IF EXISTS {table}_no_update"]
                if drop
                else [
                    f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}"
                    f" BEGIN SELECT RAISE(ABORT, '{CLOSED_MONTH_IMMUTABLE}'); END"
                ]
            )
        elif drop:
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_update ON {table}")
        else:
            statements.append(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION closed_billing_month_is_immutable()"
            )
    if dialect == "postgresql":
        function = f"""
            CREATE OR REPLACE FUNCTION closed_billing_month_is_immutable() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{CLOSED_MONTH_IMMUTABLE}' USING ERRCODE = 'check_violation';
            END $$ LANGUAGE plpgsql
            """
        statements = (
            [*statements, "DROP FUNCTION IF EXISTS closed_billing_month_is_immutable()"]
            if drop
            else [function, *statements]
        )
    return statements


def attach_to_metadata(metadata) -> None:
    """Install the triggers after ``metadata.create_all`` has made the tables (as models.rules does)."""
    for dialect in ("sqlite", "postgresql"):
        for statement in immutable_sql(dialect):
            event.listen(metadata, "after_create", DDL(statement).execute_if(dialect=dialect))


# --- open months: totals kept up to date by the worker (services/billing_totals.py) -------------------------


class BillingTotal(TenantOwned, Versioned, db.Model):
    """An open month's totals for a bureau, as the Fakturagrunnlag page shows them, kept by the worker.

    ``computed_at`` is when the totals last took in the changes recorded in ``billing_changes``; null while the
    month has been asked for but not computed yet. Every refresh bumps ``version``, which lets a full recompute
    (computed outside the write transaction) refuse to overwrite a refresh that came in between.
    """

    __tablename__ = "billing_totals"
    __table_args__ = (UniqueConstraint("bureau_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(7), nullable=False)  # YYYY-MM
    clients: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    users: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    amount_ore: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)  # øre: sums stay exact
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BillingClientTotal(Versioned, db.Model):
    """One client's share of an open month's totals (only clients with at least one billed line).

    The shares add up to ``BillingTotal`` (a user belongs to exactly one client), so a change to one client is
    applied by recomputing that client's share and adding the difference. ``client_id`` has no foreign key: a
    deleted client's share must stay until the worker takes it out of the totals.
    """

    __tablename__ = "billing_client_totals"

    bureau_id: Mapped[int] = mapped_column(ForeignKey("bureaus.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    users: Mapped[int] = mapped_column(Integer, nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    amount_ore: Mapped[int] = mapped_column(BigInteger, nullable=False)


class BillingChange(Versioned, db.Model):
    """A change that may alter a client's billing (or, with no client, the whole bureau's), not yet applied.

    Written by a flush hook in the same transaction as the change; the worker applies and deletes them.
    """

    __tablename__ = "billing_changes"
    __table_args__ = (Index("ix_billing_changes_bureau_id_id", "bureau_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)  # never reused (AUTOINCREMENT): the worker deletes by id
    bureau_id: Mapped[int] = mapped_column(ForeignKey("bureaus.id", ondelete="CASCADE"), nullable=False)
    client_id: Mapped[int | None] = mapped_column(Integer)  # null: every client of the bureau (a price changed)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class PackageHolderCount(Versioned, db.Model):
    """How many clients and users hold a package today, as the package grid shows it; counted by the worker."""

    __tablename__ = "package_holder_counts"

    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    bureau_id: Mapped[int] = mapped_column(ForeignKey("bureaus.id", ondelete="CASCADE"), nullable=False, index=True)
    clients: Mapped[int] = mapped_column(Integer, nullable=False)
    users: Mapped[int] = mapped_column(Integer, nullable=False)
    counted_on: Mapped[date] = mapped_column(Date, nullable=False)  # "today" of the count
    stale: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)  # holdings changed since
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
