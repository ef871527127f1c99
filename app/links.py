"""The few page addresses that leave the app: links in notifications, written by workers that
have no router to ask. The routes declare their paths with these same templates
(``app.routes.miniapp``), so a link and the page it opens cannot drift apart."""

from __future__ import annotations

APP = "/app"  # the Mini App's router (app.main)
BUSINESS_PAGE = "/b/{slug:str}"
BOOKING_PAGE = "/bookings/{booking_id:int}"


def _fill(template: str, **params: object) -> str:
    path = template
    for name, value in params.items():
        for kind in ("str", "int"):
            path = path.replace("{" + f"{name}:{kind}" + "}", str(value))
    return path


def business_page(base: str, slug: str) -> str:
    return base + APP + _fill(BUSINESS_PAGE, slug=slug)


def booking_page(base: str, booking_id: int) -> str:
    return base + APP + _fill(BOOKING_PAGE, booking_id=booking_id)


def telegram_mini_app(bot_username: str, slug: str) -> str:
    """The Telegram link that opens the bot's Mini App on a business: Telegram starts the app at
    its main address with ``tgWebAppStartParam=<slug>`` (``app.routes.pages`` sends it on to
    the business's page). Slugs fit Telegram's start parameter (letters, digits, -, _)."""
    return f"https://t.me/{bot_username.lstrip('@')}?startapp={slug}"
