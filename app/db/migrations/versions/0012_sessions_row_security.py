"""Sessions under row-level security: the app sees only the signed-in account's own sessions.

A session row holds the CSRF secret of a sign-in and where it came from (IP, user agent). The
app role reaches it only for the account the transaction acts for (``app.account_id``): a
token is checked with its signed ``sub`` set as that account first (``app.security.sessions``),
and a new session can be written only for the account being signed in. Workers purge expired
sessions. RLS is enabled but not forced: the owner's SECURITY DEFINER functions (erasure,
retention) act across accounts by design.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE sessions ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY own ON sessions TO pozapisi_app "
        "USING (account_id = app_account_id()) WITH CHECK (account_id = app_account_id())"
    )
    op.execute("CREATE POLICY worker ON sessions TO pozapisi_worker USING (true)")


def downgrade() -> None:
    op.execute("DROP POLICY worker ON sessions")
    op.execute("DROP POLICY own ON sessions")
    op.execute("ALTER TABLE sessions DISABLE ROW LEVEL SECURITY")
