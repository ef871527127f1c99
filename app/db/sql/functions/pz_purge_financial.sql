-- Financial documents past their retention (policy 7.3: five years), for the daily retention
-- job (workers/retention.py). Never takes a date later than the database's own clock, so a
-- wrong clock in a worker cannot purge early; younger rows are never touched.
CREATE OR REPLACE FUNCTION pz_purge_financial(p_today date) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_today date := least(p_today, current_date);
  v_payments integer;
  v_invoices integer;
  v_credited integer;
BEGIN
  DELETE FROM payments WHERE retain_until < v_today;
  GET DIAGNOSTICS v_payments = ROW_COUNT;
  -- a payment page made for an invoice goes with the invoice
  DELETE FROM payment_orders o USING invoices i
   WHERE i.id = o.invoice_id AND i.retain_until < v_today
     AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = i.id);
  -- credit notes first (each is kept at least as long as the invoice it corrects), then
  -- invoices that no kept payment or credit note names
  DELETE FROM invoices i WHERE i.retain_until < v_today AND i.kind = 'credit_note'
     AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = i.id);
  GET DIAGNOSTICS v_invoices = ROW_COUNT;
  DELETE FROM invoices i WHERE i.retain_until < v_today
     AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = i.id)
     AND NOT EXISTS (SELECT 1 FROM invoices c WHERE c.credits_invoice_id = i.id);
  GET DIAGNOSTICS v_credited = ROW_COUNT;
  v_invoices := v_invoices + v_credited;
  RETURN jsonb_build_object('payments', v_payments, 'invoices', v_invoices);
END $$;

REVOKE ALL ON FUNCTION pz_purge_financial(date) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_purge_financial(date) TO pozapisi_worker;
