"""Withdrawing consent stops what was queued for the person, and the copy of their data holds
everything that names them.

- ``pz_consent_withdrawal`` (app/db/sql): in the withdrawal's transaction, the person's future
  bookings are cancelled (kept, with the reason, for each business) and every message not yet
  sent to them is cancelled; ``pz_notification_blocked`` is the one rule for what may still go
  to a person who withdrew, and the trigger ``notifications_consent_gate`` (function
  ``pz_consent_gate``) applies it to every row that becomes due later, whoever writes it.
- ``pz_account_audit`` and ``pz_account_mentions`` (app/db/sql): for the copy of their data
  (policy 8.1), the audit entries about the signed-in person (their own actions with IP and
  user agent; what others changed about them, without the other person's identity or device)
  and the rows that name them beyond their account's reach (messages to their addresses, open
  invitations to them, the absences recorded for their master profiles).
- Two indexes on ``audit_log``, by actor and by entity: finding one person's entries in every
  chain (the copy, erasure) reads those entries instead of the whole log.

The objects are created from their files; going down drops them, so a database taken back is
the one revision 0020 built.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = (
    "pz_consent_withdrawal(bigint, timestamptz)",
    "pz_consent_gate()",
    "pz_notification_blocked(bigint, text)",
    "pz_account_audit(bigint)",
    "pz_account_mentions(bigint)",
)


def upgrade() -> None:
    """The indexes; the functions and the trigger come from app/db/sql."""
    op.create_index(
        "ix_audit_log_actor_account_id",
        "audit_log",
        ["actor_account_id"],
        postgresql_where="actor_account_id IS NOT NULL",
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"])


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS notifications_consent_gate ON notifications")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_account_id", table_name="audit_log")
