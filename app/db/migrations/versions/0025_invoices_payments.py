"""Invoices and payments (issue 16, policy 4.3, 5.3, 7.3).

- ``invoices`` become documents: the seller's and buyer's details, lines, VAT and totals as
  they were when issued (snapshots: a later change of the business's details never rewrites an
  issued invoice), a kind (an invoice or a credit note, which is negative, carries its own
  number and names the invoice it corrects), the currency and the period billed. Numbers are
  ``YYYY-NNNNNN``, gap-free per calendar year: ``invoice_counters`` holds one row per year,
  advanced by ``pz_invoice_issue`` in the invoice's own transaction (a row lock held to the
  commit, so concurrent issuances queue and a rolled-back one gives its number back — a
  sequence would leave gaps). The app never inserts an invoice itself: it calls
  ``pz_invoice_issue``; it may change only ``status``, and the trigger
  ``invoices_issued_immutable`` refuses any change of an issued field and any deletion before
  ``retain_until``, whoever tries.
- ``payments`` hold what the payment provider reported, one row per provider transaction
  (``UNIQUE (provider, provider_ref)``: the same notification twice is one row): a payment or
  a refund (``parent_ref`` names the payment refunded), completed or declined, its currency,
  and a ``flag`` for an operator when it did not match the invoice (amount, currency, an
  invoice no longer open) — a flagged payment never settles an invoice.
- ``payment_orders``: the provider's hosted payment page made for an invoice (its reference
  and address), so paying again reuses it.
- ``pz_purge_financial`` also removes orders and keeps an invoice while a credit note that
  names it is kept.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER_ALL = (
    "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON {table} TO %I "
    "USING (true) WITH CHECK (true)', current_user); END $$"
)


def upgrade() -> None:
    # invoices: the document itself
    op.drop_constraint(op.f("ck_invoices_status"), "invoices", type_="check")
    op.alter_column("invoices", "status", type_=sa.String(10), existing_nullable=False)
    op.create_check_constraint(
        op.f("ck_invoices_status"),
        "invoices",
        "status IN ('open', 'paid', 'void', 'refunded', 'credit')",
    )
    op.add_column(
        "invoices",
        sa.Column("kind", sa.String(12), server_default="invoice", nullable=False),
    )
    op.add_column(
        "invoices",
        sa.Column(
            "credits_invoice_id",
            sa.BigInteger(),
            sa.ForeignKey("invoices.id", name=op.f("fk_invoices_credits_invoice_id_invoices")),
            nullable=True,
        ),
    )
    op.add_column(
        "invoices", sa.Column("currency", sa.String(3), server_default="KZT", nullable=False)
    )
    for name, default in (("seller", "{}"), ("buyer", "{}"), ("lines", "[]")):
        op.add_column(
            "invoices",
            sa.Column(name, JSONB(), server_default=sa.text(f"'{default}'::jsonb"), nullable=False),
        )
    op.add_column("invoices", sa.Column("vat_rate", sa.Numeric(5, 2), nullable=True))
    op.add_column(
        "invoices", sa.Column("subtotal_tiyn", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column(
        "invoices", sa.Column("vat_tiyn", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column("invoices", sa.Column("period_start", sa.Date(), nullable=True))
    op.add_column("invoices", sa.Column("period_end", sa.Date(), nullable=True))
    op.add_column("invoices", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column(
        "invoices",
        sa.Column(
            "issued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_check_constraint(
        op.f("ck_invoices_kind"), "invoices", "kind IN ('invoice', 'credit_note')"
    )
    op.create_check_constraint(
        op.f("ck_invoices_credit_note_names_invoice"),
        "invoices",
        "(kind = 'credit_note') = (credits_invoice_id IS NOT NULL)",
    )
    op.create_check_constraint(
        op.f("ck_invoices_sign_of_kind"),
        "invoices",
        "(kind = 'invoice' AND amount_tiyn > 0) OR (kind = 'credit_note' AND amount_tiyn < 0)",
    )
    op.create_index(op.f("ix_invoices_credits_invoice_id"), "invoices", ["credits_invoice_id"])

    op.create_table(
        "invoice_counters",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_invoice_counters")),
        sa.CheckConstraint(
            "last_number BETWEEN 1 AND 999999", name=op.f("ck_invoice_counters_number_range")
        ),
    )
    # platform bookkeeping: only pz_invoice_issue (SECURITY DEFINER) touches it
    op.execute("REVOKE ALL ON invoice_counters FROM pozapisi_app, pozapisi_worker")

    # payments: what the provider reported
    op.add_column(
        "payments", sa.Column("kind", sa.String(8), server_default="payment", nullable=False)
    )
    op.add_column(
        "payments", sa.Column("status", sa.String(10), server_default="completed", nullable=False)
    )
    op.add_column(
        "payments", sa.Column("currency", sa.String(3), server_default="KZT", nullable=False)
    )
    op.add_column("payments", sa.Column("parent_ref", sa.String(100), nullable=True))
    op.add_column("payments", sa.Column("flag", sa.String(30), nullable=True))
    op.add_column("payments", sa.Column("reason", sa.String(100), nullable=True))
    op.add_column(
        "payments",
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_check_constraint(
        op.f("ck_payments_kind"), "payments", "kind IN ('payment', 'refund')"
    )
    op.create_check_constraint(
        op.f("ck_payments_status"), "payments", "status IN ('completed', 'declined')"
    )
    op.create_check_constraint(op.f("ck_payments_amount_positive"), "payments", "amount_tiyn > 0")
    op.create_unique_constraint(
        op.f("uq_payments_provider_ref"), "payments", ["provider", "provider_ref"]
    )

    op.create_table(
        "payment_orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "business_id",
            sa.BigInteger(),
            sa.ForeignKey("businesses.id", name=op.f("fk_payment_orders_business_id_businesses")),
            nullable=False,
        ),
        sa.Column(
            "invoice_id",
            sa.BigInteger(),
            sa.ForeignKey("invoices.id", name=op.f("fk_payment_orders_invoice_id_invoices")),
            nullable=False,
        ),
        sa.Column("provider", sa.String(30), nullable=False),
        sa.Column("order_ref", sa.String(100), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("amount_tiyn", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("retain_until", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_orders")),
        sa.UniqueConstraint("provider", "order_ref", name=op.f("uq_payment_orders_provider_ref")),
    )
    op.create_index(op.f("ix_payment_orders_business_id"), "payment_orders", ["business_id"])
    op.create_index(op.f("ix_payment_orders_invoice_id"), "payment_orders", ["invoice_id"])

    # the app reads invoices and may move only their status (issuing: pz_invoice_issue);
    # it records what the provider reports and the orders it makes
    op.execute("GRANT UPDATE (status) ON invoices TO pozapisi_app")
    op.execute("GRANT SELECT, INSERT, UPDATE ON payments TO pozapisi_app")
    op.execute("GRANT SELECT, INSERT ON payment_orders TO pozapisi_app")
    op.execute("ALTER TABLE payment_orders ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE payment_orders FORCE ROW LEVEL SECURITY")
    op.execute(OWNER_ALL.format(table="payment_orders"))


# pz_purge_financial as it was before this revision (its file now also removes payment
# orders and keeps an invoice a kept credit note names); a downgrade puts it back
PURGE_FINANCIAL_AT_0024 = """
CREATE OR REPLACE FUNCTION pz_purge_financial(p_today date) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_today date := least(p_today, current_date);
  v_payments integer;
  v_invoices integer;
BEGIN
  DELETE FROM payments WHERE retain_until < v_today;
  GET DIAGNOSTICS v_payments = ROW_COUNT;
  DELETE FROM invoices i WHERE i.retain_until < v_today
     AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = i.id);
  GET DIAGNOSTICS v_invoices = ROW_COUNT;
  RETURN jsonb_build_object('payments', v_payments, 'invoices', v_invoices);
END $$;
"""


FUNCTIONS = (
    "pz_invoice_issue(bigint, bigint, text, bigint, date, date, text, jsonb, jsonb, jsonb, "
    "numeric, date, date, text)",
    "pz_invoice_for_payment(text)",
    "pz_invoice_immutable()",
)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS invoices_issued_immutable ON invoices")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute(PURGE_FINANCIAL_AT_0024)
    op.execute("REVOKE UPDATE (status) ON invoices FROM pozapisi_app")
    op.execute("REVOKE INSERT, UPDATE ON payments FROM pozapisi_app")
    op.drop_table("payment_orders")
    op.drop_constraint(op.f("uq_payments_provider_ref"), "payments", type_="unique")
    for name in ("kind", "status", "amount_positive"):
        op.drop_constraint(op.f(f"ck_payments_{name}"), "payments", type_="check")
    for column in ("received_at", "reason", "flag", "parent_ref", "currency", "status", "kind"):
        op.drop_column("payments", column)
    op.drop_table("invoice_counters")
    op.drop_index(op.f("ix_invoices_credits_invoice_id"), table_name="invoices")
    for name in ("sign_of_kind", "credit_note_names_invoice", "kind", "status"):
        op.drop_constraint(op.f(f"ck_invoices_{name}"), "invoices", type_="check")
    for column in (
        "issued_at", "reason", "period_end", "period_start", "vat_tiyn", "subtotal_tiyn",
        "vat_rate", "lines", "buyer", "seller", "currency", "credits_invoice_id", "kind",
    ):  # fmt: skip
        op.drop_column("invoices", column)
    op.alter_column("invoices", "status", type_=sa.String(6), existing_nullable=False)
    op.create_check_constraint(
        op.f("ck_invoices_status"), "invoices", "status IN ('open', 'paid', 'void')"
    )
