"""Calendar feeds (migration 0020): a master's private iCalendar address, its secret kept as a
digest, revocable; the client's phone only when the owner allows it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKeyConstraint, String, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column, tenant_column


class CalendarFeed(Base):
    __tablename__ = "calendar_feeds"
    __table_args__ = (
        ForeignKeyConstraint(["business_id", "staff_id"], ["staff.business_id", "staff.id"]),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    staff_id: Mapped[int] = mapped_column(BigInteger)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    include_phone: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    created_at: Mapped[datetime] = created_at_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
