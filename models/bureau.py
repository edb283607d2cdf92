"""The tenant: an accounting bureau (forhandler)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import OrgNumber, Timestamped, Versioned, org_number_check_sql


class Bureau(Versioned, Timestamped, db.Model):
    __tablename__ = "bureaus"
    __table_args__ = (CheckConstraint(org_number_check_sql("org_number"), name="org_number_valid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_number: Mapped[str] = mapped_column(OrgNumber, unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)

    def __str__(self) -> str:
        return self.name
