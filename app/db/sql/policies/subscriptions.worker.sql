-- The daily billing job (workers/billing.py) renews subscriptions, ends trials and grace
-- periods across businesses, and the outbox relay asks pz_plan_allows; what it may do here is
-- limited by the worker role's table privileges (SELECT, UPDATE), not by this policy.
DROP POLICY IF EXISTS worker ON subscriptions;
CREATE POLICY worker ON subscriptions TO pozapisi_worker USING (true);
