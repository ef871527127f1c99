"""Row-level security on every table of personal data (policy 5.1, 10.3), forced.

Until now only tables with a ``business_id`` and ``sessions`` had it: connected as
``pozapisi_app`` with no context, the app read every account (phones, e-mails, Telegram ids),
every consent, security event, data request and one-time code, and could update any account.
From here ``accounts``, ``consents``, ``consent_technical``, ``data_requests``,
``security_events``, ``otp_challenges`` and ``rate_limit_counters`` (0015: its keys are keyed
digests of a person or a network) have ENABLE + FORCE row-level security, and ``sessions``
(enabled by 0012) is forced too. Their policies are files
(``app/db/sql/policies/<table>.*.sql``): the app sees and changes only the rows of the account
its transaction acts for (``app.account_id``).

What has to happen before anyone is signed in goes through SECURITY DEFINER functions that
give out an id, a yes/no or a count, never a row (files under ``app/db/sql/functions/``):
finding or creating an account by Telegram id (``pz_account_by_telegram``,
``pz_account_for_telegram``) or by a phone or e-mail a code has just proven
(``pz_account_for_contact``), issuing, counting and checking one-time codes
(``pz_otp_issue``, ``pz_otp_sent_to``, ``pz_otp_sent_from``, ``pz_otp_check``). So the app role
no longer inserts accounts nor writes ``otp_challenges`` itself, and may update only the columns
a person changes on their own account (never ``is_operator``, ``telegram_id``, ``deleted_at``
or ``password_hash``).

The worker role keeps exactly what delivery, reminders and retention use: of ``accounts`` the
addressee's contacts, language and whether the account is gone, and switching
``allows_write_to_pm`` off when Telegram says the bot is blocked (a policy refuses switching it
on); spent codes to delete. It loses ``consents``, ``consent_technical`` and ``security_events``:
retention reaches them only through ``pz_purge_technical``, which runs as the owner.

Forced security binds the owner too, so each table gets an ``owner_all`` policy here (the
SECURITY DEFINER functions of sign-in, erasure and retention run as the owner), created with
the switch itself so that no later migration ever finds the owner locked out; the files then
define it again, identically.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEWLY_GUARDED = (
    "accounts",
    "consents",
    "consent_technical",
    "data_requests",
    "security_events",
    "otp_challenges",
)
# enabled (sessions by 0012; rate_limit_counters just below), forced from here
FORCED_NOW = ("sessions", "rate_limit_counters")
# what a person changes on their own account (profile, contacts, language, avatar, Telegram's
# permission); pz_booking_insert keeps a name and a language a booking brings
APP_ACCOUNT_UPDATE = (
    "name", "phone", "phone_verified_at", "email", "email_verified_at", "allows_write_to_pm",
    "locale", "locale_chosen", "avatar",
)  # fmt: skip
# what delivery (workers.context, workers.relay) and reminders read of an account
WORKER_ACCOUNT_SELECT = (
    "id", "phone", "email", "telegram_id", "allows_write_to_pm", "locale", "deleted_at",
)  # fmt: skip
OWNER_ALL = (
    "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON {table} TO %I "
    "USING (true) WITH CHECK (true)', current_user); END $$"
)
# functions that app/db/sql/functions creates for this revision (dropped on the way down)
NEW_FUNCTIONS = (
    "pz_account_by_telegram(bigint)",
    "pz_account_chosen_locale(bigint)",
    "pz_account_for_telegram(bigint, text, boolean, text)",
    "pz_account_for_contact(bigint, text, text, text)",
    "pz_contact_taken(text, text)",
    "pz_client_locale(bigint)",
    "pz_otp_sent_to(text, timestamptz)",
    "pz_otp_sent_from(cidr, timestamptz)",
    "pz_otp_issue(text, text, text, text, inet, timestamptz, timestamptz)",
    "pz_otp_check(bigint, text, text, text, timestamptz)",
)

# as revision 0015 had them (the files' text before this revision)
RECIPIENTS_0015 = r"""
CREATE OR REPLACE FUNCTION pz_booking_recipients(p_business_id bigint, p_staff_id bigint)
RETURNS TABLE (account_id bigint, locale text) LANGUAGE sql STABLE AS $$
  SELECT m.account_id, a.locale FROM memberships m JOIN accounts a ON a.id = m.account_id
   WHERE m.business_id = p_business_id AND a.deleted_at IS NULL AND m.notify_bookings
     AND (m.role IN ('owner', 'admin') OR m.staff_id = p_staff_id)
  UNION
  SELECT s.account_id, a.locale FROM staff s JOIN accounts a ON a.id = s.account_id
   WHERE s.business_id = p_business_id AND s.id = p_staff_id AND a.deleted_at IS NULL
$$
"""
CONTEXT_0015 = r"""
CREATE OR REPLACE FUNCTION pz_booking_context(p_slug text, p_telegram_id bigint,
                                   p_account_id bigint, p_service_id bigint,
                                   p_staff_id bigint, p_start timestamptz,
                                   p_idempotency_key text, p_today date, p_required text[],
                                   p_known_version bigint, p_known_staff bigint[])
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_account json;
  v_account_id bigint;
  v_replay bigint;
  v_day date;
BEGIN
  IF p_telegram_id IS NOT NULL OR p_account_id IS NOT NULL THEN
    SELECT a.id, json_build_object('id', a.id, 'name', a.name, 'phone', a.phone,
                                   'locale', a.locale, 'locale_chosen', a.locale_chosen,
                                   'allows_write_to_pm', a.allows_write_to_pm)
      INTO v_account_id, v_account
      FROM accounts a
     WHERE (a.telegram_id = p_telegram_id OR a.id = p_account_id) AND a.deleted_at IS NULL;
    IF v_account_id IS NULL THEN
      RETURN json_build_object('account', NULL);
    END IF;
    PERFORM set_config('app.account_id', v_account_id::text, true);
  END IF;
  IF v_account_id IS NOT NULL AND p_idempotency_key IS NOT NULL THEN
    SELECT b.id INTO v_replay FROM bookings b
     WHERE b.account_id = v_account_id AND b.idempotency_key = p_idempotency_key;
  END IF;
  SELECT (p_start AT TIME ZONE b.timezone)::date INTO v_day
    FROM businesses b WHERE b.slug = p_slug AND b.archived_at IS NULL;
  RETURN json_build_object(
    'account', v_account,
    'consent_ok', v_account_id IS NOT NULL AND pz_consent_ok(v_account_id, p_today, p_required),
    'replay_id', v_replay,
    'day', v_day,
    'availability', CASE WHEN v_day IS NOT NULL AND v_replay IS NULL THEN
      pz_availability(p_slug, p_service_id, p_staff_id, v_day, v_day, p_known_version,
                      p_known_staff) END);
END $$
"""


def upgrade() -> None:
    for table in NEWLY_GUARDED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(OWNER_ALL.format(table=table))
    # the counters' keys are keyed digests of a person or a network (0015): the app has no right
    # on the table and counts through pz_rate_limit_hit (the owner); the worker purges
    op.execute("ALTER TABLE rate_limit_counters ENABLE ROW LEVEL SECURITY")
    for table in FORCED_NOW:
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(OWNER_ALL.format(table=table))

    op.execute("REVOKE INSERT, UPDATE ON accounts FROM pozapisi_app")
    op.execute(f"GRANT UPDATE ({', '.join(APP_ACCOUNT_UPDATE)}) ON accounts TO pozapisi_app")
    op.execute("REVOKE INSERT, UPDATE ON otp_challenges FROM pozapisi_app")

    op.execute("REVOKE SELECT, UPDATE ON accounts FROM pozapisi_worker")
    op.execute(
        f"GRANT SELECT ({', '.join(WORKER_ACCOUNT_SELECT)}), UPDATE (allows_write_to_pm) "
        "ON accounts TO pozapisi_worker"
    )
    op.execute("REVOKE ALL ON consents, consent_technical, security_events FROM pozapisi_worker")


def downgrade() -> None:
    op.execute("GRANT SELECT ON consents TO pozapisi_worker")
    op.execute("GRANT SELECT, DELETE ON consent_technical, security_events TO pozapisi_worker")
    op.execute(
        f"REVOKE SELECT ({', '.join(WORKER_ACCOUNT_SELECT)}), UPDATE (allows_write_to_pm) "
        "ON accounts FROM pozapisi_worker"
    )
    op.execute("GRANT SELECT, UPDATE ON accounts TO pozapisi_worker")
    op.execute("GRANT INSERT, UPDATE ON otp_challenges TO pozapisi_app")
    op.execute(f"REVOKE UPDATE ({', '.join(APP_ACCOUNT_UPDATE)}) ON accounts FROM pozapisi_app")
    op.execute("GRANT INSERT, UPDATE ON accounts TO pozapisi_app")

    # the two functions this revision's files changed work again without the lookups below
    op.execute(CONTEXT_0015)
    op.execute(RECIPIENTS_0015)
    for signature in NEW_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")

    for table in FORCED_NOW:
        op.execute(f"DROP POLICY IF EXISTS owner_all ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute("DROP POLICY IF EXISTS worker ON rate_limit_counters")
    op.execute("ALTER TABLE rate_limit_counters DISABLE ROW LEVEL SECURITY")
    for table in NEWLY_GUARDED:
        op.execute(
            f"DO $$ DECLARE p record; BEGIN FOR p IN SELECT policyname FROM pg_policies "
            f"WHERE schemaname = 'public' AND tablename = '{table}' LOOP "
            f"EXECUTE format('DROP POLICY %I ON {table}', p.policyname); END LOOP; END $$"
        )
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
