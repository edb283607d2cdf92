"""Saved views: a grid's search, filters, sort and page size under a name, for one staff member or the bureau.

A view is stored as the grid's own query arguments (``services.saved_views`` checks them against the grid's filters,
sorts and page sizes before they are stored and again before they are applied), and a grid is named by its view's
endpoint ("clients", "users", …). The menu on a grid is read with one query (``ix_saved_views_owner`` for one's own,
``ix_saved_views_bureau`` for the bureau's shared ones), so a grid page costs the same whether there are views or not.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import Versioned, utcnow

NAME_LENGTH = 80
GRID_LENGTH = 64


class SavedView(Versioned, db.Model):
    __tablename__ = "saved_views"
    __table_args__ = (
        # One name per grid and owner among private views, and per grid among the bureau's shared views, compared
        # without case ("Mine kunder" and "mine kunder" are the same name). A private view may share a shared
        # view's name: the menu lists them apart.
        Index(
            "uq_saved_views_private_name",
            "owner_id",
            "grid",
            "name_key",
            unique=True,
            sqlite_where=text("shared = 0"),
            postgresql_where=text("NOT shared"),
        ),
        Index(
            "uq_saved_views_shared_name",
            "bureau_id",
            "grid",
            "name_key",
            unique=True,
            sqlite_where=text("shared"),
            postgresql_where=text("shared"),
        ),
        # The menu: one's own views of a grid, and the bureau's shared views of it.
        Index("ix_saved_views_owner", "owner_id", "grid", "name_key"),
        # (and the bureau's rows when a bureau is deleted)
        Index("ix_saved_views_bureau", "bureau_id", "grid", "shared", "name_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A tenant's row (``TenantOwned``), indexed by ``ix_saved_views_bureau`` rather than on its own.
    bureau_id: Mapped[int] = mapped_column(ForeignKey("bureaus.id", ondelete="CASCADE"), nullable=False)
    grid: Mapped[str] = mapped_column(String(GRID_LENGTH), nullable=False)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), nullable=False)
    name_key: Mapped[str] = mapped_column(String(4 * NAME_LENGTH), nullable=False)
    # Deleting a user deletes their views (users with history are archived, not deleted, and keep them).
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    shared: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # The grid's query string as services/saved_views.py wrote it (checked arguments only, in a fixed order).
    query: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    def __str__(self) -> str:
        return self.name


class SavedViewDefault(Versioned, db.Model):
    """The view a staff member's bare grid opens with: one per user and grid; gone with the view."""

    __tablename__ = "saved_view_defaults"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    grid: Mapped[str] = mapped_column(String(GRID_LENGTH), primary_key=True)
    view_id: Mapped[int] = mapped_column(ForeignKey("saved_views.id", ondelete="CASCADE"), nullable=False, index=True)
