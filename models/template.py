"""Customer templates (kundemaler): presets for a new client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Column, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TenantOwned, Versioned

if TYPE_CHECKING:
    from models.package import Package

template_packages = Table(
    "template_packages",
    db.metadata,
    Column("template_id", ForeignKey("customer_templates.id", ondelete="CASCADE"), primary_key=True),
    Column("package_id", ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, nullable=False, server_default="1"),
)

LANGUAGES = ("nb", "sv", "en")


class CustomerTemplate(TenantOwned, Versioned, db.Model):
    __tablename__ = "customer_templates"
    __table_args__ = (UniqueConstraint("bureau_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    country_code: Mapped[str] = mapped_column(String(2), nullable=False, default="NO")
    language: Mapped[str] = mapped_column(String(2), nullable=False, default="nb")
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="NOK")

    packages: Mapped[list[Package]] = relationship(secondary=template_packages, order_by="Package.code")

    def __str__(self) -> str:
        return self.name
