"""What businesses pay PoZapisi. Invoices and payments are financial documents: kept 5 years."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, DateTime, ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column, tenant_column


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = id_column()
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[dict[str, str]] = mapped_column(JSONB)
    price_tiyn: Mapped[int] = mapped_column(BigInteger)
    max_staff: Mapped[int | None] = mapped_column(Integer)


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("status IN ('trial', 'active', 'past_due', 'cancelled')", name="status"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    plan_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("plans.id"))
    status: Mapped[str] = mapped_column(String(10))
    current_period_end: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = created_at_column()


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
