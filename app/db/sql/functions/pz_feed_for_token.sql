-- The live calendar feed whose address's secret has this sha256 digest (hex), or no row: a
-- feed request (GET /ical/{token}.ics) has no session and so no tenant yet; this tells the app
-- which business and master the feed is for, and nothing else. A revoked feed is not found.
CREATE OR REPLACE FUNCTION pz_feed_for_token(p_digest text)
RETURNS TABLE (feed_id bigint, business_id bigint, staff_id bigint, include_phone boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT f.id, f.business_id, f.staff_id, f.include_phone
  FROM calendar_feeds f
  WHERE f.token_hash = p_digest AND f.revoked_at IS NULL
$$;

REVOKE ALL ON FUNCTION pz_feed_for_token(text) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_feed_for_token(text) TO pozapisi_app;
