"""Public JSON API, ``/api/v1`` — the contract pinned in DESIGN.md.

Clients authenticate by header only (``Authorization: tma <initData>``); no cookie is read here,
so the API needs no CSRF protection. Errors leave through ``app.routes.errors``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import (
    FromPath,
    FromQuery,
    HeaderParameter,
    JSONBody,
    PathParameter,
    QueryParameter,
)
from sqlalchemy import select

from app.db.session import set_context
from app.domain import bookings as booking_service
from app.domain.accounts import account_from_telegram, telegram_changes
from app.domain.audit import Actor
from app.domain.availability import find_slots
from app.domain.catalog import active_services
from app.domain.consent import REQUIRED_PURPOSES, current_policy, record_consent, require_consent
from app.domain.errors import ConsentRequired, NotFound, Unauthorized, ValidationFailed
from app.domain.schedules import (
    Availability,
    AvailabilityReader,
    Key,
    availability_reader,
    build_query,
    business_by_slug,
)
from app.i18n import LOCALES, N_, get_locale, gettext, localized, set_locale
from app.models import Account, Business
from app.routes.deps import DB, AppSettings
from app.security.telegram import InitData, InvalidInitData, validate_init_data
from app.settings import Settings

MAX_ID = 2**63 - 1
MAX_DAYS = 31
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


class PolicyOut(msgspec.Struct):
    version: str
    purposes: list[str]
    url: str


class ConsentIn(msgspec.Struct, forbid_unknown_fields=True):
    policy_version: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    purposes: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=20)
    ]


class ServiceOut(msgspec.Struct):
    id: int
    name: str
    category: str | None
    duration_min: int
    price_tiyn: int
    currency: str
    staff_ids: list[int]


class ServicesOut(msgspec.Struct):
    services: list[ServiceOut]


class SlotOut(msgspec.Struct):
    start: str
    end: str
    staff_id: int


class SlotsOut(msgspec.Struct):
    slots: list[SlotOut]


class BookingIn(msgspec.Struct, forbid_unknown_fields=True):
    service_id: Id
    start: Annotated[datetime, msgspec.Meta(tz=True)]
    staff_id: Id | None = None
    comment: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class BookingOut(msgspec.Struct):
    id: int
    status: str
    start: str
    end: str
    staff_id: int
    service_id: int


class MyBookingOut(msgspec.Struct):
    id: int
    status: str
    start: str
    end: str
    staff_id: int
    service_id: int
    business: str
    service_name: str
    price_tiyn: int
    code: str


class MyBookingsOut(msgspec.Struct):
    bookings: list[MyBookingOut]


def _actor(request: Request[Any, Any, Any], account_id: int | None) -> Actor:
    client = request.client
    return Actor(
        kind="client",
        account_id=account_id,
        ip=client.host if client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request.scope.get("state", {}).get("request_id"),
    )


def _init_data(request: Request[Any, Any, Any], settings: AppSettings) -> InitData:
    header = request.headers.get("authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "tma" or not raw:
        raise Unauthorized()
    try:
        init = validate_init_data(raw.strip(), settings.telegram_bot_token)
    except InvalidInitData as exc:
        raise Unauthorized() from exc
    return init


async def _signed_in(
    session: Any, request: Request[Any, Any, Any], settings: AppSettings
) -> Account:
    init = _init_data(request, settings)
    account, _created = await account_from_telegram(session, init)
    if account.locale_chosen or init.user.language_code:
        set_locale(account.locale)  # the saved choice, else Telegram's language, beats headers
    return account


async def _telegram_language(
    session: Any, request: Request[Any, Any, Any], settings: AppSettings
) -> None:
    """Public reads in a Telegram user's language (their saved choice, else Telegram's), as on
    the signed-in endpoints; a bad or missing signature only leaves the header's language."""
    if not request.headers.get("authorization"):
        return
    try:
        init = _init_data(request, settings)
    except Unauthorized:
        return
    chosen = await session.scalar(
        select(Account.locale).where(
            Account.telegram_id == init.user.id,
            Account.deleted_at.is_(None),
            Account.locale_chosen.is_(True),
        )
    )
    code = (chosen or init.user.language_code or "").split("-")[0].lower()
    if code in LOCALES:
        set_locale(code)


def _check_range(date_from: date, date_to: date) -> None:
    if date_to < date_from:
        raise ValidationFailed(fields={"date_to": gettext(N_("Must not be before date_from."))})
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ValidationFailed(
            fields={"date_to": gettext(N_("Ask for at most 31 days at a time."))}
        )


def _staff_param(staff: str) -> int | None:
    if staff == "any":
        return None
    if staff.isascii() and staff.isdigit() and 1 <= int(staff) <= MAX_ID:
        return int(staff)
    raise ValidationFailed(fields={"staff": gettext(N_("Give a master's id or “any”."))})


class _Account(msgspec.Struct, frozen=True):
    id: int
    name: str | None
    phone: str | None
    locale: str
    locale_chosen: bool
    allows_write_to_pm: bool


class _BookingContext(msgspec.Struct, frozen=True):
    account: _Account | None
    consent_ok: bool = False
    replay_id: int | None = None
    day: date | None = None
    availability: Availability | None = None


_decode_booking_context = msgspec.json.Decoder(_BookingContext).decode
_BOOKING_CONTEXT = "SELECT pz_booking_context($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)::text"
_BOOKING_INSERT = "SELECT pz_booking_insert($1::jsonb)::text"


def _telegram_account_update(
    account: _Account, init: InitData
) -> tuple[str, dict[str, Any] | None]:
    """The account's language after this sign-in, and what the sign-in changes on it (as
    ``account_from_telegram`` does), folded into the booking's own statement."""
    update = telegram_changes(
        init, allows_write_to_pm=account.allows_write_to_pm, locale=account.locale,
        locale_chosen=account.locale_chosen,
    )  # fmt: skip
    return update.get("locale", account.locale), update or None


def _held_day_key(
    reader: AvailabilityReader, slug: str, service_id: int, staff_id: int | None, start: datetime
) -> Key | None:
    """The reader's key for the local day of ``start``, when the reader knows the business's
    time zone as of the version it holds for that day (so the day is right if it still holds)."""
    hint = reader.zone_hint(slug)
    if hint is None:
        return None
    version, zone = hint
    day = start.astimezone(ZoneInfo(zone)).date()
    key = (slug, service_id, staff_id, day, day)
    return key if reader.held(key)[0] == version else None


async def _booking_out(session: Any, booking: Any) -> BookingOut:
    """A booking as the API shows it: times in its business's zone."""
    tz = await session.scalar(select(Business.timezone).where(Business.id == booking.business_id))
    return BookingOut(**booking_service.booking_view(booking, tz or "Asia/Almaty"))


async def _replayed(
    db: Any, account_id: int, *, booking_id: int | None = None, key: str | None = None
) -> Response[BookingOut] | None:
    """The answer to a request an ``Idempotency-Key`` has seen before: the booking it made
    (found by its id, or by the key); None when there is none."""
    async with db.transaction(account_id=account_id) as session:
        if booking_id is not None:
            booking = await booking_service.get_booking(session, booking_id, account_id=account_id)
        else:
            assert key is not None
            found = await booking_service.existing_by_key(session, account_id, key)
            if found is None:
                return None
            booking = found
        out = await _booking_out(session, booking)
    return Response(
        out,
        status_code=200,
        headers={"Location": f"/api/v1/me/bookings/{booking.id}"},
    )


async def _create_booking_with_new_account(
    request: Request[Any, Any, Any],
    slug: str,
    wanted: booking_service.BookingRequest,
    db: Any,
    settings: Settings,
) -> Response[BookingOut]:
    """The ordinary path, in one ORM transaction: the first request of a Telegram user creates
    the account (and, having no consent yet, usually ends in 403 consent_required)."""
    async with db.transaction() as session:
        account = await _signed_in(session, request, settings)
        business = await business_by_slug(session, slug)
        await set_context(session, business_id=business.id, account_id=account.id)
        await require_consent(session, account.id)
        booking, created = await booking_service.create_booking(
            session, business, wanted, account=account, actor=_actor(request, account.id)
        )
        view = booking_service.booking_view(booking, business.timezone)
    return Response(
        BookingOut(**view),
        status_code=201 if created else 200,
        headers={"Location": f"/api/v1/me/bookings/{booking.id}"},
    )


class ApiController(Controller):
    path = "/api/v1"
    tags = ("api",)

    @get("/policy")
    async def policy(self, db: DB, settings: AppSettings) -> PolicyOut:
        async with db.transaction() as session:
            policy = await current_policy(session)
        base = settings.landing_base_url.rstrip("/")
        return PolicyOut(
            version=policy.version, purposes=policy.purposes, url=f"{base}/{get_locale()}/privacy/"
        )

    @post("/me/consent", status_code=201)
    async def consent(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ConsentIn],
        db: DB,
        settings: AppSettings,
    ) -> dict[str, Any]:
        async with db.transaction() as session:
            account = await _signed_in(session, request, settings)
            await set_context(session, account_id=account.id)
            consent = await record_consent(
                session,
                account.id,
                policy_version=data.policy_version,
                purposes=list(data.purposes),
                action="granted",
                channel="api",
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
        return {
            "id": consent.id,
            "policy_version": consent.policy_version,
            "purposes": consent.purposes,
        }

    @get("/businesses/{slug:str}/services")
    async def services(
        self, request: Request[Any, Any, Any], slug: FromPath[str], db: DB, settings: AppSettings
    ) -> ServicesOut:
        async with db.transaction() as session:
            await _telegram_language(session, request, settings)
            business = await business_by_slug(session, slug)
            entries = await active_services(session, business.id)
        locale = get_locale()
        return ServicesOut(
            services=[
                ServiceOut(
                    id=e.service.id,
                    name=localized(e.service.name, locale),
                    category=localized(e.service.category, locale) if e.service.category else None,
                    duration_min=e.service.duration_min,
                    price_tiyn=e.service.price_tiyn,
                    currency=business.currency,
                    staff_ids=e.staff_ids,
                )
                for e in entries
            ]
        )

    @get("/businesses/{slug:str}/availability")
    async def availability(
        self,
        slug: FromPath[str],
        db: DB,
        service: Annotated[int, QueryParameter(ge=1, le=MAX_ID)],
        date_from: FromQuery[date],
        date_to: FromQuery[date],
        staff: Annotated[str, QueryParameter(max_length=20)] = "any",
    ) -> SlotsOut:
        _check_range(date_from, date_to)
        staff_id = _staff_param(staff)
        now = datetime.now(UTC)
        context = await availability_reader(db).read(
            db, slug, service, staff_id, date_from, date_to
        )
        if context is None or context.service is None:
            raise NotFound()
        offers = context.offer_map()
        if staff_id is not None and staff_id not in offers:
            raise NotFound(gettext(N_("This master does not perform this service.")))
        if context.schedule is None:
            return SlotsOut(slots=[])
        staff_ids = [staff_id] if staff_id is not None else list(offers)
        query = build_query(
            context.business, context.service, offers, context.schedule, staff_ids,
            date_from, date_to, now,
        )  # fmt: skip
        return SlotsOut(
            slots=[
                SlotOut(start=s.start.isoformat(), end=s.end.isoformat(), staff_id=s.staff_id)
                for s in find_slots(query)
            ]
        )

    @post("/businesses/{slug:str}/bookings", status_code=201)
    async def create_booking(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        data: JSONBody[BookingIn],
        db: DB,
        settings: AppSettings,
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", max_length=80, min_length=1)
        ] = None,
    ) -> Response[BookingOut]:
        """Two statements: ``pz_booking_context`` (who, consent, the day's schedule: only its
        fresh part when this worker holds the rest), the slot engine's check here, then
        ``pz_booking_insert``. A Telegram user seen for the first time takes the ordinary path,
        which creates the account."""
        init = _init_data(request, settings)
        wanted = booking_service.BookingRequest(
            service_id=data.service_id, staff_id=data.staff_id, start=data.start,
            comment=data.comment, source="api", idempotency_key=idempotency_key,
        )  # fmt: skip
        booking_service.check_request(wanted)
        now = datetime.now(UTC)
        reader = availability_reader(db)
        key = _held_day_key(reader, slug, data.service_id, data.staff_id, data.start)
        version, staff = reader.held(key) if key else (-1, None)
        raw = await db.fetchval(
            _BOOKING_CONTEXT, slug, init.user.id, data.service_id, data.staff_id, data.start,
            idempotency_key, now.date(), sorted(REQUIRED_PURPOSES), version, staff,
        )  # fmt: skip
        known = _decode_booking_context(raw)
        if known.account is None:
            return await _create_booking_with_new_account(request, slug, wanted, db, settings)
        account = known.account
        locale, update = _telegram_account_update(account, init)
        if account.locale_chosen or init.user.language_code:
            set_locale(locale)  # the saved choice, else Telegram's language, beats headers
        if known.replay_id is not None:
            replayed = await _replayed(db, account.id, booking_id=known.replay_id)
            assert replayed is not None
            return replayed
        if known.availability is None or known.day is None:
            raise NotFound()
        if not known.consent_ok:
            raise ConsentRequired()
        day_key = (slug, data.service_id, data.staff_id, known.day, known.day)
        if known.availability.context is None and key != day_key:
            # the copy held still holds, but the database dates the start on another day than
            # this worker's zone data does: read the day the database means
            found = await reader.read(db, *day_key)
            if found is None:
                raise NotFound()
            context = found
        else:
            context = reader.absorb(day_key, known.availability)
        if context.service is None or context.schedule is None:
            raise NotFound()
        offers = context.offer_map()
        candidates = booking_service.candidates_for(offers, data.staff_id)
        zone = ZoneInfo(context.business.timezone)
        query = build_query(
            context.business, context.service, offers, context.schedule, candidates, known.day,
            known.day, now,
        )  # fmt: skip
        plan = booking_service.plan_booking(
            context.business, context.service, offers, query, candidates, wanted,
            person=booking_service.Person(account.id, locale, account.name, account.phone),
            actor=_actor(request, account.id), now=now, account_update=update,
        )  # fmt: skip
        try:
            row = await db.fetchval(_BOOKING_INSERT, msgspec.json.encode(plan.payload).decode())
        except asyncpg.PostgresError as exc:
            if idempotency_key:  # a concurrent retry with the same key may have won
                replayed = await _replayed(db, account.id, key=idempotency_key)
                if replayed is not None:
                    return replayed
            refusal = booking_service.refusal_of(exc)
            if refusal is not None:
                raise refusal from exc
            raise
        made = msgspec.json.decode(row)
        held = plan.candidates[made["staff_id"]]
        return Response(
            BookingOut(
                id=made["id"], status=plan.status, start=held.start.astimezone(zone).isoformat(),
                end=held.end.astimezone(zone).isoformat(), staff_id=held.staff_id,
                service_id=data.service_id,
            ),
            status_code=201,
            headers={"Location": f"/api/v1/me/bookings/{made['id']}"},
        )  # fmt: skip

    @get("/me/bookings")
    async def my_bookings(
        self, request: Request[Any, Any, Any], db: DB, settings: AppSettings
    ) -> MyBookingsOut:
        async with db.transaction() as session:
            account = await _signed_in(session, request, settings)
            await set_context(session, account_id=account.id)
            items = await booking_service.bookings_of_account(session, account.id)
        locale = get_locale()
        return MyBookingsOut(
            bookings=[
                MyBookingOut(
                    id=r.id,
                    status=r.status,
                    start=r.start.astimezone(ZoneInfo(r.timezone)).isoformat(),
                    end=r.end.astimezone(ZoneInfo(r.timezone)).isoformat(),
                    staff_id=r.staff_id,
                    service_id=r.service_id,
                    business=r.slug,
                    service_name=localized(r.service_name, locale),
                    price_tiyn=r.price_tiyn,
                    code=r.code,
                )
                for r in items
            ]
        )

    @get("/me/bookings/{booking_id:int}")
    async def my_booking(
        self, request: Request[Any, Any, Any], booking_id: Annotated[int, PathParameter(ge=1, le=MAX_ID)],
        db: DB, settings: AppSettings,
    ) -> BookingOut:  # fmt: skip
        async with db.transaction() as session:
            account = await _signed_in(session, request, settings)
            await set_context(session, account_id=account.id)
            booking = await booking_service.get_booking(session, booking_id, account_id=account.id)
            return await _booking_out(session, booking)

    @post("/me/bookings/{booking_id:int}/cancel", status_code=200)
    async def cancel(
        self, request: Request[Any, Any, Any], booking_id: Annotated[int, PathParameter(ge=1, le=MAX_ID)],
        db: DB, settings: AppSettings,
    ) -> BookingOut:  # fmt: skip
        async with db.transaction() as session:
            account = await _signed_in(session, request, settings)
            await set_context(session, account_id=account.id)
            booking = await booking_service.get_booking(session, booking_id, account_id=account.id)
            await set_context(session, business_id=booking.business_id)
            business = (
                await session.execute(select(Business).where(Business.id == booking.business_id))
            ).scalar_one()
            booking = await booking_service.cancel_booking(
                session, business, booking, by="client", actor=_actor(request, account.id)
            )
            view = booking_service.booking_view(booking, business.timezone)
        return BookingOut(**view)
