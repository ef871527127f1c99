-- The invoice a payment provider's notification names (by its number, the InvoiceId PoZapisi
-- gave the provider), or no row: a notification has no session and so no tenant yet; this
-- tells the app which business to act for, and nothing else. Its signature is checked first.
CREATE OR REPLACE FUNCTION pz_invoice_for_payment(p_number text)
RETURNS TABLE (invoice_id bigint, business_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT i.id, i.business_id FROM invoices i WHERE i.number = p_number AND i.kind = 'invoice'
$$;

REVOKE ALL ON FUNCTION pz_invoice_for_payment(text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_invoice_for_payment(text) TO pozapisi_app;
