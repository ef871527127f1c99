"""Retention (policy 7.2, 7.3) as two functions, the only way the worker role reaches it.

* ``pz_purge_technical(cutoff)``: the technical data (IP addresses, user agents) of every
  account deleted at or before ``cutoff``: cleared on the audit log's side table (the entries
  and so the chains stay), deleted with consent records' technical rows, security events and
  sessions. It runs as the owner because finding the audit entries an account made means
  reading the audit log, which the worker role may not.
* ``pz_purge_financial(today)``: invoices and payments past their five years. A payment can
  outlive its invoice's hold, and an invoice goes only once no payment refers to it, which
  needs every row in sight; it deletes only what is past ``retain_until`` by the earlier of
  the date it is given and the database's own clock, so no date a job passes reaches a document
  still under its legal hold.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS_SQL = r"""
CREATE FUNCTION pz_purge_technical(p_cutoff timestamptz) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_gone bigint[];
  v_audit integer;
  v_consents integer;
  v_events integer;
  v_sessions integer;
BEGIN
  SELECT coalesce(array_agg(id), '{}') INTO v_gone FROM accounts
   WHERE deleted_at IS NOT NULL AND deleted_at <= p_cutoff;
  UPDATE audit_details d SET ip = NULL, user_agent = NULL FROM audit_log a
   WHERE a.id = d.audit_id AND a.actor_account_id = ANY (v_gone)
     AND (d.ip IS NOT NULL OR d.user_agent IS NOT NULL);
  GET DIAGNOSTICS v_audit = ROW_COUNT;
  DELETE FROM consent_technical t USING consents c
   WHERE c.id = t.consent_id AND c.account_id = ANY (v_gone);
  GET DIAGNOSTICS v_consents = ROW_COUNT;
  DELETE FROM security_events WHERE account_id = ANY (v_gone);
  GET DIAGNOSTICS v_events = ROW_COUNT;
  DELETE FROM sessions WHERE account_id = ANY (v_gone);
  GET DIAGNOSTICS v_sessions = ROW_COUNT;
  RETURN jsonb_build_object('audit_details', v_audit, 'consent_records', v_consents,
                            'security_events', v_events, 'sessions', v_sessions);
END $$;

CREATE FUNCTION pz_purge_financial(p_today date) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_today date := least(p_today, current_date);
  v_payments integer;
  v_invoices integer;
BEGIN
  DELETE FROM payments WHERE retain_until < v_today;
  GET DIAGNOSTICS v_payments = ROW_COUNT;
  DELETE FROM invoices i WHERE i.retain_until < v_today
     AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = i.id);
  GET DIAGNOSTICS v_invoices = ROW_COUNT;
  RETURN jsonb_build_object('payments', v_payments, 'invoices', v_invoices);
END $$;
"""

SIGNATURES = ("pz_purge_technical(timestamptz)", "pz_purge_financial(date)")


def upgrade() -> None:
    for body in FUNCTIONS_SQL.split("$$;\n")[:-1]:  # one statement per function
        op.execute(body + "$$;")
    for signature in SIGNATURES:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO pozapisi_worker")


def downgrade() -> None:
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
