-- No message becomes due for a person who withdrew consent (pz_consent_gate, policy 8.4).
CREATE OR REPLACE TRIGGER notifications_consent_gate BEFORE INSERT OR UPDATE OF status
  ON notifications FOR EACH ROW WHEN (NEW.status = 'pending' AND NEW.account_id IS NOT NULL)
  EXECUTE FUNCTION pz_consent_gate();
