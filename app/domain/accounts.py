"""Accounts: found or created from a validated sign-in, never from unsigned data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, set_context
from app.domain.errors import Unauthorized
from app.i18n import LOCALES, set_locale
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


# Row-level security shows an account only to a transaction acting for it, so a sign-in finds
# (or makes) the account through SECURITY DEFINER functions that return its id and no more.
_FOR_TELEGRAM = text(
    "SELECT account_id, created FROM pz_account_for_telegram(:telegram_id, :name, :allows, :locale)"
)
_BY_TELEGRAM = text("SELECT pz_account_by_telegram(:telegram_id)")
_CHOSEN_LOCALE = text("SELECT pz_account_chosen_locale(:telegram_id)")


async def account_from_telegram(session: AsyncSession, init: InitData) -> tuple[Account, bool]:
    """The account of a Telegram user (created on first sight); returns (account, created).
    The transaction acts for that account from here on."""
    user = init.user
    name = " ".join(p for p in (user.first_name, user.last_name) if p).strip() or None
    found = (
        await session.execute(
            _FOR_TELEGRAM,
            {
                "telegram_id": user.id,
                "name": name,
                "allows": bool(user.allows_write_to_pm),
                "locale": user.language_code if user.language_code in LOCALES else "ru",
            },
        )
    ).one()
    await set_context(session, account_id=found.account_id)
    account = await live_account(session, found.account_id)
    if account is None:  # erased between the two statements: as if never seen
        raise Unauthorized()
    if not found.created:
        for column, value in telegram_changes(
            init, allows_write_to_pm=account.allows_write_to_pm, locale=account.locale,
            locale_chosen=account.locale_chosen,
        ).items():  # fmt: skip
            setattr(account, column, value)
    return account, bool(found.created)


_SET_BOT_REACHABLE = text(
    "UPDATE accounts SET allows_write_to_pm = :reachable WHERE id = :a "
    "AND deleted_at IS NULL AND allows_write_to_pm IS DISTINCT FROM :reachable"
)


async def set_bot_reachable(session: AsyncSession, telegram_id: int, reachable: bool) -> bool:
    """Telegram told us (webhook) the person started the bot, or blocked it: the bot may, or
    may no longer, write to them. Only an existing account changes; none is created here.
    Returns whether anything changed."""
    account_id = await session.scalar(_BY_TELEGRAM, {"telegram_id": telegram_id})
    if account_id is None:
        return False
    await set_context(session, account_id=account_id)
    result = await session.execute(_SET_BOT_REACHABLE, {"a": account_id, "reachable": reachable})
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AccountCard:
    """What pages show and check of the signed-in person (a snapshot, never a live row)."""

    id: int
    name: str | None
    phone: str | None
    email: str | None
    telegram_id: int | None
    locale: str
    locale_chosen: bool
    allows_write_to_pm: bool
    has_avatar: bool
    email_verified: bool = False

    @property
    def avatar(self) -> bool:
        return self.has_avatar


def card_of(account: Account) -> AccountCard:
    return AccountCard(
        id=account.id, name=account.name, phone=account.phone, email=account.email,
        telegram_id=account.telegram_id, locale=account.locale,
        locale_chosen=account.locale_chosen, allows_write_to_pm=account.allows_write_to_pm,
        has_avatar=account.avatar is not None,
        email_verified=account.email_verified_at is not None,
    )  # fmt: skip


async def live_account(session: AsyncSession, account_id: int) -> Account | None:
    """The account, unless it was deleted."""
    return (
        await session.execute(
            select(Account).where(Account.id == account_id, Account.deleted_at.is_(None))
        )
    ).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class ByTelegram:
    """A client who signed the request with Telegram's ``initData`` (already validated); their
    account is found, or created on first sight, by the Telegram id."""

    init: InitData


@dataclass(frozen=True, slots=True)
class ByAccount:
    """A signed-in client whose account is known (a Mini App session)."""

    account_id: int


Client = ByTelegram | ByAccount


async def act_as_client(session: AsyncSession, by: Client) -> int:
    """The client's account id, with the transaction acting for them from here on. A Telegram
    user seen for the first time gets an account; their language applies (their saved choice,
    else Telegram's) over the browser's."""
    if isinstance(by, ByAccount):
        await set_context(session, account_id=by.account_id)
        return by.account_id
    account, _created = await account_from_telegram(session, by.init)
    if account.locale_chosen or by.init.user.language_code:
        set_locale(account.locale)
    return account.id


async def telegram_locale(db: Database, init: InitData) -> str | None:
    """The language a Telegram user reads public pages in: their saved choice, else Telegram's."""
    async with db.transaction() as session:
        chosen = await session.scalar(_CHOSEN_LOCALE, {"telegram_id": init.user.id})
    code = (chosen or init.user.language_code or "").split("-")[0].lower()
    return code if code in LOCALES else None


async def remember_bot_reachable(db: Database, telegram_id: int, reachable: bool) -> bool:
    """``set_bot_reachable`` in a transaction of its own (the webhook's entry point)."""
    async with db.transaction() as session:
        return await set_bot_reachable(session, telegram_id, reachable)
