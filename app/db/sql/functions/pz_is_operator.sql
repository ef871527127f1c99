-- Whether the account the transaction acts for is an active PoZapisi operator, and of which
-- roles (any active operator when p_roles is NULL). The policies that open data_requests and
-- lawful_disclosures to the operator console, and the operator functions, ask it; the console
-- itself signs operators in with a second factor (app.domain.operators) before it acts for one.
CREATE OR REPLACE FUNCTION pz_is_operator(p_roles text[] DEFAULT NULL)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT EXISTS (
    SELECT 1 FROM operators o JOIN accounts a ON a.id = o.account_id
     WHERE o.account_id = app_account_id() AND o.disabled_at IS NULL AND a.deleted_at IS NULL
       AND (p_roles IS NULL OR o.role = ANY (p_roles)))
$$;

REVOKE ALL ON FUNCTION pz_is_operator(text[]) FROM PUBLIC, pozapisi_app, pozapisi_worker;
GRANT EXECUTE ON FUNCTION pz_is_operator(text[]) TO pozapisi_app;
