-- Every INSERT into notifications sends NOTIFY pozapisi_outbox, delivered on commit only, so a
-- worker wakes the moment a booking's messages exist and never sees them early.
CREATE OR REPLACE TRIGGER notifications_wake AFTER INSERT ON notifications
  FOR EACH STATEMENT EXECUTE FUNCTION notifications_wake();
