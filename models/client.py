"""Clients (klienter): the customer companies a bureau keeps in the suite."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import (
    OrgNumber,
    TenantOwned,
    Timestamped,
    Versioned,
    enum_column,
    org_number_check_sql,
)

if TYPE_CHECKING:
    from models.bureau import Bureau
    from models.person import Person
    from models.template import CustomerTemplate


class ConsentStatus(enum.StrEnum):
    PENDING = "pending"
    GIVEN = "given"
    DECLINED = "declined"


class ContactRole(enum.StrEnum):
    CEO = "daglig_leder"
    CHAIR = "styreleder"


class Client(TenantOwned, Versioned, Timestamped, db.Model):
    __tablename__ = "clients"
    __table_args__ = (
        UniqueConstraint("bureau_id", "org_number"),
        UniqueConstraint("id", "bureau_id"),
        CheckConstraint(org_number_check_sql("org_number"), name="org_number_valid"),
        CheckConstraint("NOT (is_internal AND is_demo)", name="internal_not_demo"),
        Index(
            "uq_clients_one_internal_per_bureau",
            "bureau_id",
            unique=True,
            sqlite_where=text("is_internal"),
            postgresql_where=text("is_internal"),
        ),
        Index("ix_clients_bureau_name", "bureau_id", "name"),
        # The grid's sorts and filters within a bureau.
        Index("ix_clients_bureau_created", "bureau_id", "created_at"),
        Index("ix_clients_bureau_demo_name", "bureau_id", "is_demo", "name"),
        Index("ix_clients_bureau_consent_name", "bureau_id", "consent_status", "name"),
        Index("ix_clients_bureau_template_name", "bureau_id", "template_id", "name"),
        Index("ix_clients_bureau_form_name", "bureau_id", "organisation_form", "name"),
        Index("ix_clients_bureau_internal_name", "bureau_id", "is_internal", "name"),
        # The register watch: which clients of any bureau a page of the register's change feed names.
        Index(
            "ix_clients_org_number",
            "org_number",
            sqlite_where=text("org_number IS NOT NULL"),
            postgresql_where=text("org_number IS NOT NULL"),
        ),
        # Hjem: the live clients waiting for GDPR consent, oldest request first (few: most answer within days).
        Index(
            "ix_clients_consent_pending",
            "bureau_id",
            "consent_requested_at",
            "id",
            sqlite_where=text("consent_status = 'pending' AND archived_at IS NULL"),
            postgresql_where=text("consent_status = 'pending' AND archived_at IS NULL"),
        ),
        # The few archived clients: "not archived through its client" (the person and user grids) reads these
        # instead of every person's client.
        Index(
            "ix_clients_archived",
            "bureau_id",
            "id",
            sqlite_where=text("archived_at IS NOT NULL"),
            postgresql_where=text("archived_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    org_number: Mapped[str | None] = mapped_column(OrgNumber)
    organisation_form: Mapped[str | None] = mapped_column(String(10))
    is_internal: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_demo: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, index=True)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer_templates.id", ondelete="SET NULL"), index=True
    )

    business_address_lines: Mapped[str | None] = mapped_column(Text)
    business_postal_code: Mapped[str | None] = mapped_column(String(20))
    business_city: Mapped[str | None] = mapped_column(String(100))
    business_country_code: Mapped[str | None] = mapped_column(String(2))
    postal_address_lines: Mapped[str | None] = mapped_column(Text)
    postal_postal_code: Mapped[str | None] = mapped_column(String(20))
    postal_city: Mapped[str | None] = mapped_column(String(100))
    postal_country_code: Mapped[str | None] = mapped_column(String(2))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(30))
    # Set from the customer template when the client is created.
    country_code: Mapped[str] = mapped_column(String(2), nullable=False, default="NO", server_default="NO")
    language: Mapped[str] = mapped_column(String(2), nullable=False, default="nb", server_default="nb")
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="NOK", server_default="NOK")

    company_lookup_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    custom_invoice_email_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Egendefinert fakturaepost: {"nb": {"subject": ..., "body": ...}, "sv": ..., "en": ...}; kept on the
    # client so that every change shows in the client's history and is covered by its version counter.
    invoice_email_texts: Mapped[dict[str, dict[str, str]]] = mapped_column(
        JSON, nullable=False, default=dict, server_default="{}"
    )

    contact_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL", use_alter=True))
    consent_status: Mapped[ConsentStatus | None] = enum_column(ConsentStatus, name="consent_status", index=True)
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consent_from: Mapped[str | None] = mapped_column(String(64))
    consent_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A new consent request replaces the nonce, so older links stop working; answering clears it.
    consent_nonce: Mapped[str | None] = mapped_column(String(64))
    contact_role: Mapped[ContactRole | None] = enum_column(ContactRole, name="contact_role")

    # What the register said at the last refresh, for the warnings on the client page.
    registry_status: Mapped[str | None] = mapped_column(String(30))
    registry_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Archived: hidden from grids and pickers, history kept, org number still reserved (services/archive).
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    bureau: Mapped[Bureau] = relationship()
    template: Mapped[CustomerTemplate | None] = relationship()
    contact_person: Mapped[Person | None] = relationship(foreign_keys=[contact_person_id], post_update=True)
    persons: Mapped[list[Person]] = relationship(
        back_populates="client",
        foreign_keys="Person.client_id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        overlaps="client",
    )

    def __str__(self) -> str:
        return self.name
