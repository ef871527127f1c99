"""The operator console ``/ops/`` (policy 5.4, 6.3, 8.6).

- ``operators``: an account that is PoZapisi staff, with a role (support, privacy, admin), a
  TOTP secret sealed with a key derived from ``SECRET_KEY`` and the last time-step a code was
  accepted for (a code works once). The runtime role may read the role of the operator it acts
  for and nothing else of the table; the secret comes out only through
  ``pz_operator_totp_secret`` and a step is spent through ``pz_operator_totp_use``.
- ``operator_recovery_codes``: single-use codes, as sha256 digests, spent only through
  ``pz_operator_recovery_spend``; no runtime role has a privilege on the table.
- ``lawful_disclosures``: what was handed to an authority about a person, on what legal basis
  and reference, when, by whom, the digest of the file produced; ``withheld`` (with a reason)
  when the law forbids telling the person, else their copy of their data lists it.
- ``data_requests`` gains ``requester`` (who wrote, for a request logged from a letter or a
  call) and ``handled_by`` (the operator), and an index on ``due_on`` for the queue. Policies
  ``data_requests.operator`` and ``lawful_disclosures.*`` open them to operators
  (``pz_is_operator``); an operator's read of a person goes through ``pz_ops_person``, which
  returns no hash, code or token; the daily reminder is ``pz_ops_requests_due`` (worker).
- ``pz_security_event`` also records the console's sign-ins and failed ones (``ops.sign_in``,
  ``ops.sign_in_failed``); going down restores the version without them.

Functions and policies come from app/db/sql; going down drops them with the tables and
columns, so a database taken back is the one revision 0021 built.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER_ALL = (
    "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON {table} TO %I "
    "USING (true) WITH CHECK (true)', current_user); END $$"
)
TABLES = ("operators", "operator_recovery_codes", "lawful_disclosures")


def _timestamp(name: str, *, now: bool = False) -> sa.Column:
    if now:
        return sa.Column(
            name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        )
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        _timestamp("created_at", now=True),
        _timestamp("disabled_at"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_operators")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_operators_account_id_accounts")
        ),
        sa.CheckConstraint(
            "role IN ('support', 'privacy', 'admin')", name=op.f("ck_operators_role")
        ),
    )
    op.create_table(
        "operator_recovery_codes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        _timestamp("used_at"),
        _timestamp("created_at", now=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_operator_recovery_codes_code_hash")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["operators.account_id"],
            name=op.f("fk_operator_recovery_codes_account_id_operators"),
        ),
    )
    op.create_index(
        op.f("ix_operator_recovery_codes_account_id"), "operator_recovery_codes", ["account_id"]
    )
    op.add_column("data_requests", sa.Column("requester", sa.String(length=254), nullable=True))
    op.add_column("data_requests", sa.Column("handled_by", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_data_requests_handled_by_accounts"),
        "data_requests",
        "accounts",
        ["handled_by"],
        ["id"],
    )
    op.create_index(op.f("ix_data_requests_due_on"), "data_requests", ["due_on"])
    op.create_table(
        "lawful_disclosures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("data_request_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("legal_basis", sa.String(length=300), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("data_given", sa.Text(), nullable=False),
        sa.Column("disclosed_on", sa.Date(), nullable=False),
        sa.Column("withheld", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("withheld_reason", sa.Text(), nullable=True),
        sa.Column("export_sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.BigInteger(), nullable=False),
        _timestamp("created_at", now=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lawful_disclosures")),
        sa.UniqueConstraint("data_request_id", name=op.f("uq_lawful_disclosures_data_request_id")),
        sa.ForeignKeyConstraint(
            ["data_request_id"],
            ["data_requests.id"],
            name=op.f("fk_lawful_disclosures_data_request_id_data_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_lawful_disclosures_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["accounts.id"],
            name=op.f("fk_lawful_disclosures_recorded_by_accounts"),
        ),
        sa.CheckConstraint(
            "NOT withheld OR length(withheld_reason) > 0",
            name=op.f("ck_lawful_disclosures_withheld_has_reason"),
        ),
    )
    op.create_index(op.f("ix_lawful_disclosures_account_id"), "lawful_disclosures", ["account_id"])
    for table in TABLES:
        op.execute(f"REVOKE ALL ON {table} FROM PUBLIC, pozapisi_app, pozapisi_worker")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(OWNER_ALL.format(table=table))
    # the role of the operator acting, never the sealed secret nor the last step
    op.execute(
        "GRANT SELECT (account_id, role, created_at, disabled_at) ON operators TO pozapisi_app"
    )
    op.execute("GRANT SELECT, INSERT ON lawful_disclosures TO pozapisi_app")


# pz_security_event as 0021 left it (without the console's sign-in events), for the way back;
# CREATE OR REPLACE keeps the function's privileges
SECURITY_EVENT_0021 = """
CREATE OR REPLACE FUNCTION pz_security_event(p_event text, p_account_id bigint, p_ip inet,
                                             p_user_agent text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF p_event IS NULL OR p_event NOT IN (
       'dashboard.sign_in', 'dashboard.sign_in_failed', 'dashboard.sign_in_code',
       'dashboard.sign_up', 'password.reset_requested', 'password.reset', 'password.changed',
       'email.verified', 'email.change_requested', 'email.changed', 'phone.changed') THEN
    RAISE EXCEPTION 'pz_security_event: unknown event %', p_event
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_account_id IS DISTINCT FROM app_account_id()
     AND p_event NOT IN ('dashboard.sign_in', 'dashboard.sign_in_failed',
                         'dashboard.sign_in_code', 'password.reset_requested',
                         'password.reset', 'email.verified', 'email.changed') THEN
    RAISE EXCEPTION 'pz_security_event: % is recorded by the signed-in account', p_event
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  INSERT INTO security_events (account_id, event, ip, user_agent)
  VALUES (p_account_id, p_event, p_ip, left(p_user_agent, 400));
END $$
"""

FUNCTIONS = (
    "pz_ops_requests_due(date, date, timestamptz)",
    "pz_ops_contact(bigint)",
    "pz_operator_names()",
    "pz_ops_person(text, text)",
    "pz_operator_recovery_spend(bigint, text)",
    "pz_operator_totp_use(bigint, bigint)",
    "pz_operator_totp_secret(bigint)",
)


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS operator ON data_requests")
    op.drop_table("lawful_disclosures")
    op.drop_index(op.f("ix_data_requests_due_on"), table_name="data_requests")
    op.drop_constraint(
        op.f("fk_data_requests_handled_by_accounts"), "data_requests", type_="foreignkey"
    )
    op.drop_column("data_requests", "handled_by")
    op.drop_column("data_requests", "requester")
    op.drop_table("operator_recovery_codes")
    op.drop_table("operators")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    # after the policies that call it are gone with their tables
    op.execute("DROP FUNCTION IF EXISTS pz_is_operator(text[])")
    op.execute(SECURITY_EVENT_0021)
