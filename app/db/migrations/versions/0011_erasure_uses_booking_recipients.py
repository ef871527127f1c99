"""Erasure tells a business about each cancelled visit through ``pz_booking_recipients``.

``erase_account_data`` (migration 0004) carried its own copy of the query for who on the
business side hears about a booking; migration 0006 made that query a function, which every
other writer uses. The erasure now calls it too, so the rule lives in one place, and finds the
person's future visits by ``starts_at`` (migration 0007) instead of ``lower(period)``.

The function is rebuilt from migration 0004's text; each replaced fragment must be found, so
a change to that text cannot slip through unnoticed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the copy: from its first line to the alias that closes it
RECIPIENTS_COPY_STARTS = "      FROM (SELECT m.account_id, a.locale FROM memberships m"
RECIPIENTS_COPY_ENDS = ") r\n"
RECIPIENTS_CALL = "      FROM pz_booking_recipients(v_row.business_id, v_row.staff_id) r\n"
COMMENT_BEFORE = "    -- the same people app.domain.outbox.business_recipients names\n"
COMMENT_AFTER = "    -- the people told of every booking change (pz_booking_recipients)\n"
FUTURE_BY_PERIOD = "AND lower(b.period) > p_now"
FUTURE_BY_START = "AND b.starts_at > p_now"


def _original() -> str:
    before = importlib.import_module("app.db.migrations.versions.0004_privacy_rights")
    return str(before.ERASE_SQL).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _replace_once(sql: str, old: str, new: str) -> str:
    if sql.count(old) != 1:
        raise RuntimeError(f"erase_account_data: expected once in 0004's text: {old!r}")
    return sql.replace(old, new)


def upgrade() -> None:
    sql = _original()
    start = sql.index(RECIPIENTS_COPY_STARTS)
    end = sql.index(RECIPIENTS_COPY_ENDS, start) + len(RECIPIENTS_COPY_ENDS)
    copy = sql[start:end]
    if "UNION" not in copy or "FROM staff s" not in copy or copy.count(") r") != 1:
        raise RuntimeError(f"erase_account_data: not the recipients query: {copy!r}")
    sql = sql[:start] + RECIPIENTS_CALL + sql[end:]
    sql = _replace_once(sql, COMMENT_BEFORE, COMMENT_AFTER)
    sql = _replace_once(sql, FUTURE_BY_PERIOD, FUTURE_BY_START)
    op.execute(sql)


def downgrade() -> None:
    op.execute(_original())
