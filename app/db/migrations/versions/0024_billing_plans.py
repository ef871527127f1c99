"""Plans, subscriptions and the business's billing details (issue 16, policy 4.3, 5.3, 7.3).

- ``plans`` gains the yearly price, the features a plan unlocks, its place in the list and the
  trial length; rows are written from ``policy/plans.yml`` by ``pozapisi db upgrade``
  (``app.db.plans``), never by hand.
- ``subscriptions``: one per business (unique), its billing period (month or year), what the
  period cost (the base of proration's credit), a credit balance, the grace period's end, and
  an ordered change waiting for its invoice. A free plan has no period end.
- ``businesses.read_only_since``: unpaid past its grace, a business reads and exports but
  changes nothing (the dashboard guard, ``app.security.dashboard``); never deletion.
- ``billing_profiles``: the business as a buyer (legal name, BIN/IIN, address, VAT) — what its
  invoices name. The business's own data: row-level security by tenant, like subscriptions.
- A new business starts its trial in the same transaction that creates it (trigger
  ``businesses_trial``, functions ``pz_business_trial``, ``pz_start_trial``); the businesses that exist now start
  theirs today.

The runtime role may now change subscriptions and write billing profiles (through
``app.domain.subscriptions`` only); the worker renews, ends trials and grace periods across
businesses (policy file ``subscriptions.worker.sql``) and may set ``read_only_since`` and
nothing else on businesses.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER_ALL = (
    "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON {table} TO %I "
    "USING (true) WITH CHECK (true)', current_user); END $$"
)


def upgrade() -> None:
    op.add_column(
        "plans", sa.Column("price_year_tiyn", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column(
        "plans",
        sa.Column("features", sa.dialects.postgresql.JSONB(), server_default="[]", nullable=False),
    )
    op.add_column(
        "plans", sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "plans", sa.Column("trial_days", sa.Integer(), server_default="0", nullable=False)
    )

    op.alter_column("subscriptions", "current_period_end", nullable=True)
    for name, column in (
        ("billing_period", sa.Column("billing_period", sa.String(5), server_default="month",
                                     nullable=False)),
        ("current_period_start", sa.Column("current_period_start", sa.Date(), nullable=True)),
        ("period_price_tiyn", sa.Column("period_price_tiyn", sa.BigInteger(), server_default="0",
                                        nullable=False)),
        ("credit_tiyn", sa.Column("credit_tiyn", sa.BigInteger(), server_default="0",
                                  nullable=False)),
        ("grace_until", sa.Column("grace_until", sa.Date(), nullable=True)),
        ("open_invoice_id", sa.Column("open_invoice_id", sa.BigInteger(), nullable=True)),
        ("pending_plan_id", sa.Column("pending_plan_id", sa.BigInteger(), nullable=True)),
        ("pending_billing_period", sa.Column("pending_billing_period", sa.String(5),
                                             nullable=True)),
        ("pending_period_start", sa.Column("pending_period_start", sa.Date(), nullable=True)),
        ("reminded_on", sa.Column("reminded_on", sa.Date(), nullable=True)),
        ("updated_at", sa.Column("updated_at", sa.DateTime(timezone=True),
                                 server_default=sa.func.now(), nullable=False)),
    ):  # fmt: skip
        del name
        op.add_column("subscriptions", column)
    op.create_foreign_key(
        op.f("fk_subscriptions_pending_plan_id_plans"),
        "subscriptions",
        "plans",
        ["pending_plan_id"],
        ["id"],
    )
    op.create_check_constraint(
        op.f("ck_subscriptions_billing_period"),
        "subscriptions",
        "billing_period IN ('month', 'year')",
    )
    op.create_check_constraint(op.f("ck_subscriptions_credit"), "subscriptions", "credit_tiyn >= 0")
    op.create_unique_constraint(
        op.f("uq_subscriptions_business_id"), "subscriptions", ["business_id"]
    )

    op.add_column(
        "businesses", sa.Column("read_only_since", sa.DateTime(timezone=True), nullable=True)
    )

    op.create_table(
        "billing_profiles",
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("legal_name", sa.String(200), server_default="", nullable=False),
        sa.Column("bin_iin", sa.String(12), nullable=True),
        sa.Column("address", sa.String(300), server_default="", nullable=False),
        sa.Column("vat_payer", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_billing_profiles_business_id_businesses"),
        ),
        sa.PrimaryKeyConstraint("business_id", name=op.f("pk_billing_profiles")),
    )
    op.execute("ALTER TABLE billing_profiles ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE billing_profiles FORCE ROW LEVEL SECURITY")
    op.execute(OWNER_ALL.format(table="billing_profiles"))

    # every business has its subscription from its creation (pz_start_trial): the app updates it
    op.execute("GRANT SELECT, UPDATE ON subscriptions TO pozapisi_app")
    op.execute("GRANT SELECT, INSERT, UPDATE ON billing_profiles TO pozapisi_app")
    op.execute("GRANT SELECT, UPDATE ON subscriptions TO pozapisi_worker")
    op.execute("GRANT SELECT ON plans, billing_profiles TO pozapisi_worker")
    op.execute("GRANT UPDATE (read_only_since) ON businesses TO pozapisi_worker")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS businesses_trial ON businesses")
    op.execute("DROP FUNCTION IF EXISTS pz_business_trial()")
    op.execute("DROP FUNCTION IF EXISTS pz_start_trial(bigint)")
    op.execute("DROP FUNCTION IF EXISTS pz_plan_allows(bigint, text)")
    op.execute("DROP POLICY IF EXISTS worker ON subscriptions")
    op.execute("REVOKE UPDATE (read_only_since) ON businesses FROM pozapisi_worker")
    op.execute("REVOKE ALL ON subscriptions FROM pozapisi_app, pozapisi_worker")
    op.execute("REVOKE ALL ON plans FROM pozapisi_worker")
    op.execute("GRANT SELECT ON subscriptions TO pozapisi_app")
    op.drop_table("billing_profiles")
    op.drop_column("businesses", "read_only_since")
    op.drop_constraint(op.f("uq_subscriptions_business_id"), "subscriptions", type_="unique")
    op.drop_constraint(op.f("ck_subscriptions_credit"), "subscriptions", type_="check")
    op.drop_constraint(op.f("ck_subscriptions_billing_period"), "subscriptions", type_="check")
    op.drop_constraint(
        op.f("fk_subscriptions_pending_plan_id_plans"), "subscriptions", type_="foreignkey"
    )
    for column in (
        "updated_at", "reminded_on", "pending_period_start", "pending_billing_period",
        "pending_plan_id", "open_invoice_id", "grace_until", "credit_tiyn", "period_price_tiyn",
        "current_period_start", "billing_period",
    ):  # fmt: skip
        op.drop_column("subscriptions", column)
    op.execute("DELETE FROM subscriptions WHERE current_period_end IS NULL")
    op.alter_column("subscriptions", "current_period_end", nullable=False)
    for column in ("trial_days", "sort_order", "features", "price_year_tiyn"):
        op.drop_column("plans", column)
