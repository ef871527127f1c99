"""Policy-change notices (policy 11.1) and published policy versions that cannot change.

- ``policy_versions.summary``: what changed, per language, from ``policy/versions.yml``; the
  notice quotes it.
- ``policy_notices``: one row per person, material version and channel a notice was queued
  on. Its primary key is what makes "once per person, version and channel" true in the
  database itself: two workers fanning out the same version at the same time both try the
  same rows, and the second waits on the first's key and then inserts nothing. The row also
  outlives the outbox row it caused, so it stays the record that the person was told.
- ``policy_announcements``: one row per material version being announced, with the keyset
  cursor of the fan-out (every account up to ``after_account_id`` has been considered), so a
  run resumes where the last one stopped and, until the version takes effect, only people who
  joined since are looked at.
- ``pz_notification_blocked`` and ``pz_consent_withdrawal`` let the notice through to a person
  who withdrew consent (a legal notice, not a service needing consent); going down restores
  them as 0022 had them.
- ``pz_policy_notice_batch`` (app/db/sql) queues one batch; the trigger
  ``policy_versions_published_immutable`` (function ``pz_policy_version_immutable``) refuses to
  change or delete a version once it is published.

Neither new table is read or written by the runtime roles directly: the SECURITY DEFINER
function writes them, the worker reads the cursor. Row-level security is forced, with the
owner's policy, like every table since 0016.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER_ALL = (
    "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON {table} TO %I "
    "USING (true) WITH CHECK (true)', current_user); END $$"
)
FUNCTIONS = ("pz_policy_notice_batch(text, date, timestamptz, integer)",
             "pz_policy_version_immutable()")  # fmt: skip

# as revision 0022 had them (the files' text before this revision let the notice of a policy
# change through the withdrawal gate)
NOTIFICATION_BLOCKED_0022 = r"""
CREATE OR REPLACE FUNCTION pz_notification_blocked(p_account_id bigint, p_event text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF p_account_id IS NULL OR p_event = ANY (ARRAY['otp.code', 'account.verify_email',
       'account.change_email', 'account.reset_password', 'account.deleted']) THEN
    RETURN false;
  END IF;
  RETURN coalesce((SELECT c.action = 'withdrawn' FROM consents c
                    WHERE c.account_id = p_account_id ORDER BY c.id DESC LIMIT 1), false);
END $$
"""
CONSENT_WITHDRAWAL_0022 = r"""
CREATE OR REPLACE FUNCTION pz_consent_withdrawal(p_account_id bigint, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_prev_business text := current_setting('app.business_id', true);
  v_contacts text[];
  v_row record;
  v_cancelled integer := 0;
  v_stopped integer;
BEGIN
  IF p_account_id IS NULL OR p_account_id IS DISTINCT FROM app_account_id() THEN
    RAISE EXCEPTION 'pz_consent_withdrawal: an account can withdraw only its own consent'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT pz_notification_blocked(p_account_id, 'booking.reminder') THEN
    RAISE EXCEPTION 'pz_consent_withdrawal: the withdrawal is not recorded'
      USING ERRCODE = 'invalid_transaction_state';
  END IF;
  SELECT array_remove(ARRAY[a.phone, lower(a.email), a.telegram_id::text], NULL)
    INTO v_contacts FROM accounts a WHERE a.id = p_account_id AND a.deleted_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pz_consent_withdrawal: no such account' USING ERRCODE = 'no_data_found';
  END IF;

  -- nothing more goes out to them: to their account, or to one of their addresses
  UPDATE notifications
     SET status = 'cancelled', last_error = 'consent withdrawn', next_attempt_at = NULL
   WHERE status = 'pending'
     AND (account_id = p_account_id OR lower(address) = ANY (v_contacts));
  GET DIAGNOSTICS v_stopped = ROW_COUNT;

  -- future visits are cancelled; each business sees it on its chain and is told
  FOR v_row IN
    WITH target AS (
      SELECT b.id, b.status AS old_status FROM bookings b
       WHERE b.account_id = p_account_id AND b.status = ANY (pz_live_statuses())
         AND b.starts_at > p_now
       FOR UPDATE
    )
    UPDATE bookings b
       SET status = 'cancelled', cancelled_by = 'client', cancel_reason = 'consent withdrawn',
           pending_expires_at = NULL, updated_at = p_now
      FROM target t WHERE b.id = t.id
    RETURNING b.id, b.business_id, b.staff_id, b.service_id, b.public_code, b.period,
              b.price_tiyn, t.old_status
  LOOP
    v_cancelled := v_cancelled + 1;
    UPDATE notifications SET status = 'cancelled', last_error = 'booking cancelled'
     WHERE booking_id = v_row.id AND status = 'pending';
    PERFORM set_config('app.business_id', v_row.business_id::text, true);
    PERFORM audit_append(v_row.business_id, p_account_id, 'client', 'booking.cancelled',
      'booking', v_row.id,
      jsonb_build_object('status', v_row.old_status, 'staff_id', v_row.staff_id,
        'service_id', v_row.service_id, 'start', lower(v_row.period),
        'end', upper(v_row.period), 'price_tiyn', v_row.price_tiyn),
      jsonb_build_object('status', 'cancelled', 'reason', 'consent withdrawn',
        'staff_id', v_row.staff_id, 'service_id', v_row.service_id,
        'start', lower(v_row.period), 'end', upper(v_row.period),
        'price_tiyn', v_row.price_tiyn),
      NULL, NULL, NULL);
    -- the business's people are told, as of any cancellation (pz_booking_recipients)
    INSERT INTO notifications (business_id, booking_id, account_id, event, channel, locale,
                               payload, idempotency_key, scheduled_at)
    SELECT v_row.business_id, v_row.id, r.account_id, 'staff.booking.cancelled', 'auto',
           r.locale, jsonb_build_object('code', v_row.public_code, 'by', 'client'),
           pz_notification_key('staff.booking.cancelled', v_row.id, 'auto', r.account_id, NULL,
                               p_now),
           p_now
      FROM pz_booking_recipients(v_row.business_id, v_row.staff_id) r
     WHERE r.account_id <> p_account_id
    ON CONFLICT (idempotency_key) DO NOTHING;
  END LOOP;
  PERFORM set_config('app.business_id', coalesce(v_prev_business, ''), true);

  RETURN jsonb_build_object('bookings_cancelled', v_cancelled,
                            'notifications_stopped', v_stopped);
END $$
"""


def upgrade() -> None:
    op.add_column(
        "policy_versions",
        sa.Column(
            "summary",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.create_table(
        "policy_notices",
        sa.Column("policy_version", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "channel IN ('telegram', 'email', 'sms')", name=op.f("ck_policy_notices_channel")
        ),
        sa.ForeignKeyConstraint(
            ["policy_version"],
            ["policy_versions.version"],
            name=op.f("fk_policy_notices_policy_version_policy_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_policy_notices_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint(
            "policy_version", "account_id", "channel", name=op.f("pk_policy_notices")
        ),
    )
    op.create_index(op.f("ix_policy_notices_account_id"), "policy_notices", ["account_id"])
    op.create_table(
        "policy_announcements",
        sa.Column("policy_version", sa.String(length=20), nullable=False),
        sa.Column("after_account_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("queued", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("swept_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_version"],
            ["policy_versions.version"],
            name=op.f("fk_policy_announcements_policy_version_policy_versions"),
        ),
        sa.PrimaryKeyConstraint("policy_version", name=op.f("pk_policy_announcements")),
    )
    for table in ("policy_notices", "policy_announcements"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(OWNER_ALL.format(table=table))
    # the fan-out job reads which versions still have people to tell (policy_announcements
    # .worker.sql); the rows themselves are written by pz_policy_notice_batch only
    op.execute("GRANT SELECT ON policy_announcements TO pozapisi_worker")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS policy_versions_published_immutable ON policy_versions")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.drop_table("policy_announcements")
    op.drop_index(op.f("ix_policy_notices_account_id"), table_name="policy_notices")
    op.drop_table("policy_notices")
    op.drop_column("policy_versions", "summary")
    op.execute(NOTIFICATION_BLOCKED_0022)
    op.execute(CONSENT_WITHDRAWAL_0022)
