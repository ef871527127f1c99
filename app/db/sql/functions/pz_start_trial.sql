-- A business's first subscription: the trial plan (the plan of policy/plans.yml with
-- trial_days > 0) from today (a Kazakh day, UTC+5) for its trial_days, free of charge. Called
-- by the trigger businesses_trial in the transaction that creates the business, and by
-- `pozapisi db upgrade` (app.db.plans) for a business that has no subscription yet (those
-- created before billing existed). A business that already has one keeps it; with no plans
-- synced yet it gets none (the upgrade starts it later). Returns the new subscription's id, or
-- NULL. The audit entry is its callers': sign-up and a new business write "billing.
-- trial_started" beside "business.create" (app.domain.subscriptions.record_trial), the upgrade
-- for the ones it starts.
CREATE OR REPLACE FUNCTION pz_start_trial(p_business_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_plan plans%ROWTYPE;
  v_today date := (now() AT TIME ZONE 'UTC' + interval '5 hours')::date;
  v_id bigint;
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
  RETURN v_id;
END $$;

REVOKE ALL ON FUNCTION pz_start_trial(bigint) FROM PUBLIC, pozapisi_app, pozapisi_worker;
