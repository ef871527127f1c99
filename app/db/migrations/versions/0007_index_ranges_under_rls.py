"""Index ranges that row-level security lets the planner use; no index the planner trips on.

Under row-level security PostgreSQL evaluates a query's own conditions only after the policy's,
unless they are leakproof. ``lower(period) > …`` is not (``lower(anyrange)`` is not marked
leakproof), so the app role could not use ``ix_bookings_business_period`` as a range: every
schedule read filtered all of a business's bookings, and a booking cost more the longer the
business had been open. A stored ``starts_at`` column (``lower(period)``, kept by PostgreSQL)
is compared with leakproof operators, so its index range holds under the policies too.

The rest is what the same measurement showed:

* a client's latest consent (``ORDER BY id DESC LIMIT 1``) walked the primary key backwards
  through every consent; ``(account_id, id)`` finds it in one step;
* single-column ``business_id`` indexes on bookings and clients duplicated the leading column of
  wider ones, cost every insert an index entry, and lured the planner of a new, unanalysed
  table into scanning the whole business.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# pz_blocked as in 0006, with the window on starts_at: the policy no longer hides the range
BLOCKED_SQL = r"""
CREATE OR REPLACE FUNCTION pz_blocked(p_business_id bigint, p_staff bigint[], p_from date,
                                      p_to date, p_tz text)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
  w1 timestamptz := (p_from::timestamp - interval '12 hours') AT TIME ZONE p_tz;
  w2 timestamptz := ((p_to + 1)::timestamp + interval '12 hours') AT TIME ZONE p_tz;
BEGIN
  RETURN (SELECT coalesce(json_agg(json_build_array(x.staff_id,
              floor(extract(epoch FROM x.s))::bigint, ceil(extract(epoch FROM x.e))::bigint)),
              '[]')
       FROM (
             SELECT b.staff_id, lower(b.blocked_period) AS s, upper(b.blocked_period) AS e
               FROM bookings b
              WHERE b.business_id = p_business_id AND b.staff_id = ANY(p_staff)
                AND b.status IN ('pending', 'confirmed')
                -- blocked_span keeps a booking within a day of its start: a narrow range of
                -- ix_bookings_staff_starts, however long the business's history
                AND b.starts_at > w1 - interval '1 day'
                AND b.starts_at < w2 + interval '1 day'
                AND b.blocked_period && tstzrange(w1, w2)
             UNION ALL
             SELECT t.staff_id, coalesce(lower(t.period), w1), coalesce(upper(t.period), w2)
               FROM time_off t
              WHERE t.business_id = p_business_id AND t.staff_id = ANY(p_staff)
                AND t.period && tstzrange(w1, w2)) x);
END $$;
"""


def upgrade() -> None:
    op.execute(
        "ALTER TABLE bookings ADD COLUMN starts_at timestamptz "
        "GENERATED ALWAYS AS (lower(period)) STORED NOT NULL"
    )
    op.drop_index("ix_bookings_business_period", table_name="bookings")
    op.drop_index("ix_bookings_business_id", table_name="bookings")
    op.create_index("ix_bookings_business_starts", "bookings", ["business_id", "starts_at"])
    op.create_index("ix_bookings_staff_starts", "bookings", ["staff_id", "starts_at"])
    op.drop_index("ix_clients_business_id", table_name="clients")
    op.drop_index("ix_consents_account_id", table_name="consents")
    op.create_index("ix_consents_account_latest", "consents", ["account_id", "id"])
    op.execute(BLOCKED_SQL)


def downgrade() -> None:
    before = importlib.import_module("app.db.migrations.versions.0006_hot_path_functions")
    blocked = before.FUNCTIONS_SQL.split("$$;\n")[0] + "$$;"
    op.execute(blocked.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.drop_index("ix_consents_account_latest", table_name="consents")
    op.create_index("ix_consents_account_id", "consents", ["account_id"])
    op.create_index("ix_clients_business_id", "clients", ["business_id"])
    op.drop_index("ix_bookings_staff_starts", table_name="bookings")
    op.drop_index("ix_bookings_business_starts", table_name="bookings")
    op.create_index("ix_bookings_business_id", "bookings", ["business_id"])
    op.execute("CREATE INDEX ix_bookings_business_period ON bookings (business_id, lower(period))")
    op.execute("ALTER TABLE bookings DROP COLUMN starts_at")
