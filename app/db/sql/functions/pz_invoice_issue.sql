-- Issue an invoice or a credit note for the transaction's business, with the next number of
-- its year: "YYYY-NNNNNN", gap-free (policy 7.3; issue 16). The year's counter row is advanced
-- by INSERT … ON CONFLICT DO UPDATE … RETURNING, which holds that row's lock until the
-- transaction ends: concurrent issuances of a year queue behind it, and a transaction that
-- rolls back takes its increment with it, so no number is skipped and none is used twice (a
-- sequence hands out numbers outside transactions and leaves gaps). Keep the caller's
-- transaction short after this call.
-- The totals come from the lines (each line's amount_tiyn, VAT-inclusive): VAT is the
-- inclusive share at p_vat_rate percent, rounded half up to the tiyn; no rate = not a VAT
-- payer ("Без НДС"). The app may not insert invoices itself; this is its only way (the worker
-- role's too: renewals).
CREATE OR REPLACE FUNCTION pz_invoice_issue(
  p_business_id bigint, p_subscription_id bigint, p_kind text, p_credits_invoice_id bigint,
  p_issued_on date, p_due_on date, p_currency text, p_seller jsonb, p_buyer jsonb,
  p_lines jsonb, p_vat_rate numeric, p_period_start date, p_period_end date, p_reason text)
RETURNS TABLE (invoice_id bigint, number text, amount_tiyn bigint, vat_tiyn bigint,
               retain_until date)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_year integer := extract(year FROM p_issued_on)::integer;
  v_seq integer;
  v_amount bigint;
  v_vat bigint := 0;
  v_number text;
  v_id bigint;
  v_keep date := greatest((p_issued_on + interval '5 years')::date, p_issued_on + 1826);
BEGIN
  IF p_business_id IS DISTINCT FROM app_business_id() THEN
    RAISE EXCEPTION 'pz_invoice_issue: not the transaction''s business'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF jsonb_typeof(p_lines) <> 'array' OR jsonb_array_length(p_lines) = 0 THEN
    RAISE EXCEPTION 'pz_invoice_issue: an invoice needs lines' USING ERRCODE = 'check_violation';
  END IF;
  SELECT sum((l ->> 'amount_tiyn')::bigint) INTO v_amount FROM jsonb_array_elements(p_lines) l;
  IF p_kind = 'credit_note' AND NOT EXISTS (
      SELECT 1 FROM invoices i WHERE i.id = p_credits_invoice_id
         AND i.business_id = p_business_id AND i.kind = 'invoice') THEN
    RAISE EXCEPTION 'pz_invoice_issue: a credit note corrects an invoice of the same business'
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF p_vat_rate IS NOT NULL THEN
    v_vat := round(v_amount * p_vat_rate / (100 + p_vat_rate));
  END IF;
  INSERT INTO invoice_counters AS c (year, last_number) VALUES (v_year, 1)
    ON CONFLICT (year) DO UPDATE SET last_number = c.last_number + 1
    RETURNING c.last_number INTO v_seq;
  v_number := v_year::text || '-' || lpad(v_seq::text, 6, '0');
  INSERT INTO invoices (business_id, subscription_id, number, amount_tiyn, issued_on, due_on,
                        status, retain_until, kind, credits_invoice_id, currency, seller, buyer,
                        lines, vat_rate, subtotal_tiyn, vat_tiyn, period_start, period_end,
                        reason)
  VALUES (p_business_id, p_subscription_id, v_number, v_amount, p_issued_on, p_due_on,
          CASE WHEN p_kind = 'credit_note' THEN 'credit' ELSE 'open' END,
          -- kept five years (policy 7.3), then the retention job removes it
          v_keep, p_kind,
          p_credits_invoice_id, p_currency, p_seller, p_buyer, p_lines, p_vat_rate,
          v_amount - v_vat, v_vat, p_period_start, p_period_end, p_reason)
  RETURNING id INTO v_id;
  RETURN QUERY SELECT v_id, v_number, v_amount, v_vat, v_keep;
END $$;

REVOKE ALL ON FUNCTION pz_invoice_issue(bigint, bigint, text, bigint, date, date, text, jsonb,
  jsonb, jsonb, numeric, date, date, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_invoice_issue(bigint, bigint, text, bigint, date, date, text,
  jsonb, jsonb, jsonb, numeric, date, date, text) TO pozapisi_app, pozapisi_worker;
