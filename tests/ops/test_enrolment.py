"""Operators are enrolled from the command line, and their second factor is out of the app's
reach (policy 6.3): the runtime role reads neither the TOTP secret nor the recovery codes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import httpx
import pyotp
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.bootstrap import DatabaseUrls
from app.db.session import Database
from app.domain.operators import unseal
from tests.ops.conftest import OperatorLogin, password_step, sign_in

pytestmark = pytest.mark.policy("6.3")
ROOT = Path(__file__).resolve().parents[2]
SECRET = "enrolment-test-secret-key-0123456789"


def run_cli(owner_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TEST_DATABASE"))}
    env.update({"DATABASE_URL": owner_url, "POZAPISI_ENV": "test", "SECRET_KEY": SECRET,
                "DATA_DIR": str(data_dir)})  # fmt: skip
    return subprocess.run(  # the timeout only catches a hang
        [sys.executable, "-m", "app.cli", "ops", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


async def test_add_operator_prints_the_second_factor_once(
    database: DatabaseUrls, owner_session: AsyncSession, tmp_path: Path
) -> None:
    email = f"new-op-{uuid4().hex[:8]}@pozapisi.kz"
    done = await asyncio.to_thread(
        run_cli, database.owner, tmp_path, "add-operator", email, "--role", "privacy"
    )
    assert done.returncode == 0, done.stderr
    [uri] = re.findall(r"otpauth://\S+", done.stdout)
    totp = pyotp.parse_uri(uri)
    codes = re.findall(r"^\s+([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})$", done.stdout, re.M)
    assert len(codes) == 10
    row = (
        await owner_session.execute(
            text(
                "SELECT o.role, o.totp_secret, a.is_operator, a.password_hash FROM operators o "
                "JOIN accounts a ON a.id = o.account_id WHERE a.email = :e"
            ),
            {"e": email},
        )
    ).one()
    stored = (
        await owner_session.execute(
            text(
                "SELECT code_hash FROM operator_recovery_codes c JOIN accounts a "
                "ON a.id = c.account_id WHERE a.email = :e"
            ),
            {"e": email},
        )
    ).scalars().all()  # fmt: skip
    await owner_session.commit()
    assert (row.role, row.is_operator) == ("privacy", True)
    assert row.password_hash.startswith("$2b$12$")  # a first password, printed once
    # sealed: the secret is not in the row, and opens with the server's key only
    assert totp.secret.encode() not in bytes(row.totp_secret)
    assert unseal(SECRET, bytes(row.totp_secret)) == totp.secret
    assert len(stored) == 10 and not any(code.replace("-", "") in stored for code in codes)
    # a role that does not exist: refused, nothing enrolled
    wrong = await asyncio.to_thread(
        run_cli, database.owner, tmp_path, "add-operator", f"x-{email}", "--role", "root"
    )
    assert wrong.returncode != 0


async def test_the_app_role_cannot_read_the_second_factor(
    db: Database, support: OperatorLogin
) -> None:
    for query in ("SELECT totp_secret FROM operators", "SELECT totp_last_step FROM operators",
                  "SELECT code_hash FROM operator_recovery_codes"):  # fmt: skip
        with pytest.raises(DBAPIError, match="permission denied"):
            async with db.transaction(account_id=support.account_id) as session:
                await session.execute(text(query))
    # what it may read: its own role, and no other operator's row
    async with db.transaction(account_id=support.account_id) as session:
        rows = (await session.execute(text("SELECT account_id, role FROM operators"))).all()
    assert [tuple(r) for r in rows] == [(support.account_id, "support")]
    # the sealed secret only for the operator the transaction acts for
    async with db.transaction(account_id=support.account_id + 10_000_000) as session:
        other = await session.scalar(
            text("SELECT pz_operator_totp_secret(:a)"), {"a": support.account_id}
        )
    assert other is None


async def test_disable_operator_ends_the_console_at_once(
    database: DatabaseUrls, client: httpx.AsyncClient, support: OperatorLogin, tmp_path: Path
) -> None:
    await sign_in(client, support)
    env_dir = tmp_path
    done = await asyncio.to_thread(
        run_cli, database.owner, env_dir, "disable-operator", support.email
    )
    assert done.returncode == 0, done.stderr
    assert (await client.get("/ops/", follow_redirects=False)).status_code == 303
    client.cookies.clear()
    _answer, ticket = await password_step(client, support.email, support.password)
    assert ticket is None  # the password no longer leads to the second factor
    again = await asyncio.to_thread(
        run_cli, database.owner, env_dir, "disable-operator", support.email
    )
    assert again.returncode != 0  # no active operator has the address any more
