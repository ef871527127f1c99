"""Bookings and the correspondence about them.

The database, not the application, guarantees that one master is never booked twice: an
exclusion constraint over (staff, blocked_period) for live statuses. ``blocked_period`` is the
client-visible ``period`` widened by the service's buffers. The staff key is compared as a
one-point int8range, so the constraint needs no btree_gist extension.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSTZRANGE, ExcludeConstraint, Range
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column, tenant_column

LIVE_STATUSES = ("pending", "confirmed")
STATUSES = ("pending", "confirmed", "cancelled", "completed", "no_show")
SOURCES = ("mini_app", "dashboard", "api", "walk_in")


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        ForeignKeyConstraint(["business_id", "staff_id"], ["staff.business_id", "staff.id"]),
        ForeignKeyConstraint(
            ["business_id", "service_id"], ["services.business_id", "services.id"]
        ),
        ForeignKeyConstraint(["business_id", "client_id"], ["clients.business_id", "clients.id"]),
        ExcludeConstraint(
            (text("int8range(staff_id, staff_id, '[]')"), "="),
            ("blocked_period", "&&"),
            where=text("status IN ('pending', 'confirmed')"),
            using="gist",
            name="no_double_booking",
        ),
        CheckConstraint(
            "status IN ('pending', 'confirmed', 'cancelled', 'completed', 'no_show')", name="status"
        ),
        CheckConstraint("source IN ('mini_app', 'dashboard', 'api', 'walk_in')", name="source"),
        CheckConstraint("NOT isempty(period) AND blocked_period @> period", name="periods"),
        CheckConstraint(  # what the schedule read's index range relies on (migration 0006)
            "upper(blocked_period) - lower(blocked_period) <= interval '1 day'",
            name="blocked_span",
        ),
        CheckConstraint(
            "status <> 'pending' OR pending_expires_at IS NOT NULL", name="pending_ttl"
        ),
        # ranges on starts_at, a plain column: row-level security hides ranges on lower(period)
        # from the planner (lower() is not leakproof), see migration 0007
        Index("ix_bookings_business_starts", "business_id", "starts_at"),
        Index("ix_bookings_staff_starts", "staff_id", "starts_at"),
        Index(
            "uq_bookings_idempotency",
            "account_id",
            "idempotency_key",
            unique=True,
            postgresql_where="idempotency_key IS NOT NULL",
        ),
        # the expiry job's question every minute: which waiting bookings are past their time
        Index(
            "ix_bookings_pending_expires_at",
            "pending_expires_at",
            postgresql_where="status = 'pending'",
        ),
        # the dashboard's badge of bookings waiting for confirmation (app.domain.live)
        Index(
            "ix_bookings_business_pending",
            "business_id",
            "staff_id",
            postgresql_where="status = 'pending'",
        ),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column(index=False)  # ix_bookings_business_starts leads
    public_code: Mapped[str] = mapped_column(String(16), unique=True)
    client_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # the signed-in person who booked, so they can see their bookings in every business
    account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id"), index=True
    )
    staff_id: Mapped[int] = mapped_column(BigInteger)
    service_id: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
    blocked_period: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
    starts_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), Computed("lower(period)", persisted=True)
    )
    status: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(10))
    pending_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # a snapshot of the service as booked: later price or name changes do not rewrite history
    service_name: Mapped[dict[str, Any]] = mapped_column(JSONB)
    duration_min: Mapped[int] = mapped_column(Integer)
    price_tiyn: Mapped[int] = mapped_column(BigInteger)
    comment: Mapped[str | None] = mapped_column(String(500))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    cancelled_by: Mapped[str | None] = mapped_column(String(10))
    idempotency_key: Mapped[str | None] = mapped_column(String(80))
    rescheduled_from_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("bookings.id"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        ForeignKeyConstraint(["business_id", "client_id"], ["clients.business_id", "clients.id"]),
        CheckConstraint("sender IN ('client', 'business')", name="sender"),
        CheckConstraint("length(body) BETWEEN 1 AND 2000", name="body"),
        # the dashboard's badge of unread client messages (app.domain.live)
        Index(
            "ix_messages_business_unread",
            "business_id",
            postgresql_where="sender = 'client' AND read_at IS NULL",
        ),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    client_id: Mapped[int] = mapped_column(BigInteger, index=True)
    booking_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("bookings.id"), index=True
    )
    sender: Mapped[str] = mapped_column(String(8))
    author_account_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
