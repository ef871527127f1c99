"""The catalog as the business manages it: services and masters, who does what, in which order.

:mod:`app.domain.catalog` is the public side (what the Mini App offers); this module is the
business side the dashboard works with. Every entry point takes the acting ``Member`` and owns
one transaction for that member's business. Rows are always looked up with the member's
``business_id`` as well as their id: ``staff`` is publicly readable (its policy lets anyone
SELECT it), so row-level security alone would not keep another business's master out, and an
id of another business must answer exactly as an id that does not exist (404).

Nothing is ever deleted: the app role has no DELETE on ``services`` or ``staff``, and a service
or master with bookings must stay for those bookings. Deactivating sets ``archived_at``; the
Mini App stops offering it on its next request, since every write here moves the business's
``schedule_version`` (triggers on services, staff and staff_services).

Form input arrives as the strings a browser sends and is checked here, field by field, so a
refusal names every field that is wrong, in the user's language, and writes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import audit, avatars, plans
from app.domain.audit import Actor
from app.domain.errors import MAX_ID, NotFound, ValidationFailed
from app.domain.members import Member
from app.i18n import LOCALES, N_, gettext
from app.models import Service, Staff, StaffService

NAME_MAX = 120
DURATION_MIN, DURATION_MAX = 5, 720  # the services table's own check
BUFFER_MAX = 240
PRICE_MAX_TIYN = 10_000_000 * 100  # ten million tenge: anything above is a typing slip
NAME_LOCALES = ("ru", "kk", "en")  # ru is required; kk and en fall back to ru
PHOTO_FIELD = "photo"

_SPACES = re.compile(r"[\s\u00a0\u202f\u2009']+")
_CURRENCY = re.compile(r"(₸|тг\.?|тенге|kzt)$", re.IGNORECASE)
_PRICE = re.compile(r"^(\d{1,12})(?:[.,](\d{1,2}))?$")

assert set(NAME_LOCALES) == set(LOCALES)


# --- what the dashboard shows ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Performer:
    """A master doing a service, with their own price and duration where they differ."""

    staff_id: int
    name: str
    price_tiyn: int | None
    duration_min: int | None
    archived: bool


@dataclass(frozen=True, slots=True)
class ServiceCard:
    id: int
    name: dict[str, str]
    category: dict[str, str] | None
    duration_min: int
    price_tiyn: int
    buffer_before_min: int
    buffer_after_min: int
    archived: bool
    performers: tuple[Performer, ...]


@dataclass(frozen=True, slots=True)
class Skill:
    """A service a master does, as their card lists it."""

    service_id: int
    name: dict[str, str]
    price_tiyn: int  # their own where set, else the service's
    duration_min: int
    own_price: bool
    own_duration: bool


@dataclass(frozen=True, slots=True)
class MasterCard:
    id: int
    name: str
    title: dict[str, str]
    photo_version: str | None  # changes with the photo: a cache-busting URL parameter
    archived: bool
    skills: tuple[Skill, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    """A list page: the active ones in the business's order, then the deactivated ones."""

    active: tuple[Any, ...]
    archived: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Choice:
    """A checkbox of a form: a master on a service's form, or a service on a master's."""

    id: int
    label: dict[str, str] | str
    duration_min: int | None = None  # the service's own, for the hint beside an override
    price_tiyn: int | None = None


@dataclass(frozen=True, slots=True)
class Editor:
    """What a form shows: the values of its fields (as strings) and the boxes to tick."""

    values: dict[str, str]
    choices: tuple[Choice, ...]
    item: ServiceCard | MasterCard | None = None


# --- reading ----------------------------------------------------------------------------------


def _check_id(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound()
    return value


async def _services(
    session: AsyncSession, business_id: int, service_id: int | None = None
) -> list[ServiceCard]:
    query = select(Service).where(Service.business_id == business_id)
    if service_id is not None:
        query = query.where(Service.id == service_id)
    services = list(
        (await session.execute(query.order_by(Service.sort_order, Service.id))).scalars()
    )
    links_query = (
        select(StaffService, Staff.name, Staff.archived_at)
        .join(Staff, (Staff.id == StaffService.staff_id) & (Staff.business_id == business_id))
        .where(StaffService.business_id == business_id)
        .order_by(Staff.sort_order, Staff.id)
    )
    if service_id is not None:
        links_query = links_query.where(StaffService.service_id == service_id)
    links = await session.execute(links_query)
    by_service: dict[int, list[Performer]] = {}
    for link, name, archived_at in links:
        by_service.setdefault(link.service_id, []).append(
            Performer(link.staff_id, name, link.price_tiyn, link.duration_min,
                      archived_at is not None)
        )  # fmt: skip
    return [_service_card(s, by_service.get(s.id, [])) for s in services]


def _service_card(s: Service, performers: list[Performer]) -> ServiceCard:
    return ServiceCard(
        id=s.id, name=dict(s.name), category=dict(s.category) if s.category else None,
        duration_min=s.duration_min, price_tiyn=s.price_tiyn,
        buffer_before_min=s.buffer_before_min, buffer_after_min=s.buffer_after_min,
        archived=s.archived_at is not None, performers=tuple(performers),
    )  # fmt: skip


async def _masters(
    session: AsyncSession, business_id: int, staff_id: int | None = None
) -> list[MasterCard]:
    version = func.substr(func.md5(Staff.photo), 1, 12).label("photo_version")
    query = select(Staff.id, Staff.name, Staff.title, Staff.archived_at, version).where(
        Staff.business_id == business_id
    )
    if staff_id is not None:
        query = query.where(Staff.id == staff_id)
    rows = list(await session.execute(query.order_by(Staff.sort_order, Staff.id)))
    links = await session.execute(
        select(StaffService, Service.name, Service.price_tiyn, Service.duration_min)
        .join(
            Service,
            (Service.id == StaffService.service_id) & (Service.business_id == business_id),
        )
        .where(StaffService.business_id == business_id, Service.archived_at.is_(None))
        .order_by(Service.sort_order, Service.id)
    )
    by_master: dict[int, list[Skill]] = {}
    for link, name, price, duration in links:
        by_master.setdefault(link.staff_id, []).append(
            Skill(
                service_id=link.service_id, name=dict(name),
                price_tiyn=link.price_tiyn if link.price_tiyn is not None else price,
                duration_min=link.duration_min if link.duration_min is not None else duration,
                own_price=link.price_tiyn is not None,
                own_duration=link.duration_min is not None,
            )
        )  # fmt: skip
    cards = []
    for r in rows:
        card = MasterCard(
            id=r.id, name=r.name, title=dict(r.title or {}), photo_version=r.photo_version,
            archived=r.archived_at is not None, skills=tuple(by_master.get(r.id, [])),
        )  # fmt: skip
        cards.append(card)
    return cards


def _split(items: list[Any]) -> Catalog:
    return Catalog(
        active=tuple(i for i in items if not i.archived),
        archived=tuple(i for i in items if i.archived),
    )


async def services(db: Database, member: Member) -> Catalog:
    """The business's services with who performs each (any member may look)."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        return _split(await _services(s, member.business_id))


async def masters(db: Database, member: Member) -> Catalog:
    """The business's masters with the services each does (any member may look)."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        return _split(await _masters(s, member.business_id))


async def _active_masters(session: AsyncSession, business_id: int) -> list[Choice]:
    rows = await session.execute(
        select(Staff.id, Staff.name)
        .where(Staff.business_id == business_id, Staff.archived_at.is_(None))
        .order_by(Staff.sort_order, Staff.id)
    )
    return [Choice(r.id, r.name) for r in rows]


async def _active_services(session: AsyncSession, business_id: int) -> list[Choice]:
    rows = await session.execute(
        select(Service.id, Service.name, Service.duration_min, Service.price_tiyn)
        .where(Service.business_id == business_id, Service.archived_at.is_(None))
        .order_by(Service.sort_order, Service.id)
    )
    return [Choice(r.id, dict(r.name), r.duration_min, r.price_tiyn) for r in rows]


def tenge(tiyn: int | None) -> str:
    """A price as the form shows it: ``8000``, or ``8000.50`` when there are tiyn."""
    if tiyn is None:
        return ""
    whole, part = divmod(tiyn, 100)
    return f"{whole}.{part:02d}" if part else str(whole)


def _service_values(card: ServiceCard) -> dict[str, str]:
    values = {
        "duration_min": str(card.duration_min),
        "price": tenge(card.price_tiyn),
        "buffer_before_min": str(card.buffer_before_min),
        "buffer_after_min": str(card.buffer_after_min),
    }
    for code in NAME_LOCALES:
        values[f"name_{code}"] = card.name.get(code, "")
        values[f"category_{code}"] = (card.category or {}).get(code, "")
    for performer in card.performers:
        values[f"staff_{performer.staff_id}"] = "1"
        values[f"price_{performer.staff_id}"] = tenge(performer.price_tiyn)
        values[f"duration_{performer.staff_id}"] = (
            str(performer.duration_min) if performer.duration_min is not None else ""
        )
    return values


def _master_values(card: MasterCard) -> dict[str, str]:
    values = {"name": card.name}
    for code in NAME_LOCALES:
        values[f"title_{code}"] = card.title.get(code, "")
    for skill in card.skills:
        values[f"service_{skill.service_id}"] = "1"
    return values


async def service_editor(db: Database, member: Member, service_id: int | None = None) -> Editor:
    """The service form: a new one (every active master ticked, as most salons want), or an
    existing one's values; ``NotFound`` for an id that is not this business's."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        choices = tuple(await _active_masters(s, member.business_id))
        if service_id is None:
            values = {"duration_min": "60", "buffer_before_min": "0", "buffer_after_min": "0"}
            values.update({f"staff_{c.id}": "1" for c in choices})
            return Editor(values=values, choices=choices)
        found = await _services(s, member.business_id, _check_id(service_id))
        if not found:
            raise NotFound()
        return Editor(values=_service_values(found[0]), choices=choices, item=found[0])


async def master_editor(db: Database, member: Member, staff_id: int | None = None) -> Editor:
    """The master form: a new one, or an existing one's values; ``NotFound`` for an id that
    is not this business's."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        choices = tuple(await _active_services(s, member.business_id))
        if staff_id is None:
            return Editor(values={}, choices=choices)
        found = await _masters(s, member.business_id, _check_id(staff_id))
        if not found:
            raise NotFound()
        return Editor(values=_master_values(found[0]), choices=choices, item=found[0])


async def master_photo(db: Database, member: Member, staff_id: int) -> bytes | None:
    """The master's photo (WebP), None when there is none; ``NotFound`` for another's."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        row = (
            await s.execute(
                select(Staff.photo).where(
                    Staff.business_id == member.business_id, Staff.id == _check_id(staff_id)
                )
            )
        ).first()
    if row is None:
        raise NotFound()
    return bytes(row.photo) if row.photo is not None else None


def photo_version(photo: bytes) -> str:
    """The same short digest the lists carry (PostgreSQL's md5 of the stored bytes)."""
    return hashlib.md5(photo, usedforsecurity=False).hexdigest()[:12]


# --- parsing a form ---------------------------------------------------------------------------


class _Errors(dict[str, str]):
    def add(self, name: str, message: str) -> None:
        self.setdefault(name, gettext(message))

    def raise_if_any(self) -> None:
        if self:
            raise ValidationFailed(fields=dict(self))


def _text(form: Mapping[str, str], name: str, errors: _Errors, *, required: bool = False) -> str:
    value = " ".join((form.get(name) or "").split())
    if required and not value:
        errors.add(name, N_("Please fill this in."))
    elif len(value) > NAME_MAX:
        errors.add(name, N_("At most 120 characters."))
    return value


def _per_language(
    form: Mapping[str, str], prefix: str, errors: _Errors, *, required: bool
) -> dict[str, str]:
    values = {code: _text(form, f"{prefix}_{code}", errors) for code in NAME_LOCALES}
    values = {code: v for code, v in values.items() if v}
    if (required or values) and "ru" not in values:
        errors.add(
            f"{prefix}_ru", N_("Please give it in Russian: other languages fall back to it.")
        )
    return values


def _whole(
    form: Mapping[str, str], name: str, errors: _Errors, low: int, high: int, refusal: str, *,
    default: int | None = None,
) -> int | None:  # fmt: skip
    """A whole number of minutes in ``low..high``; ``default`` when left empty (no default:
    required)."""
    raw = _SPACES.sub("", form.get(name) or "")
    if not raw:
        if default is None:
            errors.add(name, N_("Please fill this in."))
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        errors.add(name, refusal)
        return None
    return int(raw)


DURATION_REFUSAL = N_("Give a duration from 5 to 720 minutes.")
BUFFER_REFUSAL = N_("Give a number of minutes from 0 to 240.")


def _optional_duration(form: Mapping[str, str], name: str, errors: _Errors) -> int | None:
    if not _SPACES.sub("", form.get(name) or ""):
        return None
    return _whole(form, name, errors, DURATION_MIN, DURATION_MAX, DURATION_REFUSAL)


def parse_price(raw: str) -> int:
    """Tenge as people type them (``8 000``, ``8000``, ``8 000 ₸``, ``8000.50``) → tiyn.
    Raises ``ValueError`` with the message to show."""
    value = _CURRENCY.sub("", _SPACES.sub("", raw).strip())
    value = _SPACES.sub("", value)
    if value.startswith(("-", "−")):
        raise ValueError(N_("The price cannot be negative."))
    found = _PRICE.match(value) if value.isascii() else None
    if found is None:
        raise ValueError(N_("Give the price in tenge, for example 8 000."))
    try:
        amount = Decimal(f"{found.group(1)}.{found.group(2) or '0'}")
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only digits
        raise ValueError(N_("Give the price in tenge, for example 8 000.")) from exc
    tiyn = int(amount * 100)
    if tiyn > PRICE_MAX_TIYN:
        raise ValueError(N_("That price is too high: at most 10 000 000 ₸."))
    return tiyn


def _price(form: Mapping[str, str], name: str, errors: _Errors, *, required: bool) -> int | None:
    raw = form.get(name) or ""
    if not raw.strip():
        if required:
            errors.add(name, N_("Give a price (0 if it is free)."))
        return None
    try:
        return parse_price(raw)
    except ValueError as error:
        errors.add(name, str(error))
        return None


@dataclass(frozen=True, slots=True)
class Own:
    """A master's own price and duration for a service (None: the service's)."""

    price_tiyn: int | None = None
    duration_min: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceInput:
    name: dict[str, str]
    category: dict[str, str] | None
    duration_min: int
    price_tiyn: int
    buffer_before_min: int
    buffer_after_min: int
    performers: dict[int, Own] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name, "category": self.category, "duration_min": self.duration_min,
            "price_tiyn": self.price_tiyn, "buffer_before_min": self.buffer_before_min,
            "buffer_after_min": self.buffer_after_min,
        }  # fmt: skip


def _ticked(form: Mapping[str, str], name: str) -> bool:
    return (form.get(name) or "") not in ("", "0", "off")


def parse_service(form: Mapping[str, str], master_ids: list[int]) -> ServiceInput:
    """A service form's values, or ``ValidationFailed`` naming every wrong field. Only the
    business's own active masters (``master_ids``) are read from the form."""
    errors = _Errors()
    name = _per_language(form, "name", errors, required=True)
    category = _per_language(form, "category", errors, required=False) or None
    duration = _whole(form, "duration_min", errors, DURATION_MIN, DURATION_MAX, DURATION_REFUSAL)
    price = _price(form, "price", errors, required=True)
    before = _whole(form, "buffer_before_min", errors, 0, BUFFER_MAX, BUFFER_REFUSAL, default=0)
    after = _whole(form, "buffer_after_min", errors, 0, BUFFER_MAX, BUFFER_REFUSAL, default=0)
    performers: dict[int, Own] = {}
    for staff_id in master_ids:
        if _ticked(form, f"staff_{staff_id}"):
            performers[staff_id] = Own(
                price_tiyn=_price(form, f"price_{staff_id}", errors, required=False),
                duration_min=_optional_duration(form, f"duration_{staff_id}", errors),
            )
    errors.raise_if_any()
    assert duration is not None and price is not None and before is not None
    assert after is not None
    return ServiceInput(name, category, duration, price, before, after, performers)


@dataclass(frozen=True, slots=True)
class MasterInput:
    name: str
    title: dict[str, str]
    services: frozenset[int]

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title}


def parse_master(
    form: Mapping[str, str], service_ids: list[int], *, photo_error: str | None = None
) -> MasterInput:
    """A master form's values, or ``ValidationFailed`` naming every wrong field (the photo's
    refusal, found before, among them). Only the business's active services are read."""
    errors = _Errors()
    name = _text(form, "name", errors, required=True)
    title = {code: _text(form, f"title_{code}", errors) for code in NAME_LOCALES}
    if photo_error:
        errors[PHOTO_FIELD] = photo_error  # already in the user's language
    errors.raise_if_any()
    ticked = frozenset(i for i in service_ids if _ticked(form, f"service_{i}"))
    return MasterInput(name, {c: t for c, t in title.items() if t}, ticked)


def _photo(data: bytes | None) -> tuple[bytes | None, str | None]:
    """An upload re-encoded by the avatar rules (app.domain.avatars: checked by content,
    bombs refused, metadata stripped), or the refusal to show beside the photo field; neither
    when no file was chosen. Done before the transaction: decoding takes a while."""
    if not data:
        return None, None
    try:
        return avatars.process_avatar(data), None
    except ValidationFailed as error:
        return None, error.fields.get(avatars.FIELD) or gettext(error.message)


# --- writing ----------------------------------------------------------------------------------

_Row = TypeVar("_Row", Service, Staff)


async def _locked(session: AsyncSession, model: type[_Row], business_id: int, row_id: int) -> _Row:
    found = (
        await session.execute(
            select(model)
            .where(model.business_id == business_id, model.id == _check_id(row_id))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound()
    return found


async def _next_place(session: AsyncSession, model: type[_Row], business_id: int) -> int:
    last = (
        await session.execute(
            select(func.max(model.sort_order)).where(
                model.business_id == business_id, model.archived_at.is_(None)
            )
        )
    ).scalar_one()
    return 0 if last is None else min(int(last) + 1, 32_000)


async def _set_performers(
    session: AsyncSession, business_id: int, service_id: int, wanted: dict[int, Own],
    master_ids: list[int],
) -> list[dict[str, Any]]:  # fmt: skip
    """Who does the service among the active masters; links of deactivated masters stay as
    they are (they come back with their master). Returns the links for the audit entry."""
    current = {
        link.staff_id: link
        for link in (
            await session.execute(
                select(StaffService).where(
                    StaffService.business_id == business_id,
                    StaffService.service_id == service_id,
                )
            )
        ).scalars()
    }
    for staff_id in master_ids:
        own = wanted.get(staff_id)
        link = current.get(staff_id)
        if own is None and link is not None:
            await session.delete(link)
        elif own is not None and link is None:
            session.add(
                StaffService(business_id=business_id, staff_id=staff_id, service_id=service_id,
                             price_tiyn=own.price_tiyn, duration_min=own.duration_min)
            )  # fmt: skip
        elif (
            own is not None
            and link is not None
            and ((link.price_tiyn, link.duration_min) != (own.price_tiyn, own.duration_min))
        ):
            link.price_tiyn, link.duration_min = own.price_tiyn, own.duration_min
    await session.flush()
    return [
        {"staff_id": i, "price_tiyn": o.price_tiyn, "duration_min": o.duration_min}
        for i, o in sorted(wanted.items())
    ]


def _service_audit(service: Service) -> dict[str, Any]:
    return {
        "name": service.name, "category": service.category,
        "duration_min": service.duration_min, "price_tiyn": service.price_tiyn,
        "buffer_before_min": service.buffer_before_min,
        "buffer_after_min": service.buffer_after_min,
    }  # fmt: skip


async def add_service(
    db: Database, member: Member, form: Mapping[str, str], *, actor: Actor
) -> int:
    """A new service from its form, at the end of the list; its id."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        master_ids = [c.id for c in await _active_masters(s, member.business_id)]
        wanted = parse_service(form, master_ids)
        service = Service(
            business_id=member.business_id,
            sort_order=await _next_place(s, Service, member.business_id),
            **wanted.row(),
        )
        s.add(service)
        await s.flush()
        links = await _set_performers(
            s, member.business_id, service.id, wanted.performers, master_ids
        )
        await audit.record(
            s, actor=actor, action="service.create", entity="service", entity_id=service.id,
            business_id=member.business_id,
            after={**_service_audit(service), "performers": links},
        )  # fmt: skip
        return service.id


async def edit_service(
    db: Database, member: Member, service_id: int, form: Mapping[str, str], *, actor: Actor
) -> None:
    """Change a service and who performs it (own prices and durations included)."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        service = await _locked(s, Service, member.business_id, service_id)
        master_ids = [c.id for c in await _active_masters(s, member.business_id)]
        wanted = parse_service(form, master_ids)
        before = _service_audit(service)
        old_links = (await _services(s, member.business_id, service.id))[0].performers
        for name, value in wanted.row().items():
            setattr(service, name, value)
        links = await _set_performers(
            s, member.business_id, service.id, wanted.performers, master_ids
        )
        await audit.record(
            s, actor=actor, action="service.update", entity="service", entity_id=service.id,
            business_id=member.business_id,
            before={**before, "performers": [
                {"staff_id": p.staff_id, "price_tiyn": p.price_tiyn,
                 "duration_min": p.duration_min} for p in old_links if not p.archived]},
            after={**_service_audit(service), "performers": links},
        )  # fmt: skip


async def add_master(
    db: Database, member: Member, form: Mapping[str, str], photo: bytes | None, *, actor: Actor
) -> int:
    """A new master from its form (a photo optional), at the end of the list; its id."""
    picture, photo_error = _photo(photo)
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        service_ids = [c.id for c in await _active_services(s, member.business_id)]
        wanted = parse_master(form, service_ids, photo_error=photo_error)
        await plans.require_room_for_master(s, member.business_id)
        master = Staff(
            business_id=member.business_id, photo=picture,
            sort_order=await _next_place(s, Staff, member.business_id), **wanted.row(),
        )  # fmt: skip
        s.add(master)
        await s.flush()
        for service_id in sorted(wanted.services):
            s.add(StaffService(business_id=member.business_id, staff_id=master.id,
                               service_id=service_id))  # fmt: skip
        await s.flush()
        await audit.record(
            s, actor=actor, action="staff.create", entity="staff", entity_id=master.id,
            business_id=member.business_id,
            after={**wanted.row(), "services": sorted(wanted.services),
                   "photo": picture is not None},
        )  # fmt: skip
        return master.id


async def edit_master(
    db: Database, member: Member, staff_id: int, form: Mapping[str, str], photo: bytes | None,
    *, actor: Actor,
) -> None:  # fmt: skip
    """Change a master: name, title, which active services they do (their own prices stay
    as set on the service's form), and the photo when a new one is sent."""
    picture, photo_error = _photo(photo)
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        master = await _locked(s, Staff, member.business_id, staff_id)
        service_ids = [c.id for c in await _active_services(s, member.business_id)]
        wanted = parse_master(form, service_ids, photo_error=photo_error)
        current = {
            link.service_id: link
            for link in (
                await s.execute(
                    select(StaffService).where(
                        StaffService.business_id == member.business_id,
                        StaffService.staff_id == master.id,
                        StaffService.service_id.in_(service_ids),
                    )
                )
            ).scalars()
        }
        before = {"name": master.name, "title": dict(master.title or {}),
                  "services": sorted(current)}  # fmt: skip
        master.name, master.title = wanted.name, wanted.title
        if picture is not None:
            master.photo = picture
        for service_id in service_ids:
            link = current.get(service_id)
            if service_id in wanted.services and link is None:
                s.add(StaffService(business_id=member.business_id, staff_id=master.id,
                                   service_id=service_id))  # fmt: skip
            elif service_id not in wanted.services and link is not None:
                await s.delete(link)
        await s.flush()
        await audit.record(
            s, actor=actor, action="staff.update", entity="staff", entity_id=master.id,
            business_id=member.business_id, before=before,
            after={**wanted.row(), "services": sorted(wanted.services),
                   **({"photo": True} if picture is not None else {})},
        )  # fmt: skip


async def remove_master_photo(db: Database, member: Member, staff_id: int, *, actor: Actor) -> None:
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        master = await _locked(s, Staff, member.business_id, staff_id)
        if master.photo is None:
            return
        master.photo = None
        await s.flush()
        await audit.record(
            s, actor=actor, action="staff.photo_remove", entity="staff", entity_id=master.id,
            business_id=member.business_id, before={"photo": True}, after={"photo": False},
        )  # fmt: skip


async def _reorder(
    session: AsyncSession, model: type[_Row], business_id: int, row_id: int, step: int
) -> tuple[int, int] | None:
    """Move an active row one place up (-1) or down (+1) among the active ones, numbering
    them 0, 1, 2… as it goes; the old and new place, or None when it cannot move."""
    row = await _locked(session, model, business_id, row_id)
    if row.archived_at is not None:
        return None
    rows = list(
        (
            await session.execute(
                select(model.id, model.sort_order)
                .where(model.business_id == business_id, model.archived_at.is_(None))
                .order_by(model.sort_order, model.id)
                .with_for_update()
            )
        ).all()
    )
    places = {r.id: r.sort_order for r in rows}
    order = [r.id for r in rows]
    place = order.index(row.id)
    target = place + step
    if not 0 <= target < len(order):
        return None
    order[place], order[target] = order[target], order[place]
    for position, each in enumerate(order):
        if places[each] != position:
            await session.execute(
                update(model).where(model.business_id == business_id, model.id == each)
                .values(sort_order=position)
            )  # fmt: skip
    return place, target


def _step(direction: str) -> int:
    if direction not in ("up", "down"):
        raise ValidationFailed(fields={"direction": gettext(N_("Choose up or down."))})
    return -1 if direction == "up" else 1


async def move_service(
    db: Database, member: Member, service_id: int, direction: str, *, actor: Actor
) -> None:
    """One place up or down in the list clients see (nothing happens at either end)."""
    step = _step(direction)
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        moved = await _reorder(s, Service, member.business_id, service_id, step)
        if moved is not None:
            await audit.record(
                s, actor=actor, action="service.move", entity="service", entity_id=service_id,
                business_id=member.business_id, before={"place": moved[0]},
                after={"place": moved[1]},
            )  # fmt: skip


async def move_master(
    db: Database, member: Member, staff_id: int, direction: str, *, actor: Actor
) -> None:
    step = _step(direction)
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        moved = await _reorder(s, Staff, member.business_id, staff_id, step)
        if moved is not None:
            await audit.record(
                s, actor=actor, action="staff.move", entity="staff", entity_id=staff_id,
                business_id=member.business_id, before={"place": moved[0]},
                after={"place": moved[1]},
            )  # fmt: skip


async def _set_active(
    db: Database, member: Member, model: type[_Row], row_id: int, active: bool, actor: Actor
) -> None:
    entity = "service" if model is Service else "staff"
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        row = await _locked(s, model, member.business_id, row_id)
        if (row.archived_at is None) == active:
            return  # already so: a second click changes nothing
        if active and model is Staff:
            await plans.require_room_for_master(s, member.business_id)
        row.archived_at = None if active else datetime.now(UTC)
        if active:
            row.sort_order = await _next_place(s, model, member.business_id)
        await s.flush()
        await audit.record(
            s, actor=actor, action=f"{entity}.{'restore' if active else 'archive'}",
            entity=entity, entity_id=row.id, business_id=member.business_id,
            before={"active": not active}, after={"active": active},
        )  # fmt: skip


async def archive_service(db: Database, member: Member, service_id: int, *, actor: Actor) -> None:
    """Stop offering a service. Its bookings stay as they are; it can be restored."""
    await _set_active(db, member, Service, service_id, False, actor)


async def restore_service(db: Database, member: Member, service_id: int, *, actor: Actor) -> None:
    """Offer a deactivated service again, at the end of the list."""
    await _set_active(db, member, Service, service_id, True, actor)


async def archive_master(db: Database, member: Member, staff_id: int, *, actor: Actor) -> None:
    """A master no longer takes bookings (left, on leave). Their bookings stay as they are."""
    await _set_active(db, member, Staff, staff_id, False, actor)


async def restore_master(db: Database, member: Member, staff_id: int, *, actor: Actor) -> None:
    await _set_active(db, member, Staff, staff_id, True, actor)
