"""What the relay needs to know about a batch of notifications, loaded in a handful of queries.

Rows carry ids, never copies of personal data, so a message always says what is true when it
is sent (the client's current language and contacts, the booking's current time and master).
Times are shown in the business's own time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.i18n import localized, money
from app.models.bookings import LIVE_STATUSES

# the weekday spelled out, as each language writes a date in a sentence (CLDR's order)
DAY_FORMATS = {"ru": "EEEE, d MMMM", "kk": "d MMMM, EEEE", "en": "EEEE, d MMMM"}
EXCERPT_CHARS = 300
SMS_NAME_CHARS = 20  # keeps a Cyrillic SMS within one 70-character part for most names

_ACCOUNTS = text(
    "SELECT id, phone, email, telegram_id, allows_write_to_pm, locale, deleted_at IS NOT NULL "
    "AS deleted FROM accounts WHERE id = ANY(:ids)"
)
# a business's SMS switch counts only on a plan with SMS (pz_plan_allows; app.domain.plans)
_BUSINESSES = text(
    "SELECT id, slug, name, timezone, address, notify_telegram, "
    "notify_sms AND pz_plan_allows(id, 'sms') AS notify_sms, notify_email "
    "FROM businesses WHERE id = ANY(:ids)"
)
_BOOKINGS = text(
    "SELECT b.id, b.business_id, b.public_code, b.status, lower(b.period) AS start_at, "
    "b.service_name, b.price_tiyn, b.cancel_reason, b.cancelled_by, st.name AS staff_name, "
    "c.name AS client_name, lower(prev.period) AS previous_start "
    "FROM bookings b JOIN staff st ON st.id = b.staff_id "
    "LEFT JOIN clients c ON c.id = b.client_id "
    "LEFT JOIN bookings prev ON prev.id = b.rescheduled_from_id "
    "WHERE b.id = ANY(:ids)"
)
_MESSAGES = text(
    "SELECT m.id, m.body, c.name AS client_name FROM messages m "
    "LEFT JOIN clients c ON c.id = m.client_id WHERE m.id = ANY(:ids)"
)
# the latest reminder of each booking that is already due (and not withdrawn): an earlier one
# still waiting, after downtime, is superseded by it
_LATEST_DUE_REMINDER = text(
    "SELECT booking_id, max(scheduled_at) AS latest FROM notifications "
    "WHERE event = 'booking.reminder' AND booking_id = ANY(:ids) AND scheduled_at <= :now "
    "AND status IN ('pending', 'sending', 'sent') GROUP BY booking_id"
)
# rows the person they are for may no longer get: they withdrew consent (policy 8.4); the rule
# is the database's one (app/db/sql/functions/pz_notification_blocked.sql)
_CONSENT_WITHDRAWN = text(
    "SELECT id FROM notifications WHERE id = ANY(:ids) "
    "AND pz_notification_blocked(account_id, event)"
)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    id: int
    phone: str | None
    email: str | None
    telegram_id: int | None
    allows_write_to_pm: bool
    locale: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class BusinessInfo:
    id: int
    slug: str
    name: str
    timezone: str
    address: str | None
    notify_telegram: bool
    notify_sms: bool
    notify_email: bool


@dataclass(frozen=True, slots=True)
class BookingInfo:
    id: int
    business_id: int
    public_code: str
    status: str
    start_at: datetime
    service_name: dict[str, str]
    price_tiyn: int
    cancel_reason: str | None
    cancelled_by: str | None
    staff_name: str
    client_name: str | None
    previous_start: datetime | None

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


@dataclass(frozen=True, slots=True)
class MessageInfo:
    id: int
    body: str
    client_name: str | None


@dataclass(slots=True)
class BatchContext:
    accounts: dict[int, AccountInfo] = field(default_factory=dict)
    businesses: dict[int, BusinessInfo] = field(default_factory=dict)
    bookings: dict[int, BookingInfo] = field(default_factory=dict)
    messages: dict[int, MessageInfo] = field(default_factory=dict)
    latest_due_reminder: dict[int, datetime] = field(default_factory=dict)
    consent_withdrawn: set[int] = field(default_factory=set)  # notification ids


def _ids(values: Iterable[Any]) -> list[int]:
    return sorted({int(v) for v in values if v is not None})


def message_id_of(payload: Mapping[str, Any]) -> int | None:
    value = payload.get("message_id")
    return value if isinstance(value, int) else None


async def load_batch(
    conn: AsyncConnection,
    *,
    account_ids: Iterable[int | None],
    business_ids: Iterable[int | None],
    booking_ids: Iterable[int | None],
    message_ids: Iterable[int | None],
    reminder_booking_ids: Iterable[int | None],
    now: datetime,
    notification_ids: Iterable[int] = (),
) -> BatchContext:
    ctx = BatchContext()
    bookings = _ids(booking_ids)
    if ids := _ids(account_ids):
        for row in await conn.execute(_ACCOUNTS, {"ids": ids}):
            ctx.accounts[row.id] = AccountInfo(**row._mapping)
    if bookings:
        for row in await conn.execute(_BOOKINGS, {"ids": bookings}):
            ctx.bookings[row.id] = BookingInfo(**row._mapping)
    businesses = set(_ids(business_ids)) | {b.business_id for b in ctx.bookings.values()}
    if businesses:
        for row in await conn.execute(_BUSINESSES, {"ids": sorted(businesses)}):
            ctx.businesses[row.id] = BusinessInfo(**row._mapping)
    if ids := _ids(message_ids):
        for row in await conn.execute(_MESSAGES, {"ids": ids}):
            ctx.messages[row.id] = MessageInfo(**row._mapping)
    if ids := _ids(reminder_booking_ids):
        for row in await conn.execute(_LATEST_DUE_REMINDER, {"ids": ids, "now": now}):
            ctx.latest_due_reminder[row.booking_id] = row.latest
    if ids := _ids(notification_ids):
        ctx.consent_withdrawn = set(
            (await conn.execute(_CONSENT_WITHDRAWN, {"ids": ids})).scalars()
        )
    return ctx


def shorten(value: str, limit: int = SMS_NAME_CHARS) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def moment_fields(moment: datetime, timezone: str, locale: str, prefix: str = "") -> dict[str, str]:
    """Date and time as people read them: in the business's zone and the reader's language."""
    local = moment.astimezone(ZoneInfo(timezone))
    return {
        f"{prefix}date": format_date(local, DAY_FORMATS.get(locale, "long"), locale=locale),
        f"{prefix}time": local.strftime("%H:%M"),
        f"{prefix}sms_when": local.strftime("%d.%m %H:%M"),
    }


def booking_fields(
    booking: BookingInfo, business: BusinessInfo, locale: str, client_fallback: str
) -> dict[str, Any]:
    client = booking.client_name or client_fallback
    fields: dict[str, Any] = {
        "service": localized(booking.service_name, locale),
        "price": money(booking.price_tiyn, locale=locale),
        "master": booking.staff_name,
        "address": business.address,
        "code": booking.public_code,
        "status": booking.status,
        "by": booking.cancelled_by,
        "reason": booking.cancel_reason,
        "client": client,
        "client_short": shorten(client),
        "previous_date": None,
        "previous_time": None,
        **moment_fields(booking.start_at, business.timezone, locale),
    }
    if booking.previous_start is not None:
        previous = moment_fields(booking.previous_start, business.timezone, locale, "previous_")
        fields.update(
            previous_date=previous["previous_date"], previous_time=previous["previous_time"]
        )
    return fields


def business_fields(business: BusinessInfo) -> dict[str, Any]:
    return {"business": business.name, "business_short": shorten(business.name)}


def excerpt(body: str) -> str:
    return shorten(" ".join(body.split()), EXCERPT_CHARS)


def policy_fields(payload: Mapping[str, Any], locale: str, landing_base_url: str) -> dict[str, Any]:
    """A policy notice's words: when the version takes effect, what changes (its summary in the
    reader's language), the version's own page and the policy's address (the landing's URL
    contract: ``/{lang}/privacy/`` for the policy in force, ``/{lang}/privacy/<version>/``)."""
    effective = datetime.fromisoformat(str(payload["effective_at"])).date()
    base = landing_base_url.rstrip("/")
    url = str(payload.get("url") or f"{base}/{locale}/privacy/")
    version = payload.get("version")
    summaries = payload.get("summary")
    summaries = summaries if isinstance(summaries, Mapping) else {}
    summary = next((str(summaries[lang]) for lang in (locale, "en", "ru", "kk")
                    if summaries.get(lang)), "")  # fmt: skip
    return {
        "date": format_date(effective, format="long", locale=locale),
        "short_date": effective.strftime("%d.%m.%Y"),
        "url": url,
        "version_url": f"{base}/{locale}/privacy/{version}/" if version else url,
        "summary": summary,
    }
