"""Workers: SAQ's queue tables, the outbox wake-up, and the rights the notification relay needs.

* SAQ's own tables (``saq_jobs``, ``saq_stats``, ``saq_versions``) are created here, by the
  owner, from SAQ's migration list, so the worker role never needs CREATE: it gets plain DML.
* Every INSERT into ``notifications`` sends ``NOTIFY pozapisi_outbox`` — delivered on commit
  only, so a worker wakes the moment a booking's messages exist and never sees them early.
* The relay reads correspondence (``messages``) to quote it, and deletes spent sign-in-code
  rows. (Platform messages the app queues — sign-in codes — get their own narrow policy in
  0004.)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op
from psycopg.sql import Identifier
from saq.queue.postgres_migrations import get_migrations

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SAQ_TABLES = ("saq_jobs", "saq_stats", "saq_versions")
WORKER = "pozapisi_worker"

WAKE_SQL = """
CREATE FUNCTION notifications_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pozapisi_outbox', '');
  RETURN NULL;
END $$
"""


def _saq_statements() -> tuple[list[str], int]:
    """SAQ's schema as plain SQL, one statement each (asyncpg runs one at a time)."""
    migrations = get_migrations(
        jobs_table=Identifier("saq_jobs"), stats_table=Identifier("saq_stats")
    )
    statements = []
    for _version, composed in migrations:
        for script in composed:
            statements += [s.strip() for s in script.as_string(None).split(";") if s.strip()]
    return statements, migrations[-1][0]


def upgrade() -> None:
    saq, saq_version = _saq_statements()
    statements = [
        "CREATE TABLE saq_versions (version INT)",
        *saq,
        f"INSERT INTO saq_versions (version) VALUES ({int(saq_version)})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON saq_jobs, saq_stats TO {WORKER}",
        f"GRANT SELECT ON saq_versions TO {WORKER}",
        f"GRANT USAGE, SELECT ON SEQUENCE saq_jobs_lock_key_seq TO {WORKER}",
        WAKE_SQL,
        "CREATE TRIGGER notifications_wake AFTER INSERT ON notifications "
        "FOR EACH STATEMENT EXECUTE FUNCTION notifications_wake()",
        f"GRANT SELECT ON messages TO {WORKER}",
        f"CREATE POLICY worker ON messages FOR SELECT TO {WORKER} USING (true)",
        f"GRANT DELETE ON notifications TO {WORKER}",
        # platform messages queued by the app (sign-in codes) get their narrow policy in 0004
    ]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for statement in (
        f"REVOKE DELETE ON notifications FROM {WORKER}",
        "DROP POLICY worker ON messages",
        f"REVOKE SELECT ON messages FROM {WORKER}",
        "DROP TRIGGER notifications_wake ON notifications",
        "DROP FUNCTION notifications_wake()",
        f"DROP TABLE {', '.join(SAQ_TABLES)}",
    ):
        op.execute(statement)
