"""What businesses pay PoZapisi. Invoices and payments are financial documents: kept 5 years."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column, tenant_column


class Plan(Base):
    """A plan as ``policy/plans.yml`` defines it (synced at ``db upgrade``; app.db.plans)."""

    __tablename__ = "plans"

    id: Mapped[int] = id_column()
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[dict[str, str]] = mapped_column(JSONB)
    price_tiyn: Mapped[int] = mapped_column(BigInteger)  # a month
    max_staff: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    price_year_tiyn: Mapped[int] = mapped_column(BigInteger, server_default="0")
    features: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    sort_order: Mapped[int] = mapped_column(Integer, server_default="0")
    trial_days: Mapped[int] = mapped_column(Integer, server_default="0")  # > 0: the trial plan


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("status IN ('trial', 'active', 'past_due', 'cancelled')", name="status"),
        CheckConstraint("billing_period IN ('month', 'year')", name="billing_period"),
        CheckConstraint("credit_tiyn >= 0", name="credit"),
        UniqueConstraint("business_id"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    plan_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("plans.id"))
    status: Mapped[str] = mapped_column(String(10))
    current_period_end: Mapped[date | None] = mapped_column(Date)  # None: free, no end
    created_at: Mapped[datetime] = created_at_column()
    # app.domain.subscriptions: one subscription per business, its period and what it cost
    billing_period: Mapped[str] = mapped_column(String(5), server_default="month")
    current_period_start: Mapped[date | None] = mapped_column(Date)
    period_price_tiyn: Mapped[int] = mapped_column(BigInteger, server_default="0")
    credit_tiyn: Mapped[int] = mapped_column(BigInteger, server_default="0")
    grace_until: Mapped[date | None] = mapped_column(Date)
    # an ordered change waiting for its invoice to be paid, or the renewal's invoice
    open_invoice_id: Mapped[int | None] = mapped_column(BigInteger)
    pending_plan_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("plans.id"))
    pending_billing_period: Mapped[str | None] = mapped_column(String(5))
    pending_period_start: Mapped[date | None] = mapped_column(Date)
    reminded_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'paid', 'void')", name="status"),
        CheckConstraint("retain_until >= issued_on + 1826", name="retention_5_years"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    subscription_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("subscriptions.id"))
    number: Mapped[str] = mapped_column(String(30), unique=True)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(6))
    retain_until: Mapped[date] = mapped_column(Date)  # tax law: 5 years (policy 7.3)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("retain_until >= paid_at::date + 1826", name="retention_5_years"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    invoice_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("invoices.id"), index=True)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str] = mapped_column(String(30))
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    paid_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retain_until: Mapped[date] = mapped_column(Date)


class BillingProfile(Base):
    """The business as a buyer: what its invoices name (part of the invoice once issued)."""

    __tablename__ = "billing_profiles"

    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id"), primary_key=True
    )
    legal_name: Mapped[str] = mapped_column(String(200), server_default="")
    bin_iin: Mapped[str | None] = mapped_column(String(12))
    address: Mapped[str] = mapped_column(String(300), server_default="")
    vat_payer: Mapped[bool] = mapped_column(Boolean, server_default="false")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
