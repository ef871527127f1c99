-- Trigger function of businesses_trial: every new business starts its trial (pz_start_trial)
-- in the transaction that creates it, however it is created (sign-up, a new business of a
-- signed-in person, the demo, tests' factories).
-- Executable by every role: a trigger function runs for whoever fires the trigger; it writes
-- through pz_start_trial, which only its owner may call.
CREATE OR REPLACE FUNCTION pz_business_trial() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  PERFORM pz_start_trial(NEW.id);
  RETURN NULL;
END $$;
