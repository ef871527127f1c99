-- Whether a business's plan includes a feature of policy/plans.yml (sms, client_notes, …): the
-- one rule for SMS on a free plan. The outbox relay reads a business's SMS switch through it
-- (workers/context.py), so a Free business's messages go by Telegram or e-mail and never by
-- SMS; the dashboard reads the same plans row (app.domain.plans). A business without a
-- subscription has the free plan's features: none.
-- STABLE and plain SQL: it reads with the caller's rights (the worker's policy
-- subscriptions.worker, the app's tenant policy). Executable by every role (the default).
CREATE OR REPLACE FUNCTION pz_plan_allows(p_business_id bigint, p_feature text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT p.features ? p_feature
                     FROM subscriptions s JOIN plans p ON p.id = s.plan_id
                    WHERE s.business_id = p_business_id), false)
$$;
