-- businesses rows belong to one business: the app reaches only the business its transaction acts
-- for (app.business_id, set per transaction), for reading and for writing.
DROP POLICY IF EXISTS tenant ON businesses;
CREATE POLICY tenant ON businesses USING (id = app_business_id())
  WITH CHECK (id = app_business_id());
