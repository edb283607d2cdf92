"""Access packages (tilgangspakker), single permissions and who holds what when."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TenantOwned, Timestamped, Versioned, enum_column

if TYPE_CHECKING:
    from models.person import User


class PackageKind(enum.StrEnum):
    MAIN = "main"  # hovedpakke
    ADDON = "addon"  # tilleggspakke


package_permissions = Table(
    "package_permissions",
    db.metadata,
    Column("package_id", ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True),
    Column("permission_id", ForeignKey("permissions.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, nullable=False, server_default="1"),
)


class Permission(TenantOwned, Versioned, db.Model):
    """A single right (enkelttilgang)."""

    __tablename__ = "permissions"
    __table_args__ = (UniqueConstraint("bureau_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)

    def __str__(self) -> str:
        return self.name


class Package(TenantOwned, Versioned, db.Model):
    __tablename__ = "packages"
    __table_args__ = (
        UniqueConstraint("bureau_id", "code"),
        UniqueConstraint("id", "kind"),
        CheckConstraint("kind = 'addon' OR rank IS NOT NULL", name="main_has_rank"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("rank IS NULL OR rank >= 1", name="rank_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(30), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[PackageKind] = enum_column(PackageKind, name="package_kind", nullable=False)
    # Main packages form a hierarchy: a higher rank includes every lower-ranked main package.
    rank: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False, default=Decimal("0"))
    requires_main: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    permissions: Mapped[list[Permission]] = relationship(secondary=package_permissions, order_by=Permission.code)

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PackageAssignment(TenantOwned, Versioned, Timestamped, db.Model):
    """A package held by a user from ``valid_from`` to ``valid_to`` (inclusive; open when null)."""

    __tablename__ = "package_assignments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["package_id", "package_kind"],
            ["packages.id", "packages.kind"],
            ondelete="CASCADE",
            onupdate="CASCADE",
            name="fk_package_assignments_package_kind",
        ),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="dates_ordered"),
        Index("ix_package_assignments_package_dates", "package_id", "valid_from"),
        # The grid's sorts and filters within a bureau (latest start first by default), and "holds package P".
        Index("ix_package_assignments_bureau_from", "bureau_id", "valid_from"),
        Index("ix_package_assignments_bureau_kind_from", "bureau_id", "package_kind", "valid_from"),
        # An end date's assignments in the grid's order (latest start first), read straight from the index.
        Index("ix_package_assignments_bureau_to_from", "bureau_id", "valid_to", "valid_from"),
        Index("ix_package_assignments_user_package", "user_id", "package_id", "valid_from", "valid_to"),
        Index("ix_package_assignments_package_to", "package_id", "valid_to", "valid_from", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    package_id: Mapped[int] = mapped_column(Integer, nullable=False)
    package_kind: Mapped[PackageKind] = enum_column(PackageKind, name="assignment_package_kind", nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False, default=date.today)
    valid_to: Mapped[date | None] = mapped_column(Date)

    user: Mapped[User] = relationship(back_populates="assignments")
    package: Mapped[Package] = relationship(foreign_keys=[package_id])

    def __str__(self) -> str:
        return f"{self.package.code if self.package else '?'} {self.valid_from}–{self.valid_to or ''}"


class PackagePrice(TenantOwned, Versioned, db.Model):
    """The monthly price per user a package has from ``valid_from`` on: past periods keep their price."""

    __tablename__ = "package_prices"
    __table_args__ = (
        UniqueConstraint("package_id", "valid_from"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), nullable=False, index=True)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)

    def __str__(self) -> str:
        return f"{self.price} from {self.valid_from}"
