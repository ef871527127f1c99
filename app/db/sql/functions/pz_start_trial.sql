-- A business's first subscription: the trial plan (the plan of policy/plans.yml with
-- trial_days > 0) from today (a Kazakh day, UTC+5) for its trial_days, free of charge, and an
-- audit entry saying so. Called by the trigger businesses_trial in the transaction that
-- creates the business, and by `pozapisi db upgrade` (app.db.plans) for a business that has no
-- subscription yet (those created before billing existed). A business that already has one
-- keeps it; with no plans synced yet it gets none (the upgrade starts it later).
CREATE OR REPLACE FUNCTION pz_start_trial(p_business_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_plan plans%ROWTYPE;
  v_today date := (now() AT TIME ZONE 'UTC' + interval '5 hours')::date;
  v_id bigint;
  v_tenant text := current_setting('app.business_id', true);
BEGIN
  SELECT * INTO v_plan FROM plans WHERE trial_days > 0 ORDER BY sort_order, id LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  INSERT INTO subscriptions (business_id, plan_id, status, billing_period, current_period_start,
                             current_period_end, period_price_tiyn)
  VALUES (p_business_id, v_plan.id, 'trial', 'month', v_today, v_today + v_plan.trial_days, 0)
  ON CONFLICT (business_id) DO NOTHING
  RETURNING id INTO v_id;
  IF v_id IS NOT NULL THEN
    -- the entry goes on the new business's own chain: the transaction that creates a business
    -- acts for no business yet (sign-up), so it acts for this one while appending, then as before
    PERFORM set_config('app.business_id', p_business_id::text, true);
    PERFORM audit_append(p_business_id, NULL, 'system', 'billing.trial_started', 'subscription',
                         v_id, NULL,
                         jsonb_build_object('plan', v_plan.code,
                                            'ends_on', v_today + v_plan.trial_days),
                         NULL, NULL, NULL);
    PERFORM set_config('app.business_id', coalesce(v_tenant, ''), true);
  END IF;
  RETURN v_id;
END $$;

REVOKE ALL ON FUNCTION pz_start_trial(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
