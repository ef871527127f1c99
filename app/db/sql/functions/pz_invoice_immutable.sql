-- An issued invoice or credit note is a financial document (policy 7.3): what it says never
-- changes — a correction is a credit note with its own number — and it is kept until its
-- retain_until, also when accounts are deleted. Only its status moves, and only forward:
-- open → paid | void, paid → refunded, refunded → paid (a refund reversed); a credit note's
-- status never changes. Holds for every role, the owner too; the retention job's deletions
-- (pz_purge_financial) come after retain_until.
-- Executable by every role: a trigger function runs for whoever fires the trigger.
CREATE OR REPLACE FUNCTION pz_invoice_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.retain_until >= current_date THEN
      RAISE EXCEPTION 'invoice % is kept until %', OLD.number, OLD.retain_until
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
  END IF;
  IF (NEW.id, NEW.business_id, NEW.subscription_id, NEW.number, NEW.amount_tiyn, NEW.issued_on,
      NEW.due_on, NEW.retain_until, NEW.kind, NEW.credits_invoice_id, NEW.currency, NEW.seller,
      NEW.buyer, NEW.lines, NEW.vat_rate, NEW.subtotal_tiyn, NEW.vat_tiyn, NEW.period_start,
      NEW.period_end, NEW.reason, NEW.issued_at)
     IS DISTINCT FROM
     (OLD.id, OLD.business_id, OLD.subscription_id, OLD.number, OLD.amount_tiyn, OLD.issued_on,
      OLD.due_on, OLD.retain_until, OLD.kind, OLD.credits_invoice_id, OLD.currency, OLD.seller,
      OLD.buyer, OLD.lines, OLD.vat_rate, OLD.subtotal_tiyn, OLD.vat_tiyn, OLD.period_start,
      OLD.period_end, OLD.reason, OLD.issued_at) THEN
    RAISE EXCEPTION 'invoice % was issued: it cannot change', OLD.number
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Issue a credit note (app.domain.invoices.issue_credit_note).';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND (OLD.status, NEW.status) NOT IN (
       ('open', 'paid'), ('open', 'void'), ('paid', 'refunded'), ('refunded', 'paid')) THEN
    RAISE EXCEPTION 'invoice %: % cannot become %', OLD.number, OLD.status, NEW.status
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
