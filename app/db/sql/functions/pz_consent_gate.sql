-- The outbox's gate for a person who withdrew consent (policy 8.4): a row that would become
-- due for them (a new row, or one a worker puts back to pending after a failed try or a lapsed
-- lease) is stored cancelled instead, whichever code wrote it (the booking service, the
-- reminder job, SQL functions, a worker), so nothing queued later reaches them.
-- Executable by every role: a trigger function runs for whoever fires the trigger.
CREATE OR REPLACE FUNCTION pz_consent_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pz_notification_blocked(NEW.account_id, NEW.event) THEN
    NEW.status := 'cancelled';
    NEW.last_error := 'consent withdrawn';
    NEW.next_attempt_at := NULL;
  END IF;
  RETURN NEW;
END $$;
