"""The tenant (a business), who works there, and where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
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
    max_active_bookings_per_client: Mapped[int] = mapped_column(
        SmallInteger, default=3, server_default="3"
    )
    slot_step_min: Mapped[int] = mapped_column(SmallInteger, default=15, server_default="15")
    min_notice_min: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    horizon_days: Mapped[int] = mapped_column(SmallInteger, default=60, server_default="60")
    # salons usually work on public holidays; clinics and tutors switch this on
    observe_public_holidays: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="false"
    )
    reminder_offsets_min: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), default=lambda: [1440, 120], server_default="{1440,120}"
    )
    notify_telegram: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    notify_sms: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    notify_email: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = created_at_column()
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # bumped by triggers whenever what availability caches changes (migration 0006)
    schedule_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("business_id", "account_id", name="uq_memberships_business_account"),
        CheckConstraint("role IN ('owner', 'admin', 'master')", name="role"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    notify_bookings: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = created_at_column()


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
