-- Whether a link from an e-mail still works (unused, unexpired, of this purpose): its page is
-- shown with a button before anything is spent (a GET never writes, and mail scanners open
-- links). Yes or no, nothing about whose it is.
CREATE OR REPLACE FUNCTION pz_token_valid(p_purpose text, p_token_hash text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT EXISTS (
    SELECT 1 FROM account_tokens t JOIN accounts a ON a.id = t.account_id
     WHERE t.token_hash = p_token_hash AND t.purpose = p_purpose AND t.used_at IS NULL
       AND t.expires_at > now() AND a.deleted_at IS NULL)
$$;

REVOKE ALL ON FUNCTION pz_token_valid(text, text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_token_valid(text, text) TO pozapisi_app;
