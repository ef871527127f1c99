"""``POST /telegram/webhook``: updates from Telegram for the PoZapisi bot.

Telegram sends the secret given to ``setWebhook`` in ``X-Telegram-Bot-Api-Secret-Token``; it is
compared in constant time, and without a configured secret the webhook is off (403). What the
bot does:

* ``/start`` → a greeting with a button that opens the Mini App; ``/start b_<slug>`` (a deep
  link a business shares) opens that business;
* starting or blocking the bot updates whether it may write to that person (an existing
  account only), so reminders go by Telegram, or by SMS/e-mail instead.

The reply goes straight to the Bot API (the person is waiting for it); a failure is logged and
the update still acknowledged, so Telegram does not redeliver it in a loop.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response, post
from sqlalchemy.exc import SQLAlchemyError

from app.domain import catalog
from app.domain.accounts import remember_bot_reachable
from app.i18n import N_, gettext, pick_locale, use_locale
from app.integrations.telegram_bot import BotApiError, Button, TelegramBot, escape_html
from app.integrations.tls import outbound_tls_context
from app.routes.deps import DB, AppSettings
from app.settings import Settings

log = structlog.get_logger("pozapisi.telegram")

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name
DEEP_LINK = re.compile(r"^b_([a-z0-9][a-z0-9-]{1,62})$")
REPLY_TIMEOUT_S = 5.0


class TgUser(msgspec.Struct):
    id: int
    language_code: str | None = None


class TgChat(msgspec.Struct):
    id: int
    type: str = "private"


class TgMessage(msgspec.Struct):
    chat: TgChat
    sender: TgUser | None = msgspec.field(name="from", default=None)
    text: str | None = None


class TgMemberStatus(msgspec.Struct):
    status: str


class TgMemberUpdate(msgspec.Struct):
    chat: TgChat
    sender: TgUser = msgspec.field(name="from")
    new_chat_member: TgMemberStatus


class TgUpdate(msgspec.Struct):
    update_id: int
    message: TgMessage | None = None
    my_chat_member: TgMemberUpdate | None = None


def _refuse(status: int) -> Response[dict[str, Any]]:
    return Response({"ok": False}, status_code=status, headers={"Cache-Control": "no-store"})


def _authentic(request: Request[Any, Any, Any], settings: Settings) -> int | None:
    """None when the request carries our secret; else the status to refuse it with."""
    if not settings.telegram_webhook_secret or not settings.telegram_bot_token:
        return 403  # webhook not configured: nothing here to talk to
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), settings.telegram_webhook_secret.encode()):
        return 401
    return None


def _start_parameter(text: str) -> str | None:
    command, _, parameter = text.strip().partition(" ")
    if command.split("@", 1)[0] != "/start":
        return None
    return parameter.strip()


async def _greet(
    request: Request[Any, Any, Any], db: DB, settings: Settings, message: TgMessage, parameter: str
) -> None:
    match = DEEP_LINK.match(parameter)
    slug = match.group(1) if match else None
    name = await catalog.business_name(db, slug) if slug else None
    base = settings.public_base_url
    locale = pick_locale(telegram_language=message.sender.language_code if message.sender else None)
    with use_locale(locale):
        if name is not None:
            text = "👋 " + gettext(N_("Book a visit to %(business)s in a few taps.")) % {
                "business": f"<b>{escape_html(name)}</b>"
            }
            button = Button(
                gettext(N_("Book now")),
                base + request.app.route_reverse("miniapp:business", slug=slug),
            )
        else:
            text = "👋 " + gettext(
                N_("Welcome to PoZapisi! Book a salon, barber shop or clinic in a few taps.")
            )
            button = Button(gettext(N_("Open PoZapisi")), f"{base}/")  # the site root
    if not button.url.startswith("https://"):
        button = Button(button.label, button.url, web_app=False)  # Telegram opens only https apps
    bot = TelegramBot(
        settings.telegram_api_url,
        settings.telegram_bot_token,
        timeout=REPLY_TIMEOUT_S,
        tls=outbound_tls_context(settings.outbound_tls_min),
    )
    try:
        await bot.send_message(message.chat.id, text, button)
    except BotApiError as exc:
        log.warning("telegram.start_reply_failed", reason=exc.reason)
    finally:
        await bot.aclose()


async def _remember_reachability(db: DB, telegram_id: int, reachable: bool) -> None:
    try:
        await remember_bot_reachable(db, telegram_id, reachable)
    except SQLAlchemyError:
        log.exception("telegram.reachability_not_saved")


@post("/telegram/webhook", include_in_schema=False, status_code=200, name="telegram:webhook")
async def telegram_webhook(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings
) -> Response[dict[str, Any]]:
    refused = _authentic(request, settings)
    if refused is not None:
        return _refuse(refused)
    try:
        update = msgspec.json.decode(await request.body(), type=TgUpdate)
    except msgspec.DecodeError:
        return _refuse(400)
    message = update.message
    if message is not None and message.chat.type == "private" and message.text:
        parameter = _start_parameter(message.text)
        if parameter is not None:
            if message.sender is not None:
                await _remember_reachability(db, message.sender.id, True)
            await _greet(request, db, settings, message, parameter)
    member = update.my_chat_member
    if member is not None and member.chat.type == "private":
        status = member.new_chat_member.status
        if status in ("kicked", "member"):
            await _remember_reachability(db, member.sender.id, status == "member")
    return Response({"ok": True}, headers={"Cache-Control": "no-store"})
