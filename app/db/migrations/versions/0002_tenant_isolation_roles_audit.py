"""Runtime roles, row-level security, the audit chain.

The app connects as ``pozapisi_app`` (not owner, not superuser, no BYPASSRLS); workers as
``pozapisi_worker``. Every table with a ``business_id`` gets ENABLE + FORCE row-level security
with policies on ``app.business_id`` / ``app.account_id``, which the app sets per transaction.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables whose rows belong to one business. Catalog tables are also readable by anyone: they
# make up a business's public profile (name, services, masters, hours) shown by its slug.
PUBLIC_CATALOG = (
    "staff",
    "services",
    "staff_services",
    "working_hours",
    "schedule_overrides",
    "holidays",
    "locations",
)
PRIVATE = (
    "memberships",
    "time_off",
    "clients",
    "bookings",
    "messages",
    "notifications",
    "audit_log",
    "audit_details",
    "subscriptions",
    "invoices",
    "payments",
)

APP_GRANTS = {
    "businesses": "SELECT, UPDATE",
    "memberships": "SELECT, INSERT, UPDATE, DELETE",
    "locations": "SELECT, INSERT, UPDATE",
    "staff": "SELECT, INSERT, UPDATE",
    "services": "SELECT, INSERT, UPDATE",
    "staff_services": "SELECT, INSERT, UPDATE, DELETE",
    "working_hours": "SELECT, INSERT, UPDATE, DELETE",
    "schedule_overrides": "SELECT, INSERT, UPDATE, DELETE",
    "time_off": "SELECT, INSERT, UPDATE, DELETE",
    "holidays": "SELECT, INSERT, UPDATE, DELETE",
    "clients": "SELECT, INSERT, UPDATE",
    "bookings": "SELECT, INSERT, UPDATE",
    "messages": "SELECT, INSERT, UPDATE",
    "notifications": "SELECT, INSERT, UPDATE",
    "audit_log": "SELECT",
    "audit_details": "SELECT",
    "subscriptions": "SELECT",
    "invoices": "SELECT",
    "payments": "SELECT",
    "plans": "SELECT",
    "accounts": "SELECT, INSERT, UPDATE",
    "consents": "SELECT, INSERT",
    "consent_technical": "SELECT, INSERT",
    "policy_versions": "SELECT",
    "data_requests": "SELECT, INSERT, UPDATE",
    "security_events": "SELECT, INSERT",
    "otp_challenges": "SELECT, INSERT, UPDATE",
    "sessions": "SELECT, INSERT, UPDATE",
}
WORKER_GRANTS = {
    "businesses": "SELECT",
    "memberships": "SELECT",
    "staff": "SELECT",
    "services": "SELECT",
    "clients": "SELECT",
    "bookings": "SELECT, UPDATE",
    "notifications": "SELECT, INSERT, UPDATE",
    "accounts": "SELECT, UPDATE",
    "consents": "SELECT",
    "consent_technical": "SELECT, DELETE",
    "security_events": "SELECT, DELETE",
    "audit_details": "SELECT, UPDATE",
    "otp_challenges": "SELECT, DELETE",
    "sessions": "SELECT, DELETE",
    "policy_versions": "SELECT",
}

ROLES_SQL = """
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['pozapisi_app', 'pozapisi_worker'] LOOP
    BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
        EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
      END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- roles are cluster-wide: another database's migration created it first
    END;
  END LOOP;
END $$;
"""

CONTEXT_FUNCTIONS_SQL = """
CREATE FUNCTION app_business_id() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS
  $$ SELECT NULLIF(current_setting('app.business_id', true), '')::bigint $$;
CREATE FUNCTION app_account_id() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS
  $$ SELECT NULLIF(current_setting('app.account_id', true), '')::bigint $$;
"""

AUDIT_SQL = r"""
CREATE FUNCTION audit_entry_hash(
  p_prev bytea, p_chain bigint, p_seq bigint, p_at timestamptz, p_actor bigint, p_actor_kind text,
  p_action text, p_entity text, p_entity_id bigint, p_before bytea, p_after bytea, p_request_id text
) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT sha256(p_prev || convert_to(concat_ws('|',
    p_chain, p_seq, (extract(epoch FROM p_at) * 1000000)::bigint, coalesce(p_actor::text, ''),
    p_actor_kind, p_action, p_entity, coalesce(p_entity_id::text, ''),
    coalesce(encode(p_before, 'hex'), ''), coalesce(encode(p_after, 'hex'), ''),
    coalesce(p_request_id, '')), 'UTF8'))
$$;

CREATE FUNCTION audit_append(
  p_business_id bigint, p_actor_account_id bigint, p_actor_kind text, p_action text,
  p_entity text, p_entity_id bigint, p_before jsonb, p_after jsonb, p_request_id text,
  p_ip inet, p_user_agent text
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_chain bigint := coalesce(p_business_id, 0);
  v_seq bigint;
  v_prev bytea;
  v_at timestamptz := clock_timestamp();
  v_before bytea := CASE WHEN p_before IS NULL THEN NULL
                         ELSE sha256(convert_to(p_before::text, 'UTF8')) END;
  v_after bytea := CASE WHEN p_after IS NULL THEN NULL
                        ELSE sha256(convert_to(p_after::text, 'UTF8')) END;
  v_hash bytea;
  v_id bigint;
BEGIN
  -- a business may append only to its own chain; the platform chain is for platform events
  IF session_user <> current_user AND p_business_id IS DISTINCT FROM app_business_id()
     AND p_business_id IS NOT NULL THEN
    RAISE EXCEPTION 'audit_append: tenant mismatch' USING ERRCODE = 'insufficient_privilege';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('pozapisi.audit:' || v_chain, 0));
  SELECT seq, hash INTO v_seq, v_prev FROM audit_chain_heads WHERE chain_key = v_chain;
  IF NOT FOUND THEN
    v_seq := 0;
    v_prev := decode(repeat('00', 32), 'hex');
  END IF;
  v_seq := v_seq + 1;
  v_hash := audit_entry_hash(v_prev, v_chain, v_seq, v_at, p_actor_account_id, p_actor_kind,
                             p_action, p_entity, p_entity_id, v_before, v_after, p_request_id);
  INSERT INTO audit_log (chain_key, seq, business_id, at, actor_account_id, actor_kind, action,
                         entity, entity_id, before_digest, after_digest, request_id, prev_hash, hash)
  VALUES (v_chain, v_seq, p_business_id, v_at, p_actor_account_id, p_actor_kind, p_action,
          p_entity, p_entity_id, v_before, v_after, p_request_id, v_prev, v_hash)
  RETURNING id INTO v_id;
  IF p_ip IS NOT NULL OR p_user_agent IS NOT NULL OR p_before IS NOT NULL OR p_after IS NOT NULL THEN
    INSERT INTO audit_details (audit_id, business_id, ip, user_agent, before, after)
    VALUES (v_id, p_business_id, p_ip, left(p_user_agent, 400), p_before, p_after);
  END IF;
  INSERT INTO audit_chain_heads (chain_key, seq, hash) VALUES (v_chain, v_seq, v_hash)
  ON CONFLICT (chain_key) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash;
  RETURN v_id;
END $$;

-- Every broken link: a row whose stored hash is not what its content gives, a row that does
-- not point at its predecessor, a gap in the sequence, or a chain head that no row matches
-- (the newest rows were deleted).
CREATE FUNCTION audit_verify() RETURNS TABLE (chain_key bigint, seq bigint, audit_id bigint, problem text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH ordered AS (
    SELECT a.*, lag(a.hash) OVER w AS expected_prev, lag(a.seq) OVER w AS prev_seq
    FROM audit_log a WINDOW w AS (PARTITION BY a.chain_key ORDER BY a.seq)
  )
  SELECT o.chain_key, o.seq, o.id,
         CASE WHEN o.hash <> audit_entry_hash(o.prev_hash, o.chain_key, o.seq, o.at,
                   o.actor_account_id, o.actor_kind, o.action, o.entity, o.entity_id,
                   o.before_digest, o.after_digest, o.request_id) THEN 'content altered'
              WHEN o.seq <> coalesce(o.prev_seq, 0) + 1 THEN 'rows missing before this one'
              ELSE 'link broken' END
  FROM ordered o
  WHERE o.hash <> audit_entry_hash(o.prev_hash, o.chain_key, o.seq, o.at, o.actor_account_id,
                   o.actor_kind, o.action, o.entity, o.entity_id, o.before_digest,
                   o.after_digest, o.request_id)
     OR o.seq <> coalesce(o.prev_seq, 0) + 1
     OR o.prev_hash <> coalesce(o.expected_prev, decode(repeat('00', 32), 'hex'))
  UNION ALL
  SELECT h.chain_key, h.seq, NULL, 'newest rows missing'
  FROM audit_chain_heads h
  WHERE NOT EXISTS (SELECT 1 FROM audit_log a
                    WHERE a.chain_key = h.chain_key AND a.seq = h.seq AND a.hash = h.hash)
  ORDER BY 1, 2
$$;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON consents
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"""


def _statements(script: str) -> list[str]:
    """Split a script on top-level semicolons (asyncpg runs one statement at a time)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if line.rstrip().endswith(";") and current.count("$$") % 2 == 0:
            out.append(current.strip().rstrip(";"))
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def _rls(table: str, tenant_expr: str = "business_id") -> list[str]:
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant ON {table} USING ({tenant_expr} = app_business_id()) "
        f"WITH CHECK ({tenant_expr} = app_business_id())",
        # the owner (migrations, `pozapisi demo`, audit verification) keeps full access
        f"DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON {table} TO %I "
        f"USING (true) WITH CHECK (true)', current_user); END $$",
    ]


def upgrade() -> None:
    statements = _statements(ROLES_SQL + CONTEXT_FUNCTIONS_SQL + AUDIT_SQL)
    statements += _rls("businesses", "id")
    statements.append("CREATE POLICY public_read ON businesses FOR SELECT USING (true)")
    for table in PUBLIC_CATALOG:
        statements += _rls(table)
        statements.append(f"CREATE POLICY public_read ON {table} FOR SELECT USING (true)")
    for table in PRIVATE:
        statements += _rls(table)

    # a client sees their own rows in every business
    statements += [
        "CREATE POLICY client_own ON bookings FOR SELECT USING (account_id = app_account_id())",
        "CREATE POLICY client_own ON clients FOR SELECT USING (account_id = app_account_id())",
        "CREATE POLICY client_own ON messages FOR SELECT USING (EXISTS (SELECT 1 FROM clients c "
        "WHERE c.id = messages.client_id AND c.account_id = app_account_id()))",
        "CREATE POLICY client_own ON notifications FOR SELECT USING (account_id = app_account_id())",
    ]
    # workers (outbox relay, reminders, retention) read across tenants, only what they need
    for table in WORKER_GRANTS:
        if table in ("businesses", *PUBLIC_CATALOG, *PRIVATE):
            statements.append(f"CREATE POLICY worker ON {table} TO pozapisi_worker USING (true)")

    statements += [
        "GRANT USAGE ON SCHEMA public TO pozapisi_app, pozapisi_worker",
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO pozapisi_app, pozapisi_worker",
        "REVOKE ALL ON FUNCTION audit_append(bigint, bigint, text, text, text, bigint, jsonb, jsonb,"
        " text, inet, text) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION audit_append(bigint, bigint, text, text, text, bigint, jsonb,"
        " jsonb, text, inet, text) TO pozapisi_app, pozapisi_worker",
        "REVOKE ALL ON FUNCTION audit_verify() FROM PUBLIC",
    ]
    statements += [f"GRANT {rights} ON {t} TO pozapisi_app" for t, rights in APP_GRANTS.items()]
    statements += [
        f"GRANT {rights} ON {t} TO pozapisi_worker" for t, rights in WORKER_GRANTS.items()
    ]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for table in ("businesses", *PUBLIC_CATALOG, *PRIVATE):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(
            f"DO $$ DECLARE p record; BEGIN FOR p IN SELECT policyname FROM pg_policies "
            f"WHERE tablename = '{table}' LOOP EXECUTE format('DROP POLICY %I ON {table}', "
            f"p.policyname); END LOOP; END $$"
        )
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP TRIGGER consents_append_only ON consents")
    op.execute(
        "DROP FUNCTION audit_log_append_only(), audit_verify(), audit_append(bigint, bigint, text,"
        " text, text, bigint, jsonb, jsonb, text, inet, text), audit_entry_hash(bytea, bigint,"
        " bigint, timestamptz, bigint, text, text, text, bigint, bytea, bytea, text),"
        " app_business_id(), app_account_id()"
    )
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM pozapisi_app, pozapisi_worker")
    op.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM pozapisi_app, pozapisi_worker")
    op.execute("REVOKE ALL ON SCHEMA public FROM pozapisi_app, pozapisi_worker")
