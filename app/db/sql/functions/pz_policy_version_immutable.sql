-- A published policy version never changes and is never removed (policy 3.1 and 11.1): its
-- digests are the texts people consented to, and its dates and summary are what the notices
-- told them. A change, even a typo, is a new version (policy/README.md). "Published" is the
-- day of published_at in Kazakhstan (UTC+5, the landing's day); before it, a version
-- announced early may still be corrected. `pozapisi db upgrade` checks the same first and
-- names what differs (app/db/policy_versions.py); this holds for every other writer too.
-- Executable by every role: a trigger function runs for whoever fires the trigger.
CREATE OR REPLACE FUNCTION pz_policy_version_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.published_at <= (now() AT TIME ZONE 'UTC' + interval '5 hours')::date
     AND (TG_OP = 'DELETE'
          OR (NEW.version, NEW.digests, NEW.purposes, NEW.published_at, NEW.effective_at,
              NEW.material, NEW.summary)
             IS DISTINCT FROM (OLD.version, OLD.digests, OLD.purposes, OLD.published_at,
                               OLD.effective_at, OLD.material, OLD.summary)) THEN
    RAISE EXCEPTION 'policy version % was published on %: its text and digest cannot change',
                    OLD.version, OLD.published_at
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Publish the change as a new version (policy/README.md).';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
