"""DATABASE_POOLER, DATABASE_LISTEN_URL: read and checked at start, with messages that say what
to set (docs/deploy.md "PgBouncer")."""

from __future__ import annotations

import pytest

from app.db.session import pooler_connect_args
from app.settings import SettingsError, load_settings
from workers.queue import session_problem

POOLED = "postgresql://pozapisi_worker@127.0.0.1:6432/pozapisi"
DIRECT = "postgresql://pozapisi_worker@127.0.0.1:5432/pozapisi"


def test_no_pooler_by_default() -> None:
    settings = load_settings({})
    assert settings.database_pooler == "none" and not settings.transaction_pooler
    assert settings.database_listen_url is None
    assert pooler_connect_args(settings.transaction_pooler) == {}
    assert session_problem(settings, POOLED) is None


@pytest.mark.parametrize("value", ["session", "pgbouncer", "yes"])
def test_an_unknown_pooler_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_POOLER"):
        load_settings({"DATABASE_POOLER": value})


def test_a_listen_url_must_be_postgresql() -> None:
    with pytest.raises(SettingsError, match="DATABASE_LISTEN_URL"):
        load_settings({"DATABASE_LISTEN_URL": "redis://127.0.0.1:6379/0"})


def test_transaction_pooling_turns_every_prepared_statement_cache_off() -> None:
    settings = load_settings({"DATABASE_POOLER": "Transaction"})
    assert settings.transaction_pooler
    assert pooler_connect_args(True) == {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
    }


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "QUEUE_URL"),  # SAQ's Postgres queue on the pooled worker URL
        ({"QUEUE_URL": POOLED}, "QUEUE_URL"),  # … named again
        ({"QUEUE_URL": "redis://127.0.0.1:6379/0"}, "DATABASE_LISTEN_URL"),
        ({"QUEUE_URL": DIRECT}, "DATABASE_LISTEN_URL"),
        ({"QUEUE_URL": DIRECT, "DATABASE_LISTEN_URL": POOLED}, "DATABASE_LISTEN_URL"),
        ({"QUEUE_URL": "redis://127.0.0.1:6379/0", "DATABASE_LISTEN_URL": DIRECT}, None),
        ({"QUEUE_URL": DIRECT, "DATABASE_LISTEN_URL": DIRECT}, None),
    ],
)
def test_what_needs_a_session_must_not_go_through_the_pooler(
    env: dict[str, str], problem: str | None
) -> None:
    settings = load_settings({"DATABASE_POOLER": "transaction", **env})
    found = session_problem(settings, POOLED)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found
