-- staff_services rows belong to one business: the app reaches only the business its transaction acts
-- for (app.business_id, set per transaction), for reading and for writing.
DROP POLICY IF EXISTS tenant ON staff_services;
CREATE POLICY tenant ON staff_services USING (business_id = app_business_id())
  WITH CHECK (business_id = app_business_id());
