-- One batch of the notice of a material policy change (policy 11.1): the next p_limit accounts
-- after the announcement's cursor (keyset pagination, never every account at once), and for
-- each active one a notice on every channel they have — Telegram when the bot may write to
-- them, e-mail when the address is verified (a typo'd, unverified address may be a stranger's),
-- SMS only for a person with neither, so nobody who can be reached is left untold.
--
-- "Once per person, version and channel" is the primary key of policy_notices: the outbox row
-- is written only for a policy_notices row this call inserted. Two workers running the same
-- batch at once read the same cursor and try the same keys (in the same order, so neither
-- deadlocks the other); the second waits on the first's keys, then inserts none of them.
--
-- Withdrawn consent does not stop the notice: see pz_notification_blocked. A deleted account
-- gets nothing (its contacts are gone).
--
-- A batch stops short of accounts made in the last minute before p_now: an account's id is
-- drawn before its transaction commits, so a younger id may still be invisible while a later
-- one is not, and the cursor must not pass it. Until the version takes effect the job keeps
-- calling, so people who join during the notice period are told too.
--
-- Returns {"queued": notices written, "done": whether the cursor reached the newest account}.
-- Refuses nothing: for a version that is not material or not yet published it does nothing.
-- SECURITY DEFINER: the worker reads no account it is not delivering to and writes neither
-- table itself; this function is the one way a notice is fanned out.
CREATE OR REPLACE FUNCTION pz_policy_notice_batch(p_version text, p_today date,
                                                  p_now timestamptz, p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_policy policy_versions;
  v_after bigint;
  v_seen integer;
  v_last bigint;
  v_young bigint;
  v_queued integer := 0;
  v_done boolean;
BEGIN
  SELECT * INTO v_policy FROM policy_versions WHERE version = p_version;
  IF NOT FOUND OR NOT v_policy.material OR v_policy.published_at > p_today THEN
    RETURN jsonb_build_object('queued', 0, 'done', true);
  END IF;
  INSERT INTO policy_announcements (policy_version, started_at) VALUES (p_version, p_now)
    ON CONFLICT (policy_version) DO NOTHING;
  SELECT after_account_id INTO v_after FROM policy_announcements
   WHERE policy_version = p_version;

  SELECT count(*), max(b.id), min(b.id) FILTER (WHERE b.created_at > p_now - interval '1 minute')
    INTO v_seen, v_last, v_young
    FROM (SELECT a.id, a.created_at FROM accounts a WHERE a.id > v_after
           ORDER BY a.id LIMIT p_limit) b;
  v_done := v_seen < p_limit OR v_young IS NOT NULL;
  IF v_young IS NOT NULL THEN
    v_last := v_young - 1;
  END IF;

  IF v_last IS NOT NULL AND v_last > v_after THEN
    WITH wanted AS (
      SELECT a.id AS account_id, a.locale, c.channel
        FROM accounts a
       CROSS JOIN LATERAL (VALUES
         ('telegram', a.telegram_id IS NOT NULL AND a.allows_write_to_pm),
         ('email', a.email IS NOT NULL AND a.email_verified_at IS NOT NULL),
         ('sms', a.phone IS NOT NULL
                 AND NOT (a.telegram_id IS NOT NULL AND a.allows_write_to_pm)
                 AND NOT (a.email IS NOT NULL AND a.email_verified_at IS NOT NULL))
       ) AS c(channel, reachable)
       WHERE a.id > v_after AND a.id <= v_last AND a.deleted_at IS NULL AND c.reachable
    ),
    noted AS (
      INSERT INTO policy_notices (policy_version, account_id, channel, created_at)
      SELECT p_version, w.account_id, w.channel, p_now FROM wanted w
       ORDER BY w.account_id, w.channel
      ON CONFLICT (policy_version, account_id, channel) DO NOTHING
      RETURNING account_id, channel
    ),
    queued AS (
      INSERT INTO notifications (account_id, event, channel, locale, payload, idempotency_key,
                                 scheduled_at)
      SELECT n.account_id, 'policy.notice', n.channel, w.locale,
             jsonb_build_object('version', v_policy.version,
                                'effective_at', v_policy.effective_at::text,
                                'summary', v_policy.summary),
             concat_ws(':', 'policy.notice', v_policy.version, n.channel, 'a' || n.account_id),
             p_now
        FROM noted n JOIN wanted w USING (account_id, channel)
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING 1
    )
    SELECT count(*) INTO v_queued FROM queued;
  END IF;

  UPDATE policy_announcements
     SET after_account_id = greatest(after_account_id, coalesce(v_last, 0)),
         queued = queued + v_queued,
         swept_at = CASE WHEN v_done THEN coalesce(swept_at, p_now) ELSE swept_at END
   WHERE policy_version = p_version;
  RETURN jsonb_build_object('queued', v_queued, 'done', v_done);
END $$;

REVOKE ALL ON FUNCTION pz_policy_notice_batch(text, date, timestamptz, integer) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_policy_notice_batch(text, date, timestamptz, integer) TO pozapisi_worker;
