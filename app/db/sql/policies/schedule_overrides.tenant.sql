-- schedule_overrides rows belong to one business: the app reaches only the business its transaction acts
-- for (app.business_id, set per transaction), for reading and for writing.
DROP POLICY IF EXISTS tenant ON schedule_overrides;
CREATE POLICY tenant ON schedule_overrides USING (business_id = app_business_id())
  WITH CHECK (business_id = app_business_id());
