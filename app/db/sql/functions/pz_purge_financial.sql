CREATE OR REPLACE FUNCTION pz_purge_financial(p_today date) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_today date := least(p_today, current_date);
  v_payments integer;
  v_invoices integer;
BEGIN
  DELETE FROM payments WHERE retain_until < v_today;
  GET DIAGNOSTICS v_payments = ROW_COUNT;
  DELETE FROM invoices i WHERE i.retain_until < v_today
     AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = i.id);
  GET DIAGNOSTICS v_invoices = ROW_COUNT;
  RETURN jsonb_build_object('payments', v_payments, 'invoices', v_invoices);
END $$;

REVOKE ALL ON FUNCTION pz_purge_financial(date) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_purge_financial(date) TO pozapisi_worker;
