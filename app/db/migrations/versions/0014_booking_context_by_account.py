"""``pz_booking_context`` names the client by Telegram id or by account id (or neither: a walk-in).

The API and the Mini App now create a booking through one domain function
(``app.domain.bookings.create_booking``); a Mini App session knows the account, not always a
Telegram id. An argument cannot be added by ``CREATE OR REPLACE``, so this drops the old
signature; ``app/db/sql/functions/pz_booking_context.sql`` creates the new one right after the
migrations (``app.db.definitions``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "pz_booking_context(text, bigint, bigint, bigint, timestamptz, text, date, text[], bigint, bigint[])"
NEW = (
    "pz_booking_context(text, bigint, bigint, bigint, bigint, timestamptz, text, date, text[], "
    "bigint, bigint[])"
)

# as revision 0013 had it (migration 0008's text)
CONTEXT_0013 = r"""
CREATE FUNCTION pz_booking_context(p_slug text, p_telegram_id bigint, p_service_id bigint,
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
  SELECT a.id, json_build_object('id', a.id, 'name', a.name, 'phone', a.phone,
                                 'locale', a.locale, 'locale_chosen', a.locale_chosen,
                                 'allows_write_to_pm', a.allows_write_to_pm)
    INTO v_account_id, v_account
    FROM accounts a WHERE a.telegram_id = p_telegram_id AND a.deleted_at IS NULL;
  IF v_account_id IS NULL THEN
    RETURN json_build_object('account', NULL);
  END IF;
  PERFORM set_config('app.account_id', v_account_id::text, true);
  IF p_idempotency_key IS NOT NULL THEN
    SELECT b.id INTO v_replay FROM bookings b
     WHERE b.account_id = v_account_id AND b.idempotency_key = p_idempotency_key;
  END IF;
  SELECT (p_start AT TIME ZONE b.timezone)::date INTO v_day
    FROM businesses b WHERE b.slug = p_slug AND b.archived_at IS NULL;
  RETURN json_build_object(
    'account', v_account,
    'consent_ok', pz_consent_ok(v_account_id, p_today, p_required),
    'replay_id', v_replay,
    'day', v_day,
    'availability', CASE WHEN v_day IS NOT NULL AND v_replay IS NULL THEN
      pz_availability(p_slug, p_service_id, p_staff_id, v_day, v_day, p_known_version,
                      p_known_staff) END);
END $$;
"""


def upgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {OLD}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {NEW}")
    op.execute(CONTEXT_0013)
    op.execute(f"REVOKE ALL ON FUNCTION {OLD} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {OLD} TO pozapisi_app")
