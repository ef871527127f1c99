-- The right to be forgotten (policy 8.3) crosses tenants, so it runs as the owner (SECURITY
-- DEFINER), but only for the account signed in to the transaction (app.account_id): an account
-- can erase itself and nobody else. It touches rows of that account only: its client cards
-- (and cards holding its verified phone), their threads and its bookings in every business,
-- notifications to it, its memberships, sessions, codes, e-mail links and invitations, and the
-- account row itself. Each
-- booking it cancels and each card it anonymizes is recorded on that business's audit chain;
-- audit values about the person are cleared, digests stay, so every chain still verifies.
-- Financial documents belong to businesses and are not touched (7.3).
CREATE OR REPLACE FUNCTION erase_account_data(p_account_id bigint, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_prev_business text := current_setting('app.business_id', true);
  v_phone text;
  v_phone_verified boolean;
  v_contacts text[];
  v_cards bigint[];
  v_row record;
  v_cancelled integer;
  v_anonymized integer := 0;
  v_messages integer := 0;
  v_count integer;
BEGIN
  IF p_account_id IS NULL OR p_account_id IS DISTINCT FROM app_account_id() THEN
    RAISE EXCEPTION 'erase_account_data: an account can erase only itself'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT a.phone, a.phone_verified_at IS NOT NULL,
         array_remove(ARRAY[a.phone, lower(a.email), a.telegram_id::text], NULL)
    INTO v_phone, v_phone_verified, v_contacts
    FROM accounts a WHERE a.id = p_account_id AND a.deleted_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'erase_account_data: no such account' USING ERRCODE = 'no_data_found';
  END IF;
  IF EXISTS (SELECT 1 FROM memberships WHERE account_id = p_account_id AND role = 'owner') THEN
    RAISE EXCEPTION 'erase_account_data: the account owns a business'
      USING ERRCODE = 'restrict_violation';
  END IF;

  -- the person's cards: linked to the account, or holding the phone the person has proven
  SELECT coalesce(array_agg(c.id), '{}') INTO v_cards FROM clients c
   WHERE c.account_id = p_account_id OR (v_phone_verified AND c.phone = v_phone);

  -- audit values about or by the person go; the digests, and so every chain, stay
  UPDATE audit_details d SET before = NULL, after = NULL
    FROM audit_log a
   WHERE a.id = d.audit_id AND (d.before IS NOT NULL OR d.after IS NOT NULL)
     AND (a.actor_account_id = p_account_id
          OR (a.entity = 'account' AND a.entity_id = p_account_id)
          OR (a.entity = 'client' AND a.entity_id = ANY (v_cards)));

  -- future visits are cancelled; each business sees it on its chain and is told
  v_cancelled := pz_cancel_account_bookings(p_account_id, p_now, 'account deleted');

  -- every booking of theirs: unlinked, and the free text they wrote is gone
  UPDATE bookings
     SET account_id = NULL, idempotency_key = NULL, comment = NULL,
         cancel_reason = CASE
           WHEN cancelled_by = 'client' AND cancel_reason NOT IN ('rescheduled', 'account deleted')
           THEN NULL ELSE cancel_reason END
   WHERE account_id = p_account_id OR client_id = ANY (v_cards);

  -- the cards: no name, phone, notes or tags, no link; their correspondence deleted
  FOR v_row IN
    UPDATE clients SET name = NULL, phone = NULL, notes = NULL, tags = '{}', account_id = NULL
     WHERE id = ANY (v_cards) RETURNING id, business_id
  LOOP
    v_anonymized := v_anonymized + 1;
    DELETE FROM messages WHERE business_id = v_row.business_id AND client_id = v_row.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_messages := v_messages + v_count;
    PERFORM set_config('app.business_id', v_row.business_id::text, true);
    PERFORM audit_append(v_row.business_id, p_account_id, 'client', 'client.erase', 'client',
      v_row.id, NULL, NULL, NULL, NULL, NULL);
  END LOOP;
  PERFORM set_config('app.business_id', coalesce(v_prev_business, ''), true);

  -- replies they wrote as a business's staff stay the business's, without the link
  UPDATE messages SET author_account_id = NULL WHERE author_account_id = p_account_id;

  -- nothing more goes out to them; their addresses leave the outbox
  UPDATE notifications
     SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
         last_error = CASE WHEN status = 'pending' THEN 'account deleted' END,
         address = NULL,
         idempotency_key = CASE
           WHEN EXISTS (SELECT 1 FROM unnest(v_contacts) c WHERE strpos(idempotency_key, c) > 0)
           THEN 'erased:' || id ELSE idempotency_key END
   WHERE account_id = p_account_id OR lower(address) = ANY (v_contacts);

  -- business roles end; a master's profile is the business's and stays, unlinked
  DELETE FROM memberships WHERE account_id = p_account_id;
  UPDATE staff SET account_id = NULL WHERE account_id = p_account_id;

  UPDATE sessions SET revoked_at = p_now WHERE account_id = p_account_id AND revoked_at IS NULL;
  UPDATE otp_challenges SET account_id = NULL, consumed_at = coalesce(consumed_at, p_now)
   WHERE account_id = p_account_id;
  -- e-mail links (verification, reset, change of address) die with the account
  DELETE FROM account_tokens WHERE account_id = p_account_id;
  -- invitations to the person (accepted, or still open to their address) go; the memberships
  -- they led to are gone above, the audit chains keep that they happened
  DELETE FROM invitations
   WHERE accepted_by = p_account_id
      OR (accepted_at IS NULL AND (lower(email) = ANY (v_contacts) OR phone = ANY (v_contacts)));
  UPDATE invitations SET invited_by = NULL WHERE invited_by = p_account_id;

  -- the account stays as a tombstone (consents, requests and the audit log refer to it)
  UPDATE accounts
     SET name = NULL, phone = NULL, phone_verified_at = NULL, email = NULL,
         email_verified_at = NULL, telegram_id = NULL, allows_write_to_pm = false,
         password_hash = NULL, avatar = NULL, locale_chosen = false, deleted_at = p_now
   WHERE id = p_account_id;

  RETURN jsonb_build_object('bookings_cancelled', v_cancelled, 'client_cards', v_anonymized,
                            'messages_deleted', v_messages);
END $$;

REVOKE ALL ON FUNCTION erase_account_data(bigint, timestamptz) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION erase_account_data(bigint, timestamptz) TO pozapisi_app;
