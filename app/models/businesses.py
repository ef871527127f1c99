"""The tenant (a business), who works there, and where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column, tenant_column


class Business(Base):
    __tablename__ = "businesses"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="slug_format"),
        CheckConstraint("slot_step_min BETWEEN 5 AND 240", name="slot_step"),
        CheckConstraint("max_active_bookings_per_client BETWEEN 1 AND 100", name="active_cap"),
        CheckConstraint("horizon_days BETWEEN 1 AND 366", name="horizon"),
        CheckConstraint("reschedule_deadline_min BETWEEN 0 AND 10080", name="reschedule_deadline"),
        CheckConstraint("languages <@ ARRAY['ru', 'kk', 'en']::varchar[]", name="languages"),
    )

    id: Mapped[int] = id_column()
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(
        String(64), default="Asia/Almaty", server_default="Asia/Almaty"
    )
    currency: Mapped[str] = mapped_column(String(3), default="KZT", server_default="KZT")
    phone: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(300))
    default_locale: Mapped[str] = mapped_column(String(2), default="ru", server_default="ru")
    # booking rules the business sets
    auto_confirm: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    pending_ttl_min: Mapped[int] = mapped_column(Integer, default=120, server_default="120")
    cancel_deadline_min: Mapped[int] = mapped_column(Integer, default=120, server_default="120")
    reschedule_deadline_min: Mapped[int] = mapped_column(Integer, default=120, server_default="120")
    max_active_bookings_per_client: Mapped[int] = mapped_column(
        SmallInteger, default=3, server_default="3"
    )
    slot_step_min: Mapped[int] = mapped_column(SmallInteger, default=15, server_default="15")
    min_notice_min: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    horizon_days: Mapped[int] = mapped_column(SmallInteger, default=60, server_default="60")
    # closed on Kazakhstan's public holidays and transferred days off unless switched off
    observe_public_holidays: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default="true"
    )
    languages: Mapped[list[str]] = mapped_column(
        ARRAY(String(2)), default=lambda: ["ru", "kk"], server_default="{ru,kk}"
    )
    reminder_offsets_min: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), default=lambda: [1440, 120], server_default="{1440,120}"
    )
    notify_telegram: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    notify_sms: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    notify_email: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = created_at_column()
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    setup_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # unpaid past its grace: the business reads and exports, changes nothing (app.domain.
    # subscriptions); its clients still see and cancel their bookings
    read_only_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # bumped by triggers whenever what availability caches changes (migration 0006)
    schedule_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("business_id", "account_id", name="uq_memberships_business_account"),
        CheckConstraint("role IN ('owner', 'admin', 'master')", name="role"),
        # exactly one owner a business (migration 0019)
        Index(
            "uq_memberships_one_owner",
            "business_id",
            unique=True,
            postgresql_where="role = 'owner'",
        ),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    notify_bookings: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = created_at_column()


class Invitation(Base):
    """A person invited to a business's team by e-mail or phone (migration 0017): a single-use
    link whose secret is kept as a digest, expiring; a master's invitation names their staff
    record."""

    __tablename__ = "invitations"
    __table_args__ = (
        ForeignKeyConstraint(["business_id", "staff_id"], ["staff.business_id", "staff.id"]),
        CheckConstraint("role IN ('admin', 'master')", name="role"),
        CheckConstraint("(email IS NOT NULL) <> (phone IS NOT NULL)", name="contact"),
        CheckConstraint("phone IS NULL OR phone ~ '^\\+[1-9][0-9]{6,14}$'", name="phone_e164"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    role: Mapped[str] = mapped_column(String(10))
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
