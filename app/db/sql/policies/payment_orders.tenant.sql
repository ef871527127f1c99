-- payment_orders rows belong to one business: the app reaches only the business its
-- transaction acts for (app.business_id, set per transaction), for reading and for writing.
DROP POLICY IF EXISTS tenant ON payment_orders;
CREATE POLICY tenant ON payment_orders USING (business_id = app_business_id())
  WITH CHECK (business_id = app_business_id());
