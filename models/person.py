"""People connected to a client (Person) and their logins (User)."""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from extensions import db
from models.base import TenantOwned, Timestamped, Versioned, enum_column

if TYPE_CHECKING:
    from models.client import Client
    from models.outbox import OutboxMessage
    from models.package import PackageAssignment, Permission


def new_session_token() -> str:
    """A fresh per-user session token: every login cookie carries it, so a new one ends every other session."""
    return secrets.token_urlsafe(32)


class PersonKind(enum.StrEnum):
    RESELLER_USER = "reseller_user"  # Bruker knyttet til forhandler
    USER = "user"  # Bruker med tilgangspakker
    EXTERNAL_USER = "external_user"  # Ekstern bruker med tilgangspakker
    USER_WITHOUT_PACKAGES = "user_without_packages"  # Bruker uten tilgangspakker
    PERSON = "person"  # Person uten bruker


KINDS_WITH_LOGIN = frozenset(k for k in PersonKind if k is not PersonKind.PERSON)
KINDS_WITH_PACKAGES = frozenset({PersonKind.USER, PersonKind.EXTERNAL_USER})


class UserStatus(enum.StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    BLOCKED = "blocked"


class InvitationState(enum.StrEnum):
    """Where a user's invitation stands, for the user grid."""

    NOT_SENT = "not_sent"
    SENT = "sent"  # queued in the outbox
    DELIVERED = "delivered"  # the mail server accepted it
    ACCEPTED = "accepted"
    EXPIRED = "expired"  # the link ran out, was withdrawn, or the user's end date has passed


class ResellerRole(enum.StrEnum):
    ACCOUNTANT = "accountant"  # regnskapsfører
    AUDITOR = "auditor"  # revisor
    INTEGRATION = "integration"  # integrasjonsbruker


class StaffRole(enum.StrEnum):
    ADMIN = "admin"  # byråadministrator
    STAFF = "staff"  # ansatt


user_permissions = Table(
    "user_permissions",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("permission_id", ForeignKey("permissions.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, nullable=False, server_default="1"),
)


class Person(TenantOwned, Versioned, Timestamped, db.Model):
    __tablename__ = "persons"
    __table_args__ = (
        UniqueConstraint("client_id", "email"),
        # Target of users' (person_id, person_kind) key: a user always matches its person's kind.
        UniqueConstraint("id", "kind"),
        # A person's client is always in the person's own bureau.
        ForeignKeyConstraint(
            ["client_id", "bureau_id"],
            ["clients.id", "clients.bureau_id"],
            ondelete="CASCADE",
            name="fk_persons_client_same_bureau",
        ),
        CheckConstraint("kind IN ('person', 'reseller_user') OR email IS NOT NULL", name="login_needs_email"),
        # The grid's sorts and filters within a bureau.
        Index("ix_persons_bureau_last_name", "bureau_id", "last_name"),
        Index("ix_persons_bureau_first_name", "bureau_id", "first_name"),
        Index("ix_persons_bureau_email", "bureau_id", "email"),
        Index("ix_persons_bureau_kind_last_name", "bureau_id", "kind", "last_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    kind: Mapped[PersonKind] = enum_column(PersonKind, name="person_kind", nullable=False)
    first_name: Mapped[str] = mapped_column(String(100), nullable=False)
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(30))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    client: Mapped[Client] = relationship(back_populates="persons", foreign_keys=[client_id], overlaps="persons")
    user: Mapped[User | None] = relationship(
        back_populates="person",
        uselist=False,
        cascade="all, delete-orphan",
        passive_deletes=True,
        foreign_keys="User.person_id",
        primaryjoin="Person.id == User.person_id",
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def __str__(self) -> str:
        return self.full_name


class User(TenantOwned, Versioned, Timestamped, UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        ForeignKeyConstraint(
            ["person_id", "person_kind"],
            ["persons.id", "persons.kind"],
            ondelete="CASCADE",
            onupdate="CASCADE",
            name="fk_users_person_kind",
        ),
        CheckConstraint("person_kind <> 'person'", name="person_kind_has_login"),
        CheckConstraint("person_kind <> 'external_user' OR end_date IS NOT NULL", name="external_has_end_date"),
        CheckConstraint(
            "(person_kind = 'reseller_user') = (reseller_role IS NOT NULL AND employee_id IS NOT NULL)",
            name="reseller_fields",
        ),
        CheckConstraint(
            "person_kind = 'reseller_user' OR (NOT bank_access AND NOT user_admin)",
            name="reseller_extras",
        ),
        # The grid's sorts and filters within a bureau (newest first by default).
        Index("ix_users_bureau_newest", "bureau_id", "id"),
        Index("ix_users_bureau_status_id", "bureau_id", "status", "id"),
        Index("ix_users_bureau_kind_id", "bureau_id", "person_kind", "id"),
        Index("ix_users_bureau_invitation_sent", "bureau_id", "invitation_sent_at"),
        Index("ix_users_bureau_end_date", "bureau_id", "end_date"),
        # Partial: few users have an end date or a bureau role, and an index of only those tells the planner so.
        Index(
            "ix_users_bureau_end_date_set",
            "bureau_id",
            "end_date",
            sqlite_where=text("end_date IS NOT NULL"),
            postgresql_where=text("end_date IS NOT NULL"),
        ),
        # Hjem: active users with an end date (expiring soon, or past it and not blocked yet by the daily job).
        Index(
            "ix_users_active_end_date",
            "bureau_id",
            "end_date",
            sqlite_where=text("status = 'active' AND end_date IS NOT NULL"),
            postgresql_where=text("status = 'active' AND end_date IS NOT NULL"),
        ),
        # Hjem: invitations sent and not accepted (waiting, or expired), oldest first.
        Index(
            "ix_users_invitation_open",
            "bureau_id",
            "invitation_sent_at",
            sqlite_where=text("status = 'invited' AND accepted_at IS NULL AND invitation_sent_at IS NOT NULL"),
            postgresql_where=text("status = 'invited' AND accepted_at IS NULL AND invitation_sent_at IS NOT NULL"),
        ),
        # Staff users are a handful among millions of client users: the "at least one active administrator" check
        # on every flush that touches a user's authority reads them through this index, not the whole bureau.
        Index(
            "ix_users_bureau_staff_role",
            "bureau_id",
            "staff_role",
            "status",
            sqlite_where=text("staff_role IS NOT NULL"),
            postgresql_where=text("staff_role IS NOT NULL"),
        ),
        Index(
            "ix_users_bureau_reseller_role",
            "bureau_id",
            "reseller_role",
            sqlite_where=text("reseller_role IS NOT NULL"),
            postgresql_where=text("reseller_role IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    person_kind: Mapped[PersonKind] = enum_column(PersonKind, name="user_person_kind", nullable=False)
    status: Mapped[UserStatus] = enum_column(
        UserStatus, name="user_status", nullable=False, default=UserStatus.INVITED, index=True
    )
    end_date: Mapped[date | None] = mapped_column(Date, index=True)
    reseller_role: Mapped[ResellerRole | None] = enum_column(ResellerRole, name="reseller_role")
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    bank_access: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    user_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    staff_role: Mapped[StaffRole | None] = enum_column(StaffRole, name="staff_role")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The invitation: a new nonce per invitation makes older links stop working; accepting clears it.
    invitation_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    invitation_nonce: Mapped[str | None] = mapped_column(String(64))
    invitation_message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id", ondelete="SET NULL"))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    blocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Part of every login cookie (``get_id``); replaced (services/sessions.py) to end the user's sessions.
    # (Nullable only so that the migration adds it without rebuilding the table; every row has one.)
    session_token: Mapped[str | None] = mapped_column(String(64), default=new_session_token)
    # A staff user's lower-cased login e-mail, unique across the installation (ix_users_login_email); NULL for
    # everyone else. Kept in step by services/sessions.py.
    login_email: Mapped[str | None] = mapped_column(String(254), index=True, unique=True)
    # Set and cleared together with its person's (services/archive).
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    person: Mapped[Person] = relationship(
        back_populates="user", foreign_keys=[person_id], primaryjoin="User.person_id == Person.id"
    )
    employee: Mapped[User | None] = relationship(remote_side=[id], foreign_keys=[employee_id])
    permissions: Mapped[list[Permission]] = relationship(secondary=user_permissions)
    assignments: Mapped[list[PackageAssignment]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    invitation_message: Mapped[OutboxMessage | None] = relationship(foreign_keys=[invitation_message_id])

    def get_id(self) -> str:
        """Flask-Login's id in the session cookie: the row and the current session token."""
        return f"{self.id}:{self.session_token}"

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def is_staff(self) -> bool:
        return self.staff_role is not None

    @property
    def is_bureau_admin(self) -> bool:
        return self.staff_role == StaffRole.ADMIN

    def is_past_end_date(self, today: date) -> bool:
        return self.end_date is not None and self.end_date < today

    def is_effectively_active(self, today: date) -> bool:
        """Active and not past the end date: an expired external user counts as blocked before any job ran."""
        return self.status == UserStatus.ACTIVE and not self.is_past_end_date(today)

    def effective_status(self, today: date) -> UserStatus:
        """The status to show and count: a user past the end date is blocked whatever the row says yet."""
        return UserStatus.BLOCKED if self.is_past_end_date(today) else self.status

    @property
    def is_active(self) -> bool:  # Flask-Login: blocked and expired users cannot log in or act
        return self.is_effectively_active(date.today())

    def invitation_state(self, now: datetime, lifetime: timedelta) -> InvitationState:
        """The invitation's state at ``now`` for links that live ``lifetime`` (``services.links``) from sending."""
        if self.accepted_at is not None:
            return InvitationState.ACCEPTED
        if self.invitation_sent_at is None:
            return InvitationState.NOT_SENT
        sent_at = self.invitation_sent_at
        if sent_at.tzinfo is None:  # SQLite hands back naive datetimes; they are stored in UTC
            sent_at = sent_at.replace(tzinfo=UTC)
        if self.invitation_nonce is None or sent_at + lifetime < now or self.is_past_end_date(now.date()):
            return InvitationState.EXPIRED
        message = self.invitation_message
        if message is not None and message.sent_at is not None:
            return InvitationState.DELIVERED
        return InvitationState.SENT

    @property
    def email(self) -> str | None:
        return self.person.email if self.person else None

    def __str__(self) -> str:
        if self.person is None:
            return f"#{self.id}"
        return f"{self.person.full_name} <{self.person.email or '-'}>"
