"""What businesses pay PoZapisi. Invoices and payments are financial documents: kept 5 years."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
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
    """An invoice or a credit note as issued (app.domain.invoices): never changed but for its
    status (trigger ``invoices_issued_immutable``), numbered gap-free per year."""

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'paid', 'void', 'refunded', 'credit')", name="status"),
        CheckConstraint("retain_until >= issued_on + 1826", name="retention_5_years"),
        CheckConstraint("kind IN ('invoice', 'credit_note')", name="kind"),
        CheckConstraint(
            "(kind = 'credit_note') = (credits_invoice_id IS NOT NULL)",
            name="credit_note_names_invoice",
        ),
        CheckConstraint(
            "(kind = 'invoice' AND amount_tiyn > 0) OR (kind = 'credit_note' AND amount_tiyn < 0)",
            name="sign_of_kind",
        ),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    subscription_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("subscriptions.id"))
    number: Mapped[str] = mapped_column(String(30), unique=True)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)  # the total, VAT included
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))
    retain_until: Mapped[date] = mapped_column(Date)  # tax law: 5 years (policy 7.3)
    kind: Mapped[str] = mapped_column(String(12), server_default="invoice")
    credits_invoice_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("invoices.id"), index=True
    )
    currency: Mapped[str] = mapped_column(String(3), server_default="KZT")
    seller: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    buyer: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    vat_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))  # None: "Без НДС"
    subtotal_tiyn: Mapped[int] = mapped_column(BigInteger, server_default="0")
    vat_tiyn: Mapped[int] = mapped_column(BigInteger, server_default="0")
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)  # a credit note's
    issued_at: Mapped[datetime] = created_at_column()


class InvoiceCounter(Base):
    """The last invoice number of a year (only ``pz_invoice_issue`` writes it)."""

    __tablename__ = "invoice_counters"
    __table_args__ = (CheckConstraint("last_number BETWEEN 1 AND 999999", name="number_range"),)

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer)


class Payment(Base):
    """One provider transaction as the provider reported it (app.domain.payments): a payment
    or a refund, completed or declined; ``flag`` set when it did not match the invoice."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("retain_until >= paid_at::date + 1826", name="retention_5_years"),
        CheckConstraint("kind IN ('payment', 'refund')", name="kind"),
        CheckConstraint("status IN ('completed', 'declined')", name="status"),
        CheckConstraint("amount_tiyn > 0", name="amount_positive"),
        UniqueConstraint("provider", "provider_ref", name="uq_payments_provider_ref"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    invoice_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("invoices.id"), index=True)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str] = mapped_column(String(30))
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    paid_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the provider's time
    retain_until: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8), server_default="payment")
    status: Mapped[str] = mapped_column(String(10), server_default="completed")
    currency: Mapped[str] = mapped_column(String(3), server_default="KZT")
    parent_ref: Mapped[str | None] = mapped_column(String(100))  # a refund's payment
    flag: Mapped[str | None] = mapped_column(String(30))  # for an operator: not accepted
    reason: Mapped[str | None] = mapped_column(String(100))  # a decline's, as the provider said
    received_at: Mapped[datetime] = created_at_column()


class PaymentOrder(Base):
    """A hosted payment page the provider made for an invoice (reused when paying again)."""

    __tablename__ = "payment_orders"
    __table_args__ = (
        UniqueConstraint("provider", "order_ref", name="uq_payment_orders_provider_ref"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    invoice_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("invoices.id"), index=True)
    provider: Mapped[str] = mapped_column(String(30))
    order_ref: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = created_at_column()
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
