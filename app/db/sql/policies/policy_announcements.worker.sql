-- The notice job (app.domain.policy_notices) reads which announcements are still under way;
-- it names versions and a cursor, nobody in particular. Writes go through
-- pz_policy_notice_batch only (the worker role has SELECT and nothing else on the table).
DROP POLICY IF EXISTS worker ON policy_announcements;
CREATE POLICY worker ON policy_announcements FOR SELECT TO pozapisi_worker USING (true);
