"""The business side's tables and columns: dashboard sessions pick a business, single-use
e-mail links (verification, password reset, e-mail change), team invitations, and the rules and
profile a business sets in its dashboard.

- ``sessions.chosen_business_id``: the business a dashboard session is working in (one person may be a
  member of several); the guard checks the membership on every request, so the column only
  chooses, it never grants.
- ``account_tokens``: a link sent by e-mail (``purpose`` ``verify_email``, ``reset_password``,
  ``change_email``), kept as the SHA-256 of its secret, single use, expiring. Row-level
  security forced and no privilege for the runtime roles: issued and spent only through
  SECURITY DEFINER functions (``app/db/sql/functions/pz_token_*.sql``).
- ``invitations``: a business invites a person by e-mail or phone to a role (and, for a master,
  to their staff record); tenant-scoped like every business table, the link's secret kept as a
  digest. Accepting happens before the invitee acts for the business, through
  ``pz_invitation_*`` functions.
- ``businesses``: a reschedule deadline apart from the cancel deadline, the languages the
  business serves in, when its set-up was finished; public holidays are observed by default
  from now on (new businesses; existing rows keep their choice).
- ``staff.photo``: a master's photo (WebP, made by ``app.domain.avatars``).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER_ALL = (
    "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON {table} TO %I "
    "USING (true) WITH CHECK (true)', current_user); END $$"
)


def upgrade() -> None:
    op.add_column(
        "sessions",
        sa.Column(
            "chosen_business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=True
        ),
    )

    op.add_column(
        "businesses",
        sa.Column("reschedule_deadline_min", sa.Integer(), server_default="120", nullable=False),
    )
    op.add_column(
        "businesses",
        sa.Column(
            "languages",
            postgresql.ARRAY(sa.String(length=2)),
            server_default="{ru,kk}",
            nullable=False,
        ),
    )
    op.add_column(
        "businesses", sa.Column("setup_done_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.alter_column("businesses", "observe_public_holidays", server_default="true")
    op.create_check_constraint(
        "reschedule_deadline", "businesses", "reschedule_deadline_min BETWEEN 0 AND 10080"
    )
    op.create_check_constraint(
        "languages", "businesses", "languages <@ ARRAY['ru', 'kk', 'en']::varchar[]"
    )

    op.add_column("staff", sa.Column("photo", sa.LargeBinary(), nullable=True))

    op.create_table(
        "account_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=254), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
        sa.CheckConstraint(
            "purpose IN ('verify_email', 'reset_password', 'change_email')",
            name=op.f("ck_account_tokens_purpose"),
        ),
    )
    op.create_index(op.f("ix_account_tokens_account_id"), "account_tokens", ["account_id"])
    op.execute("REVOKE ALL ON account_tokens FROM PUBLIC, pozapisi_app, pozapisi_worker")
    op.execute("GRANT SELECT (id, expires_at), DELETE ON account_tokens TO pozapisi_worker")
    op.execute("ALTER TABLE account_tokens ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE account_tokens FORCE ROW LEVEL SECURITY")
    op.execute(OWNER_ALL.format(table="account_tokens"))

    op.create_table(
        "invitations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
        sa.ForeignKeyConstraint(
            ["business_id", "staff_id"],
            ["staff.business_id", "staff.id"],
            name=op.f("fk_invitations_business_id_staff"),
        ),
        sa.CheckConstraint("role IN ('admin', 'master')", name=op.f("ck_invitations_role")),
        sa.CheckConstraint(
            "(email IS NOT NULL) <> (phone IS NOT NULL)", name=op.f("ck_invitations_contact")
        ),
        sa.CheckConstraint(
            "phone IS NULL OR phone ~ '^\\+[1-9][0-9]{6,14}$'",
            name=op.f("ck_invitations_phone_e164"),
        ),
    )
    op.create_index(op.f("ix_invitations_business_id"), "invitations", ["business_id"])
    op.execute("GRANT SELECT, INSERT, UPDATE ON invitations TO pozapisi_app")
    op.execute("GRANT SELECT ON invitations TO pozapisi_worker")
    op.execute("ALTER TABLE invitations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE invitations FORCE ROW LEVEL SECURITY")
    op.execute(OWNER_ALL.format(table="invitations"))


# the functions of app/db/sql that come with these tables (dashboard accounts): a downgrade
# drops them with the tables they use, so the database is the one 0016 built
ACCOUNT_FUNCTIONS = (
    "pz_signup(text, text, text, text, text)",
    "pz_signup_business(text, text)",
    "pz_password_for_email(text)",
    "pz_password_set(text, text)",
    "pz_token_issue(text, text, text)",
    "pz_token_valid(text, text)",
    "pz_token_spend(text, text)",
    "pz_security_event(text, bigint, inet, text)",
)
# and those of the team (app.domain.team): invitations accepted, the owner's list of members
TEAM_FUNCTIONS = (
    "pz_invitation_preview(text)",
    "pz_invitation_accept(text, bigint, text, text, text)",
    "pz_team_members(bigint)",
)


def downgrade() -> None:
    for signature in (*ACCOUNT_FUNCTIONS, *TEAM_FUNCTIONS):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.drop_table("invitations")
    op.drop_table("account_tokens")
    op.drop_column("staff", "photo")
    op.drop_constraint("languages", "businesses", type_="check")
    op.drop_constraint("reschedule_deadline", "businesses", type_="check")
    op.alter_column("businesses", "observe_public_holidays", server_default="false")
    op.drop_column("businesses", "setup_done_at")
    op.drop_column("businesses", "languages")
    op.drop_column("businesses", "reschedule_deadline_min")
    op.drop_column("sessions", "chosen_business_id")
