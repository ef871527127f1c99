-- A published policy version is never edited or deleted (pz_policy_version_immutable).
CREATE OR REPLACE TRIGGER policy_versions_published_immutable BEFORE UPDATE OR DELETE
  ON policy_versions FOR EACH ROW EXECUTE FUNCTION pz_policy_version_immutable();
