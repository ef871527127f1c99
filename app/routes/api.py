"""Public JSON API, ``/api/v1`` — a published contract: paths, bodies and error codes stay as they are.

Clients authenticate by header only (``Authorization: tma <initData>``); no cookie is read here,
so the API needs no CSRF protection. Errors leave through ``app.routes.errors``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import (
    FromPath,
    FromQuery,
    HeaderParameter,
    JSONBody,
    QueryParameter,
)

from app.domain import bookings, catalog, consent
from app.domain.accounts import ByTelegram, telegram_locale
from app.domain.availability_reader import available_slots
from app.domain.errors import ValidationFailed
from app.i18n import N_, get_locale, gettext, localized, set_locale
from app.routes.deps import DB, AppSettings, MaybeTelegram, Telegram
from app.routes.params import MAX_ID, PathId, staff_choice
from app.security.limits import limited_telegram
from app.security.web import actor_of

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


def _check_range(date_from: date, date_to: date) -> None:
    if date_to < date_from:
        raise ValidationFailed(fields={"date_to": gettext(N_("Must not be before date_from."))})
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ValidationFailed(
            fields={"date_to": gettext(N_("Ask for at most 31 days at a time."))}
        )


def _booking_out(made: bookings.BookingMade) -> BookingOut:
    return BookingOut(
        id=made.id, status=made.status, start=made.start.isoformat(), end=made.end.isoformat(),
        staff_id=made.staff_id, service_id=made.service_id,
    )  # fmt: skip


def _location(request: Request[Any, Any, Any], booking_id: int) -> dict[str, str]:
    return {"Location": request.app.route_reverse("api:my-booking", booking_id=booking_id)}


class ApiController(Controller):
    path = "/api/v1"
    tags = ("api",)

    @get("/policy", name="api:policy")
    async def policy(self, db: DB, settings: AppSettings) -> PolicyOut:
        policy = await consent.policy_in_force(db)
        base = settings.landing_base_url.rstrip("/")
        return PolicyOut(
            version=policy.version, purposes=policy.purposes, url=f"{base}/{get_locale()}/privacy/"
        )

    @post("/me/consent", status_code=201, name="api:consent")
    async def consent(
        self, request: Request[Any, Any, Any], data: JSONBody[ConsentIn], db: DB,
        telegram: Telegram,
    ) -> dict[str, Any]:  # fmt: skip
        given = await consent.grant_consent(
            db, ByTelegram(telegram), policy_version=data.policy_version,
            purposes=list(data.purposes), channel="api", actor=actor_of(request, None),
        )  # fmt: skip
        return {"id": given.id, "policy_version": given.policy_version, "purposes": given.purposes}

    @get("/businesses/{slug:str}/services", name="api:services")
    async def services(
        self, slug: FromPath[str], db: DB, maybe_telegram: MaybeTelegram
    ) -> ServicesOut:
        if maybe_telegram is not None and (chosen := await telegram_locale(db, maybe_telegram)):
            set_locale(chosen)
        shop = await catalog.storefront(db, slug)
        locale = get_locale()
        return ServicesOut(
            services=[
                ServiceOut(
                    id=e.service.id,
                    name=localized(e.service.name, locale),
                    category=localized(e.service.category, locale) if e.service.category else None,
                    duration_min=e.service.duration_min,
                    price_tiyn=e.service.price_tiyn,
                    currency=shop.business.currency,
                    staff_ids=e.staff_ids,
                )
                for e in shop.services
            ]
        )

    @get("/businesses/{slug:str}/availability", name="api:availability")
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
        slots = await available_slots(
            db, slug, service, staff_choice(staff), date_from, date_to, datetime.now(UTC)
        )
        return SlotsOut(
            slots=[
                SlotOut(start=s.start.isoformat(), end=s.end.isoformat(), staff_id=s.staff_id)
                for s in slots
            ]
        )

    @post(
        "/businesses/{slug:str}/bookings",
        status_code=201,
        name="api:book",
        dependencies={"telegram": limited_telegram("booking")},
    )
    async def create_booking(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        data: JSONBody[BookingIn],
        db: DB,
        telegram: Telegram,
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", max_length=80, min_length=1)
        ] = None,
    ) -> Response[BookingOut]:
        wanted = bookings.BookingRequest(
            service_id=data.service_id, staff_id=data.staff_id, start=data.start,
            comment=data.comment, source="api", idempotency_key=idempotency_key,
        )  # fmt: skip
        made = await bookings.create_booking(
            db, slug, wanted, client=ByTelegram(telegram), actor=actor_of(request, None)
        )
        return Response(
            _booking_out(made),
            status_code=201 if made.created else 200,
            headers=_location(request, made.id),
        )

    @get("/me/bookings", name="api:my-bookings")
    async def my_bookings(self, db: DB, telegram: Telegram) -> MyBookingsOut:
        items = await bookings.client_bookings(db, ByTelegram(telegram))
        locale = get_locale()
        return MyBookingsOut(
            bookings=[
                MyBookingOut(
                    id=r.id,
                    status=r.status,
                    start=r.local_start.isoformat(),
                    end=r.local_end.isoformat(),
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

    @get("/me/bookings/{booking_id:int}", name="api:my-booking")
    async def my_booking(
        self, booking_id: PathId, db: DB,
        telegram: Telegram,
    ) -> BookingOut:  # fmt: skip
        return _booking_out(await bookings.get_booking_for(db, booking_id, by=ByTelegram(telegram)))

    @post("/me/bookings/{booking_id:int}/cancel", status_code=200, name="api:cancel")
    async def cancel(
        self, request: Request[Any, Any, Any],
        booking_id: PathId, db: DB, telegram: Telegram,
    ) -> BookingOut:  # fmt: skip
        made = await bookings.cancel_booking(
            db, booking_id, by=ByTelegram(telegram), actor=actor_of(request, None)
        )
        return _booking_out(made)
