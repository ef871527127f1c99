"""Notifications outbox: written in the same transaction as the change that causes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column

CHANNELS = ("telegram", "sms", "email", "auto")
STATUSES = ("pending", "sending", "sent", "failed", "cancelled")


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')", name="status"
        ),
        CheckConstraint("channel IN ('telegram', 'sms', 'email', 'auto')", name="channel"),
        Index("ix_notifications_due", "scheduled_at", postgresql_where="status = 'pending'"),
        # rows a worker claimed: the relay looks for leases that ran out (a worker died)
        Index(
            "ix_notifications_sending_lease",
            "next_attempt_at",
            postgresql_where="status = 'sending'",
        ),
    )

    id: Mapped[int] = id_column()
    # NULL for platform messages (sign-in codes, policy notices)
    business_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("businesses.id"), index=True
    )
    booking_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("bookings.id"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id"), index=True
    )
    # where to deliver when there is no account (a sign-in code to a phone or e-mail)
    address: Mapped[str | None] = mapped_column(String(254))
    event: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8), default="auto", server_default="auto")
    locale: Mapped[str] = mapped_column(String(2), default="ru", server_default="ru")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    scheduled_at: Mapped[datetime] = created_at_column()
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_channel: Mapped[str | None] = mapped_column(String(8))
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
