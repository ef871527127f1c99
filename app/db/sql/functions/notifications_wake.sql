-- NOTIFY pozapisi_outbox after an INSERT into notifications: delivered on commit only, so a
-- worker wakes the moment a booking's messages exist and never sees them early.
-- Executable by every role: a trigger function runs for whoever fires the trigger.
CREATE OR REPLACE FUNCTION notifications_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pozapisi_outbox', '');
  RETURN NULL;
END $$;
