"""What a business sells and who does it. Archived, never deleted, once bookings refer to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column, tenant_column


class Staff(Base):
    """A master: the bookable person."""

    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("business_id", "id", name="uq_staff_business_id"),)

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    account_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(120))
    title: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    sort_order: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    photo: Mapped[bytes | None] = mapped_column(LargeBinary)  # WebP (app.domain.avatars)
    created_at: Mapped[datetime] = created_at_column()
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        UniqueConstraint("business_id", "id", name="uq_services_business_id"),
        CheckConstraint("duration_min BETWEEN 5 AND 720", name="duration"),
        CheckConstraint("price_tiyn >= 0", name="price"),
        CheckConstraint("buffer_before_min BETWEEN 0 AND 240", name="buffer_before"),
        CheckConstraint("buffer_after_min BETWEEN 0 AND 240", name="buffer_after"),
        CheckConstraint("name ? 'ru'", name="name_has_ru"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    name: Mapped[dict[str, str]] = mapped_column(JSONB)  # {"ru": …, "kk": …, "en": …}
    category: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    duration_min: Mapped[int] = mapped_column(Integer)
    price_tiyn: Mapped[int] = mapped_column(BigInteger)
    buffer_before_min: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    buffer_after_min: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    sort_order: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    capacity: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StaffService(Base):
    """Who does what, with an optional own price and duration."""

    __tablename__ = "staff_services"
    __table_args__ = (
        ForeignKeyConstraint(["business_id", "staff_id"], ["staff.business_id", "staff.id"]),
        ForeignKeyConstraint(
            ["business_id", "service_id"], ["services.business_id", "services.id"]
        ),
        CheckConstraint("duration_min IS NULL OR duration_min BETWEEN 5 AND 720", name="duration"),
        CheckConstraint("price_tiyn IS NULL OR price_tiyn >= 0", name="price"),
    )

    business_id: Mapped[int] = tenant_column()
    staff_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    service_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    duration_min: Mapped[int | None] = mapped_column(Integer)
    price_tiyn: Mapped[int | None] = mapped_column(BigInteger)
