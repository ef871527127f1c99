-- An issued invoice never changes but for its status, and stays until retain_until
-- (pz_invoice_immutable).
CREATE OR REPLACE TRIGGER invoices_issued_immutable BEFORE UPDATE OR DELETE
  ON invoices FOR EACH ROW EXECUTE FUNCTION pz_invoice_immutable();
