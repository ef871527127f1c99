"""Accounts: found or created from a validated sign-in, never from unsigned data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.i18n import LOCALES
from app.integrations.telegram_webapp import InitData
from app.models import Account


def telegram_changes(
    init: InitData, *, allows_write_to_pm: bool, locale: str, locale_chosen: bool
) -> dict[str, Any]:
    """What a validated Telegram sign-in changes on an existing account: the bot may now write
    to the person (never the reverse: only the webhook learns of a block), and Telegram's
    language while the person has chosen none."""
    changes: dict[str, Any] = {}
    if init.user.allows_write_to_pm and not allows_write_to_pm:
        changes["allows_write_to_pm"] = True
    language = init.user.language_code
    if not locale_chosen and language in LOCALES and language != locale:
        changes["locale"] = language
    return changes


async def account_from_telegram(session: AsyncSession, init: InitData) -> tuple[Account, bool]:
    """The account of a Telegram user (created on first sight); returns (account, created)."""
    user = init.user
    account = (
        await session.execute(
            select(Account).where(Account.telegram_id == user.id, Account.deleted_at.is_(None))
        )
    ).scalar_one_or_none()
    allows = bool(user.allows_write_to_pm)
    if account is not None:
        for column, value in telegram_changes(
            init, allows_write_to_pm=account.allows_write_to_pm, locale=account.locale,
            locale_chosen=account.locale_chosen,
        ).items():  # fmt: skip
            setattr(account, column, value)
        return account, False
    name = " ".join(p for p in (user.first_name, user.last_name) if p).strip() or None
    account = Account(
        telegram_id=user.id,
        name=name[:120] if name else None,
        allows_write_to_pm=allows,
        locale=user.language_code if user.language_code in LOCALES else "ru",
    )
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError:
        # a concurrent first request created it; use that one
        session.expunge(account)
        account = (
            await session.execute(select(Account).where(Account.telegram_id == user.id))
        ).scalar_one()
        return account, False
    return account, True


_SET_BOT_REACHABLE = text(
    "UPDATE accounts SET allows_write_to_pm = :reachable WHERE telegram_id = :telegram_id "
    "AND deleted_at IS NULL AND allows_write_to_pm IS DISTINCT FROM :reachable"
)


async def set_bot_reachable(session: AsyncSession, telegram_id: int, reachable: bool) -> bool:
    """Telegram told us (webhook) the person started the bot, or blocked it: the bot may, or
    may no longer, write to them. Only an existing account changes; none is created here.
    Returns whether anything changed."""
    result = await session.execute(
        _SET_BOT_REACHABLE, {"telegram_id": telegram_id, "reachable": reachable}
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
