"""The person's own account, as the Mini App's "My data" page shows and changes it (policy 8):
profile, language, contacts, devices, avatar, a copy of the data, consent and deletion.

Every function here is an entry point that owns its transaction, acting for the signed-in
account only (row-level security sees to the rest)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from ua_parser import parse as parse_user_agent

from app.db.session import Database
from app.domain import avatars, otp, privacy
from app.domain.accounts import live_account
from app.domain.audit import Actor, inet_or_none, user_agent_or_none
from app.domain.consent import has_valid_consent
from app.domain.errors import NotFound
from app.i18n import LOCALES


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A signed-in device as its owner sees it (policy 2.6: IP and user agent, for security)."""

    id: str
    created_at: datetime
    ip: str | None
    device: str | None


@lru_cache(maxsize=1024)
def device_of(user_agent: str | None) -> str | None:
    """``Telegram · Android · Samsung SM-A546E``: the app, system and device a user agent
    names, for a person to recognise their own devices; None when it names none of them."""
    if not user_agent:
        return None
    found = parse_user_agent(user_agent)
    parts = [
        found.user_agent.family if found.user_agent else None,
        found.os.family if found.os else None,
        found.device.family if found.device and found.device.family != "Other" else None,
    ]
    named = [p for p in dict.fromkeys(parts) if p and p != "Other"]
    return " · ".join(named) or None


_LIVE = text(
    "SELECT id, created_at, host(ip) AS ip, user_agent FROM sessions "
    "WHERE account_id = :a AND revoked_at IS NULL AND expires_at > :now "
    "ORDER BY created_at DESC, id"
)


async def live_sessions(
    session: AsyncSession, account_id: int, *, now: datetime | None = None
) -> list[LiveSession]:
    """The account's sessions that still open its pages, newest first."""
    rows = await session.execute(_LIVE, {"a": account_id, "now": now or datetime.now(UTC)})
    return [LiveSession(r.id, r.created_at, r.ip, device_of(r.user_agent)) for r in rows]


async def revoke_others(session: AsyncSession, account_id: int, keep: str) -> None:
    """Sign the account out everywhere but the session ``keep``."""
    await session.execute(
        text(
            "UPDATE sessions SET revoked_at = now() WHERE account_id = :a AND id <> :keep "
            "AND revoked_at IS NULL"
        ),
        {"a": account_id, "keep": keep},
    )


async def record_event(
    session: AsyncSession, account_id: int, event: str, *, ip: str | None, user_agent: str | None
) -> None:
    """A security event on the account, with where it came from (policy 2.6): shown in the
    person's data export, removed by retention after the account is deleted (7.2)."""
    await session.execute(
        text(
            "INSERT INTO security_events (account_id, event, ip, user_agent) "
            "VALUES (:a, :event, CAST(:ip AS inet), :ua)"
        ),
        {"a": account_id, "event": event, "ip": inet_or_none(ip),
         "ua": user_agent_or_none(user_agent)},
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MyData:
    consented: bool
    devices: list[LiveSession]


async def my_data(db: Database, account_id: int) -> MyData:
    async with db.transaction(account_id=account_id) as session:
        return MyData(
            await has_valid_consent(session, account_id),
            await live_sessions(session, account_id),
        )


async def rename(db: Database, account_id: int, name: str) -> None:
    """The name is optional (policy 2.1): blank clears it."""
    async with db.transaction(account_id=account_id) as session:
        account = await live_account(session, account_id)
        if account is None:
            raise NotFound()
        account.name = " ".join(name.split())[:120] or None


async def choose_locale(db: Database, account_id: int, locale: str) -> None:
    """The person's own choice of language beats Telegram's and the browser's."""
    if locale not in LOCALES:
        raise ValueError(locale)
    async with db.transaction(account_id=account_id) as session:
        account = await live_account(session, account_id)
        if account is None:
            raise NotFound()
        account.locale = locale
        account.locale_chosen = True


async def allow_bot_messages(db: Database, account_id: int) -> None:
    """The person allowed the bot to write to them in Telegram (``requestWriteAccess``)."""
    async with db.transaction(account_id=account_id) as session:
        account = await live_account(session, account_id)
        if account is not None and account.telegram_id is not None:
            account.allows_write_to_pm = True


async def set_telegram_phone(db: Database, account_id: int, raw_phone: str) -> None:
    """A phone Telegram vouches for (its signed ``requestContact`` data)."""
    async with db.transaction(account_id=account_id) as session:
        account = await live_account(session, account_id)
        if account is None:
            raise NotFound()
        await otp.set_verified_phone(session, account, raw_phone)


async def sign_out_others(db: Database, account_id: int, keep: str, *, actor: Actor) -> None:
    """Every other device's session ends at once; recorded as a security event (policy 2.6)."""
    async with db.transaction(account_id=account_id) as session:
        await revoke_others(session, account_id, keep)
        await record_event(
            session, account_id, "sessions.signed_out_others", ip=actor.ip,
            user_agent=actor.user_agent,
        )  # fmt: skip


async def request_contact_change(
    db: Database, account_id: int, *, channel: str, destination: str, actor: Actor, secret: str,
    locale: str,
) -> int:  # fmt: skip
    """A code goes to the new address first (policy 8.2); returns the challenge's id."""
    async with db.transaction(account_id=account_id) as session:
        return await otp.request_contact_change(
            session, account_id=account_id, channel=channel, destination=destination,
            ip=actor.ip, secret=secret, locale=locale,
        )  # fmt: skip


async def confirm_contact_change(
    db: Database, account_id: int, *, channel: str, challenge_id: int, destination: str,
    code: str, secret: str, actor: Actor,
) -> None:  # fmt: skip
    async with db.transaction(account_id=account_id) as session:
        await otp.confirm_contact_change(
            session, account_id=account_id, channel=channel, challenge_id=challenge_id,
            destination=destination, code=code, secret=secret, actor=actor,
        )  # fmt: skip


async def set_avatar(db: Database, account_id: int, data: bytes, *, actor: Actor) -> None:
    async with db.transaction(account_id=account_id) as session:
        await avatars.set_avatar(session, account_id, data, actor=actor)


async def remove_avatar(db: Database, account_id: int, *, actor: Actor) -> None:
    async with db.transaction(account_id=account_id) as session:
        account = await live_account(session, account_id)
        if account is not None and account.avatar is not None:
            await avatars.remove_avatar(session, account_id, actor=actor)


async def avatar_image(db: Database, account_id: int) -> bytes | None:
    async with db.transaction(account_id=account_id) as session:
        account = await live_account(session, account_id)
        return bytes(account.avatar) if account is not None and account.avatar else None


async def export(db: Database, account_id: int, *, actor: Actor) -> bytes:
    """A copy of everything held about the person (policy 8.1), as a ZIP of JSON and CSV."""
    async with db.transaction(account_id=account_id) as session:
        return await privacy.export_account(session, account_id, actor=actor)


async def withdraw_consent(db: Database, account_id: int, *, channel: str, actor: Actor) -> None:
    async with db.transaction(account_id=account_id) as session:
        await privacy.withdraw_consent(
            session, account_id, channel, actor.ip, actor.user_agent, actor=actor
        )


async def delete_account(db: Database, account_id: int, *, actor: Actor) -> None:
    """Erase the account (policy 8.3); its sessions end with it."""
    async with db.transaction(account_id=account_id) as session:
        await privacy.erase_account(session, account_id, actor=actor)
