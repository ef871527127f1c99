"""Operators see the last good backup on the console (policy 6.2, 10.5): its time and size, and
a failure since without its message."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.db.bootstrap import DatabaseUrls
from app.domain import backups
from tests.conftest import make_settings
from tests.ops.conftest import OperatorLogin, sign_in

pytestmark = pytest.mark.policy("6.2")


async def test_the_console_shows_the_last_good_backup(
    database: DatabaseUrls, tmp_path: Path, client: httpx.AsyncClient, support: OperatorLogin
) -> None:
    from app.main import create_app

    folder = tmp_path / "backups"
    folder.mkdir()
    made = datetime(2026, 12, 6, 2, 23, 5, tzinfo=UTC)
    (folder / backups.backup_name(made)).write_bytes(b"PZBACKUP" * 1000)
    key = base64.b64encode(bytes(range(7, 39))).decode()
    settings = make_settings(BACKUP_DIR=str(folder), BACKUP_KEY=key)
    async with AsyncTestClient(
        create_app(settings, app_url=database.app), base_url="https://testserver.local"
    ) as http:
        assert (await http.get("/ops/backups", follow_redirects=False)).status_code == 303
        await sign_in(http, support)
        page = (await http.get("/ops/backups")).text
        assert "2026-12-06T02:23:05+00:00" in page and "8,000 bytes" in page
        assert "Failed since" not in page
        failed = made + timedelta(days=1)
        (folder / backups.FAILURE_FILE).write_text(
            json.dumps({"at": failed.isoformat(), "error": "pg_dump failed: /secret/path"})
        )
        page = (await http.get("/ops/backups")).text
        assert failed.isoformat() in page and "/secret/path" not in page
    # the test app's own settings configure no backups: the page says so
    await sign_in(client, support, support.recovery_codes[0])
    assert "not configured" in (await client.get("/ops/backups")).text
