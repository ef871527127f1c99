"""Publishing privacy-policy versions (policy 11.1, 3.1): a published version's text and digest
never change — ``pozapisi db upgrade`` refuses and says why, and the database refuses whoever
tries — a material version is published only while its 30 days' notice can still be given, and
from its effective date (not its publication) a person's older consent no longer lets them book.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import yaml

from app.db import bootstrap, migrate
from app.db.bootstrap import DatabaseUrls
from app.db.policy_versions import (
    PolicyFileVersion,
    PolicyVersionError,
    check_publication,
    policy_today,
)
from app.db.session import Database
from app.db.urls import to_libpq
from app.domain.consent import current_policy, has_valid_consent
from landing_hooks import landing
from tests.conftest import BOT_TOKEN, ROOT, SECRET_KEY, ServerHandle

pytestmark = pytest.mark.policy("11.1")

LANGS = ("en", "ru", "kk")


@dataclass
class VersionsFile:
    """A versions file of the test's own, with its texts (``POLICY_VERSIONS_FILE``)."""

    root: Path
    entries: list[dict[str, Any]]

    @property
    def path(self) -> Path:
        return self.root / "policy" / "versions.yml"

    def text_of(self, version: str, lang: str) -> Path:
        return self.root / "landing" / lang / "privacy" / f"{version}.md"

    def add(self, version: str, *, published: date, effective: date, material: bool) -> None:
        for lang in LANGS:
            self.text_of(version, lang).parent.mkdir(parents=True, exist_ok=True)
            self.text_of(version, lang).write_text(f"# {version} ({lang})\n", encoding="utf-8")
        self.entries.append(
            {
                "version": version, "published_at": published.isoformat(),
                "effective_at": effective.isoformat(), "material": material,
                "purposes": ["booking", "notifications"],
                "summary": {lang: f"What changed in {version} ({lang})" for lang in LANGS},
                "files": {lang: f"landing/{lang}/privacy/{version}.md" for lang in LANGS},
            }
        )  # fmt: skip
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"current": self.entries[0]["version"], "versions": self.entries}
        self.path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.fixture
async def owner_db(main_server: ServerHandle) -> DatabaseUrls:
    return await main_server.create_database()


@pytest.fixture
def versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VersionsFile:
    file = VersionsFile(tmp_path, [])
    monkeypatch.setenv("POLICY_VERSIONS_FILE", str(file.path))
    return file


@pytest.fixture
async def owner(owner_db: DatabaseUrls) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(to_libpq(owner_db.owner))
    yield conn
    await conn.close()


async def digests(conn: asyncpg.Connection, version: str) -> dict[str, str]:
    found: dict[str, str] = json.loads(
        await conn.fetchval("SELECT digests FROM policy_versions WHERE version = $1", version)
    )
    return found


async def test_db_upgrade_refuses_to_change_a_published_text_and_says_why(
    owner_db: DatabaseUrls, owner: asyncpg.Connection, versions: VersionsFile
) -> None:
    today = policy_today()
    versions.add("published", published=today - timedelta(days=1), effective=today,
                 material=False)  # fmt: skip
    await bootstrap.sync_policy_versions(owner_db.owner)
    published = await digests(owner, "published")

    versions.text_of("published", "ru").write_text("# a typo fixed in place\n", encoding="utf-8")
    with pytest.raises(PolicyVersionError) as refused:
        await bootstrap.sync_policy_versions(owner_db.owner)
    message = str(refused.value)
    assert "version published was published on" in message and "cannot change" in message
    assert "the ru text" in message and "the en text" not in message
    assert "as a new version" in message
    assert await digests(owner, "published") == published  # nothing was written

    # `pozapisi db upgrade` itself: the message, and a failure status
    env = {"POZAPISI_ENV": "test", "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "SECRET_KEY": SECRET_KEY,
           "DATABASE_URL": owner_db.owner, "POLICY_VERSIONS_FILE": str(versions.path),
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "app.cli", "db", "upgrade"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "version published was published on" in done.stderr
    assert "database is up to date" not in done.stdout
    assert await digests(owner, "published") == published

    # nor may its dates or summary move once people may have been told them
    versions.text_of("published", "ru").write_text("# published (ru)\n", encoding="utf-8")
    versions.entries[0]["summary"]["kk"] = "Басқа мәтін"
    versions.entries[0]["effective_at"] = (today + timedelta(days=1)).isoformat()
    versions.save()
    with pytest.raises(PolicyVersionError, match=r"\(effective_at, summary differ"):
        await bootstrap.sync_policy_versions(owner_db.owner)


async def test_a_version_announced_for_a_later_day_may_be_corrected_until_then(
    owner_db: DatabaseUrls, owner: asyncpg.Connection, versions: VersionsFile
) -> None:
    today = policy_today()
    tomorrow = today + timedelta(days=1)
    versions.add("early", published=tomorrow, effective=tomorrow, material=False)
    await bootstrap.sync_policy_versions(owner_db.owner)
    before = await digests(owner, "early")
    versions.text_of("early", "kk").write_text("# түзетілген\n", encoding="utf-8")
    await bootstrap.sync_policy_versions(owner_db.owner)
    after = await digests(owner, "early")
    assert after["kk"] != before["kk"] and after["ru"] == before["ru"]


async def test_the_database_refuses_to_change_or_delete_a_published_version(
    owner: asyncpg.Connection,
) -> None:
    """Even the tables' owner, writing SQL by hand, cannot rewrite what people consented to."""
    today = policy_today()
    insert = (
        "INSERT INTO policy_versions (version, digests, purposes, published_at, effective_at, "
        "material, summary) VALUES ($1, '{\"ru\": \"aa\"}', '{booking}', $2, $2, false, '{}')"
    )
    await owner.execute(insert, "old", today - timedelta(days=3))
    await owner.execute(insert, "next", today + timedelta(days=3))
    for change in (
        "UPDATE policy_versions SET digests = '{\"ru\": \"bb\"}' WHERE version = 'old'",
        "UPDATE policy_versions SET summary = '{\"ru\": \"x\"}' WHERE version = 'old'",
        "UPDATE policy_versions SET purposes = '{booking,billing}' WHERE version = 'old'",
        "UPDATE policy_versions SET effective_at = effective_at + 40 WHERE version = 'old'",
        "DELETE FROM policy_versions WHERE version = 'old'",
    ):
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError,
            match=r"policy version old was published on .*: its text and digest cannot change",
        ):
            await owner.execute(change)
    assert json.loads(await owner.fetchval("SELECT digests FROM policy_versions "
                                           "WHERE version = 'old'")) == {"ru": "aa"}  # fmt: skip
    # writing the same values again changes nothing and is no change (db upgrade does it)
    await owner.execute("UPDATE policy_versions SET digests = digests WHERE version = 'old'")
    # before its publication day a version may still be corrected, or withdrawn
    await owner.execute("UPDATE policy_versions SET digests = '{\"ru\": \"cc\"}' "
                        "WHERE version = 'next'")  # fmt: skip
    await owner.execute("DELETE FROM policy_versions WHERE version = 'next'")


def _version(
    name: str, *, published: date, effective: date, material: bool = True
) -> PolicyFileVersion:
    return PolicyFileVersion(
        version=name, published_at=published, effective_at=effective, material=material,
        purposes=["booking"], digests={"ru": "aa"}, summary={},
    )  # fmt: skip


def test_a_material_version_is_published_only_while_30_days_notice_can_be_given() -> None:
    today = date(2027, 3, 1)
    check: Callable[..., None] = check_publication
    check({}, [_version("ok", published=today, effective=today + timedelta(days=30))],
          today=today, anyone_to_tell=True)  # fmt: skip
    with pytest.raises(PolicyVersionError) as refused:
        check({}, [_version("late", published=today, effective=today + timedelta(days=29))],
              today=today, anyone_to_tell=True)  # fmt: skip
    assert "told 30 days ahead" in str(refused.value) and "2027-03-31" in str(refused.value)
    # back-dating published_at does not help: the notice starts the day it reaches the database
    backdated = _version("back", published=today - timedelta(days=10),
                         effective=today + timedelta(days=25))  # fmt: skip
    with pytest.raises(PolicyVersionError, match="set published_at to 2027-03-01"):
        check({}, [backdated], today=today, anyone_to_tell=True)
    # announced for a later publication day: 30 days from that day
    early = _version("early", published=today + timedelta(days=5),
                     effective=today + timedelta(days=35))  # fmt: skip
    check({}, [early], today=today, anyone_to_tell=True)
    # a non-material version may take effect at once
    check({}, [_version("minor", published=today, effective=today, material=False)],
          today=today, anyone_to_tell=True)  # fmt: skip


def test_a_material_version_already_in_force_only_where_nobody_is_to_be_told() -> None:
    today = date(2027, 3, 1)
    history = _version("history", published=today - timedelta(days=100),
                       effective=today - timedelta(days=60))  # fmt: skip
    # a new installation, which has nobody yet, starts with the whole history
    check_publication({}, [history], today=today, anyone_to_tell=False)
    # where people are, they were never told: refused
    with pytest.raises(PolicyVersionError, match="version history is a material change"):
        check_publication({}, [history], today=today, anyone_to_tell=True)
    # once in the database, it is simply there on later upgrades
    stored = {"history": {"digests": {"ru": "aa"}, "purposes": ["booking"],
                          "published_at": history.published_at,
                          "effective_at": history.effective_at, "material": True,
                          "summary": {}}}  # fmt: skip
    check_publication(stored, [history], today=today, anyone_to_tell=True)


@pytest.mark.policy("3.1")
async def test_consent_to_the_old_version_stops_counting_at_the_effective_date(
    owner_db: DatabaseUrls, owner: asyncpg.Connection
) -> None:
    """Publication changes nothing for booking; the effective date does. Before it the person
    keeps booking under their consent; from it they are asked to accept the new version."""
    old = await owner.fetchval("SELECT version FROM policy_versions ORDER BY effective_at DESC")
    person: int = await owner.fetchval("INSERT INTO accounts (locale) VALUES ('ru') RETURNING id")
    await owner.execute(
        "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
        "VALUES ($1, $2, '{booking,notifications}', 'granted', 'mini_app')",
        person, old,
    )  # fmt: skip
    today = policy_today()
    effective = today + timedelta(days=30)
    await owner.execute(
        "INSERT INTO policy_versions (version, digests, purposes, published_at, effective_at, "
        "material) VALUES ('v2', '{}', '{booking,notifications}', $1, $2, true)",
        today, effective,
    )  # fmt: skip
    db = Database(owner_db.app)
    try:
        async with db.transaction(account_id=person) as session:
            for day, valid, in_force in (
                (today, True, old),  # published today
                (effective - timedelta(days=1), True, old),
                (effective, False, "v2"),
                (effective + timedelta(days=90), False, "v2"),
            ):
                assert await has_valid_consent(session, person, today=day) is valid, day
                assert (await current_policy(session, today=day)).version == in_force
        await owner.execute(
            "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
            "VALUES ($1, 'v2', '{booking,notifications}', 'granted', 'mini_app')",
            person,
        )
        async with db.transaction(account_id=person) as session:
            assert await has_valid_consent(session, person, today=effective)
    finally:
        await db.dispose()


async def test_going_down_to_0022_removes_the_notices_and_restores_the_withdrawal_gate(
    owner_db: DatabaseUrls,
) -> None:
    source = "SELECT string_agg(prosrc, '') FROM pg_proc WHERE proname = $1"
    objects = (
        "SELECT to_regclass('policy_notices') IS NOT NULL, "
        "to_regclass('policy_announcements') IS NOT NULL, "
        "EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'policy_versions_published_immutable'), "
        "EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'pz_policy_notice_batch'), "
        "EXISTS (SELECT 1 FROM information_schema.columns "
        "        WHERE table_name = 'policy_versions' AND column_name = 'summary')"
    )

    async def state() -> tuple[tuple[bool, ...], bool, bool]:
        conn = await asyncpg.connect(to_libpq(owner_db.owner))
        try:
            found = tuple(await conn.fetchrow(objects))
            gate = "policy.notice" in await conn.fetchval(source, "pz_notification_blocked")
            withdrawal = "policy.notice" in await conn.fetchval(source, "pz_consent_withdrawal")
            return found, gate, withdrawal
        finally:
            await conn.close()

    assert await state() == ((True,) * 5, True, True)
    await asyncio.to_thread(migrate.downgrade, owner_db.owner, "0022")
    assert await state() == ((False,) * 5, False, False)
    await asyncio.to_thread(migrate.upgrade, owner_db.owner)
    assert await state() == ((True,) * 5, True, True)


def test_the_policy_day_is_the_kazakh_day_the_landing_uses() -> None:
    """A version takes effect at midnight in Kazakhstan (UTC+5), when the landing starts showing
    it as current; the policy in force, the consent check before a booking and the notices
    follow the same day, not the UTC one five hours later."""
    assert policy_today(datetime(2027, 1, 14, 18, 59, 59, tzinfo=UTC)) == date(2027, 1, 14)
    assert policy_today(datetime(2027, 1, 14, 19, 0, tzinfo=UTC)) == date(2027, 1, 15)
    almaty = datetime(2027, 1, 15, 0, 0, tzinfo=ZoneInfo("Asia/Almaty"))
    assert policy_today(almaty) == date(2027, 1, 15)
    assert landing.KAZAKHSTAN_TZ.utcoffset(None) == timedelta(hours=5)
