"""The dashboard's authorization matrix (issues 13 and 14, done-when): every dashboard route that
takes an id, asked by the owner of business B with business A's real ids, answers 404 and changes
nothing of A; A's ids in a query string or a form show and change nothing of A either; a master
gets 404 (or 403) on another master's booking or feed; a feed's address is 404 once revoked,
forged or unknown; an id no row can have (0, negative, beyond bigint) is 404 on every route;
every page answers a signed-out visitor with the sign-in page and a lesser role with 403.

The routes are read from the app itself (``app.routes``), not listed by hand: a route added
later is in the matrix the day it lands. A path parameter this file cannot map to one of A's
ids fails the test, so the new route's author adds the mapping (``ID_OF``). The role a handler
needs is read from its ``member`` dependency, the one ``app.security.dashboard.role`` makes."""

from __future__ import annotations

import hashlib
import inspect
import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import phonenumbers
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import set_context
from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, create_booking_in
from app.domain.members import ROLES
from app.models import Account, Business
from app.security.dashboard import role as role_dependencies
from app.settings import Settings
from tests.factories import BusinessFixture, local_start, new_business, next_telegram_id
from tests.helpers import TelegramUser
from tests.support.dashboard import add_member, sign_in_as

PREFIX = "/dashboard"
SKIPPED_METHODS = {"OPTIONS", "HEAD"}
PARAM = re.compile(r"\{(\w+):(\w+)\}")
# a form that satisfies the common fields of the dashboard's forms, so a handler that checks
# its input before it looks the id up still reaches the lookup; the id, not the form, is tested
FORM = {
    "confirm": "yes",
    "role": "admin",
    "direction": "up",
    "reason": "matrix",
    "note": "matrix",
    "name": "Matrix",
    "name_ru": "Матрица",
    "name_kk": "Матрица",
    "name_en": "Matrix",
    "duration_min": "30",
    "price": "1000",
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    name: str | None
    role: str | None  # the least role its ``member`` dependency asks for; None: no such guard
    signed_in: bool  # it takes the signed-in ``dashboard`` (or a ``member``): no page without one

    @property
    def params(self) -> list[tuple[str, str]]:
        return PARAM.findall(self.path)

    @property
    def takes_an_id(self) -> bool:
        return any(kind == "int" for _, kind in self.params)


def required_role(handler: Any) -> str | None:
    """The role a handler's ``member`` dependency requires (``role(...)``'s closure), if any."""
    provide = handler.resolve_dependencies().get("member")
    if provide is None:
        return None
    made_by_role = role_dependencies("master")["member"].dependency
    assert provide.dependency.__code__ is made_by_role.__code__, (
        f"{handler.name}: a 'member' dependency not made by app.security.dashboard.role"
    )
    least = inspect.getclosurevars(provide.dependency).nonlocals["at_least"]
    return str(least)


def dashboard_endpoints(app: Litestar) -> list[Endpoint]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(PREFIX):
            continue
        for handler in route.route_handlers:
            takes = set(handler.parsed_fn_signature.parameters)
            signed_in = bool(takes & {"dashboard", "member"}) or required_role(handler) is not None
            for method in sorted(handler.http_methods - SKIPPED_METHODS):
                found.append(
                    Endpoint(method, route.path, handler.name, required_role(handler), signed_in)
                )
    return found


@dataclass
class World:
    a: BusinessFixture
    ids: dict[str, int]
    # what only this business's pages could show: its client's name and phone, its first
    # master's and its service's names (unique to this world)
    private: list[str] = field(default_factory=list)
    feed_token: str = ""  # a live feed's secret (the first master's)
    revoked_token: str = ""  # a revoked feed's secret
    booking_start: datetime | None = None


# which of A's rows each path parameter names; a new parameter needs a line here
ID_OF = {
    "service_id": "service",
    "staff_id": "staff",
    "booking_id": "booking",
    "client_id": "client",
    "invitation_id": "invitation",
    "member_id": "membership",
    "override_id": "schedule_override",
    "time_off_id": "time_off",
    "holiday_id": "holiday",
    "feed_id": "calendar_feed",
    "invoice_id": "invoice",
}


def tiny_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 120, 80)).save(out, "JPEG")
    return out.getvalue()


async def returning_id(session: AsyncSession, sql: str, **params: Any) -> int:
    return int((await session.execute(text(sql), params)).scalar_one())


async def arrange_a(owner_session: AsyncSession) -> World:
    """Business A with one of everything a dashboard route can name by id."""
    a = await new_business(owner_session)
    staff_id = a.staff_ids[0]
    mark = secrets.token_hex(4)
    phone = f"+7701{secrets.randbelow(10**7):07d}"
    client = Account(name=f"Клиент {mark}", phone=phone, telegram_id=next_telegram_id(),
                     locale="en")  # fmt: skip
    owner_session.add(client)
    await owner_session.commit()
    await set_context(owner_session, business_id=a.id)
    await owner_session.execute(
        text("UPDATE staff SET name = :n WHERE id = :s"), {"n": f"Мастер {mark}", "s": staff_id}
    )
    await owner_session.execute(
        text("UPDATE services SET name = jsonb_build_object('ru', CAST(:n AS text), 'kk', CAST(:n AS text), 'en', CAST(:n AS text)) "
             "WHERE id = :s"),
        {"n": f"Услуга {mark}", "s": a.service_id},
    )  # fmt: skip
    business = await owner_session.get_one(Business, a.id)
    start = local_start(a, 5)
    booking, _ = await create_booking_in(
        owner_session, business,
        BookingRequest(service_id=a.service_id, staff_id=staff_id, start=start),
        account=client, actor=Actor(kind="client", account_id=client.id),
    )  # fmt: skip
    master = await add_member(owner_session, a.id, "master", staff_id=staff_id)
    other_master = await add_member(owner_session, a.id, "master", staff_id=a.staff_ids[1])
    admin = await add_member(owner_session, a.id, "admin")
    feed_token, revoked_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await owner_session.execute(
        text("UPDATE staff SET photo = :jpeg WHERE id = :s"), {"jpeg": tiny_jpeg(), "s": staff_id}
    )
    day = date.today() + timedelta(days=20)
    ids = {
        "service": a.service_id,
        "staff": staff_id,
        "booking": booking.id,
        "client": await returning_id(
            owner_session, "SELECT id FROM clients WHERE business_id = :b AND account_id = :a",
            b=a.id, a=client.id,
        ),
        "membership": await returning_id(
            owner_session, "SELECT id FROM memberships WHERE account_id = :a",
            a=master.account_id,
        ),
        "invitation": await returning_id(
            owner_session,
            "INSERT INTO invitations (business_id, role, email, token_hash, expires_at) "
            "VALUES (:b, 'admin', 'matrix@example.com', md5(random()::text) || "
            "md5(random()::text), now() + interval '7 days') RETURNING id",
            b=a.id,
        ),
        "schedule_override": await returning_id(
            owner_session,
            "INSERT INTO schedule_overrides (business_id, staff_id, on_date, kind) "
            "VALUES (:b, :s, :d, 'day_off') RETURNING id",
            b=a.id, s=staff_id, d=day,
        ),
        "time_off": await returning_id(
            owner_session,
            "INSERT INTO time_off (business_id, staff_id, period) VALUES (:b, :s, "
            "tstzrange(:f, :t)) RETURNING id",
            b=a.id, s=staff_id, f=datetime.combine(day, time(9), UTC),
            t=datetime.combine(day, time(12), UTC),
        ),
        "holiday": await returning_id(
            owner_session,
            "INSERT INTO holidays (business_id, on_date, name) VALUES (:b, :d, 'Matrix') "
            "RETURNING id",
            b=a.id, d=day + timedelta(days=1),
        ),
        "calendar_feed": await returning_id(
            owner_session,
            "INSERT INTO calendar_feeds (business_id, staff_id, token_hash, include_phone) "
            "VALUES (:b, :s, :h, true) RETURNING id",
            b=a.id, s=staff_id, h=hashlib.sha256(feed_token.encode()).hexdigest(),
        ),
        "invoice": await returning_id(
            owner_session,
            "INSERT INTO invoices (business_id, number, amount_tiyn, subtotal_tiyn, issued_on, "
            "due_on, status, retain_until, lines) VALUES (:b, :n, 499000, 499000, current_date, "
            "current_date + 10, 'open', current_date + 1827, CAST(:lines AS jsonb)) RETURNING id",
            b=a.id, n=f"M-{mark}",
            lines='[{"description": {"ru": "Pro", "kk": "Pro", "en": "Pro"}, "quantity": 1, '
                  '"unit_price_tiyn": 499000, "amount_tiyn": 499000}]',
        ),
        "revoked_feed": await returning_id(
            owner_session,
            "INSERT INTO calendar_feeds (business_id, staff_id, token_hash, include_phone, "
            "revoked_at) VALUES (:b, :s, :h, true, now()) RETURNING id",
            b=a.id, s=staff_id, h=hashlib.sha256(revoked_token.encode()).hexdigest(),
        ),
    }  # fmt: skip
    await owner_session.commit()
    ids["master_account"] = master.account_id
    ids["other_master_account"] = other_master.account_id
    ids["admin_account"] = admin.account_id
    number = phonenumbers.parse(phone)
    shown = [phone] + [
        phonenumbers.format_number(number, style)
        for style in (phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                      phonenumbers.PhoneNumberFormat.NATIONAL)
    ]  # fmt: skip
    return World(a=a, ids=ids, private=[f"Клиент {mark}", f"Мастер {mark}", f"Услуга {mark}",
                                        *shown],
                 feed_token=feed_token, revoked_token=revoked_token,
                 booking_start=start)  # fmt: skip


async def rows_of(owner_session: AsyncSession, business_id: int) -> dict[str, list[str]]:
    """Every row of every tenant table that belongs to the business, and the business itself."""
    tables = (
        await owner_session.execute(
            text(
                "SELECT c.table_name FROM information_schema.columns c JOIN "
                "information_schema.tables t USING (table_schema, table_name) "
                "WHERE c.table_schema = 'public' AND c.column_name = 'business_id' "
                "AND t.table_type = 'BASE TABLE' ORDER BY 1"
            )
        )
    ).scalars()
    snapshot = {}
    for table in list(tables):
        rows = await owner_session.execute(
            text(f"SELECT to_jsonb(t)::text FROM {table} t WHERE business_id = :b ORDER BY 1"),
            {"b": business_id},
        )
        snapshot[table] = list(rows.scalars())
    business = await owner_session.execute(
        text("SELECT to_jsonb(b)::text FROM businesses b WHERE id = :b"), {"b": business_id}
    )
    snapshot["businesses"] = list(business.scalars())
    await owner_session.commit()
    return snapshot


def filled(endpoint: Endpoint, ids: dict[str, int]) -> str:
    path = endpoint.path
    for name, kind in endpoint.params:
        if kind != "int":
            path = path.replace(f"{{{name}:{kind}}}", "matrix")
            continue
        assert name in ID_OF, (
            f"{endpoint.method} {endpoint.path} ({endpoint.name}): path parameter {name!r} "
            "has no mapping to one of business A's ids; add it to ID_OF and arrange_a"
        )
        path = path.replace(f"{{{name}:int}}", str(ids[ID_OF[name]]))
    return path


async def ask(client: httpx.AsyncClient, endpoint: Endpoint, path: str, csrf: str) -> int:
    if endpoint.method == "GET":
        response = await client.get(path, follow_redirects=False)
    else:
        response = await client.request(
            endpoint.method, path, data={"csrf_token": csrf, **FORM},
            headers={"X-CSRF-Token": csrf}, follow_redirects=False,
        )  # fmt: skip
    return response.status_code


def test_the_matrix_sees_the_routes(app: Litestar) -> None:
    """The enumeration finds what it must (the check itself can fail), and every route that
    takes an id is behind the role guard."""
    endpoints = dashboard_endpoints(app)
    names = {e.name for e in endpoints}
    assert {"dashboard:team", "dashboard:team-member-remove", "dashboard:home"} <= names
    with_ids = [e for e in endpoints if e.takes_an_id]
    assert len(with_ids) >= 6
    unguarded = [f"{e.method} {e.path}" for e in with_ids if e.role is None]
    assert unguarded == []
    assert any(e.role == "owner" for e in endpoints) and any(e.role == "admin" for e in endpoints)
    signed_in = {e.name: e.signed_in for e in endpoints}
    assert signed_in["dashboard:security"] and signed_in["dashboard:calendar"]
    assert not signed_in["dashboard:signin"] and not signed_in["dashboard:signup"]


async def test_another_businesss_ids_are_not_found_on_every_route_that_takes_one(
    app: Litestar, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    world = await arrange_a(owner_session)
    b = await arrange_a(owner_session)  # B has one of everything too, for the control below
    assert b.a.owner_account_id is not None
    csrf = await sign_in_as(
        client, owner_session, settings, b.a.owner_account_id, business_id=b.a.id
    )
    before = await rows_of(owner_session, world.a.id)
    endpoints = [e for e in dashboard_endpoints(app) if e.takes_an_id]
    answers = {}
    for endpoint in endpoints:
        path = filled(endpoint, world.ids)
        answers[f"{endpoint.method} {endpoint.path}"] = await ask(client, endpoint, path, csrf)
    wrong = {route: status for route, status in answers.items() if status != 404}
    assert wrong == {}, "A's ids must be 404 to B's owner"
    assert await rows_of(owner_session, world.a.id) == before  # nothing of A changed
    # the control: B's own ids open B's pages, so the 404s above are about the tenant
    for endpoint in endpoints:
        if endpoint.method == "GET":
            own = await ask(client, endpoint, filled(endpoint, b.ids), csrf)
            assert own == 200, f"{endpoint.path} with B's own ids: {own}"


@pytest.mark.parametrize("lesser", ["master", "admin"])
async def test_a_lesser_role_is_refused_every_route_above_it(
    app: Litestar,
    client: httpx.AsyncClient,
    owner_session: AsyncSession,
    settings: Settings,
    lesser: str,
) -> None:
    """A master on what needs an administrator or the owner, an administrator on what needs
    the owner: 403 on every such route, read from the app (a new page is in the matrix the
    day it lands), and nothing of the business changes."""
    world = await arrange_a(owner_session)
    person = world.ids[f"{lesser}_account" if lesser == "admin" else "master_account"]
    csrf = await sign_in_as(client, owner_session, settings, person, business_id=world.a.id)
    before = await rows_of(owner_session, world.a.id)
    above = ROLES[ROLES.index(lesser) + 1 :]
    endpoints = [e for e in dashboard_endpoints(app) if e.role in above]
    assert endpoints
    answers = {}
    for endpoint in endpoints:
        path = filled(endpoint, world.ids)
        answers[f"{endpoint.method} {endpoint.path}"] = await ask(client, endpoint, path, csrf)
    wrong = {route: status for route, status in answers.items() if status != 403}
    assert wrong == {}, f"{lesser} must get 403 on what needs {' or '.join(above)}"
    # the CSRF token was right: the same session may still do what its role may
    assert (await client.get(f"{PREFIX}/", follow_redirects=False)).status_code == 200
    assert await rows_of(owner_session, world.a.id) == before


@pytest.mark.parametrize("least", ["admin", "owner"])
def test_role_dependencies_say_what_they_require(least: str) -> None:
    """The matrix reads the role from role()'s closure: it must be there to read."""
    provide = role_dependencies(least)["member"]
    assert inspect.getclosurevars(provide.dependency).nonlocals["at_least"] == least


# --- ids out of range --------------------------------------------------------------------------

# what a user can type in place of an id that no row can have: 0, negative, beyond bigint
NO_SUCH_IDS = ("0", "-1", str(2**63), "99999999999999999999")


def with_every_id(endpoint: Endpoint, value: str) -> str:
    path = endpoint.path
    for name, kind in endpoint.params:
        path = path.replace(f"{{{name}:{kind}}}", value if kind == "int" else "matrix")
    return path


async def test_an_id_no_row_can_have_is_not_found_on_every_route(
    app: Litestar, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """One answer for an id that cannot exist, whatever its shape: 404, like an unknown one
    (``PathId`` and app.routes.errors.names_nothing) — on every dashboard route and every
    /api/v1 route that takes one, never 422 or a 500."""
    world = await arrange_a(owner_session)
    assert world.a.owner_account_id is not None
    csrf = await sign_in_as(
        client, owner_session, settings, world.a.owner_account_id, business_id=world.a.id
    )
    answers = {}
    for endpoint in (e for e in dashboard_endpoints(app) if e.takes_an_id):
        for value in NO_SUCH_IDS:
            status = await ask(client, endpoint, with_every_id(endpoint, value), csrf)
            answers[f"{endpoint.method} {endpoint.path} ({value})"] = status
    api = [
        (method, route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/") and ":int}" in route.path
        for method in sorted(route.methods - SKIPPED_METHODS)
    ]
    assert len(api) >= 2  # the client's booking and its cancellation at least
    user = TelegramUser()
    for method, template in api:
        for value in NO_SUCH_IDS:
            path = re.sub(r"\{\w+:int\}", value, template)
            response = await client.request(method, path, headers=user.headers())
            answers[f"{method} {template} ({value})"] = response.status_code
            if response.status_code == 404:
                assert response.json()["error"] == "not_found"
    wrong = {route: status for route, status in answers.items() if status != 404}
    assert wrong == {}, "an id that cannot exist must be 404"


# --- another business's ids in query strings and forms -----------------------------------------

# query and form fields that carry an id, and which of A's rows each names; a page that reads an
# id under another name should add it here
ID_FIELDS = {
    "staff": "staff",
    "staff_id": "staff",
    "master": "staff",
    "master_id": "staff",
    "service": "service",
    "service_id": "service",
    "client_id": "client",
    "booking": "booking",
    "booking_id": "booking",
    "feed_id": "calendar_feed",
    "member_id": "membership",
    "invitation_id": "invitation",
}
# the columns that would point at one of A's rows were a form of B's to take A's id
REFERENCES = {
    "staff_id": "staff",
    "service_id": "service",
    "client_id": "client",
    "booking_id": "booking",
}


def foreign_values(world: World) -> dict[str, str]:
    """Every id field set to A's row, and the rest a form needs to reach the lookup (a day and
    a period around A's booking, a free time the day after it, a walk-in client)."""
    assert world.booking_start is not None
    day = world.booking_start.date()
    return {
        **{name: str(world.ids[row]) for name, row in ID_FIELDS.items()},
        "date": day.isoformat(),
        "view": "day",
        "from": (day - timedelta(days=1)).isoformat(),
        "to": (day + timedelta(days=1)).isoformat(),
        "start": (world.booking_start + timedelta(days=1)).isoformat(),
        "zone": world.a.timezone,
        "client_name": "Matrix walk-in",
        "client_phone": "+77010000001",
        "body": "matrix",
        # a search for A's client by the part of the name only A's has (a page may echo the
        # search itself; A's client's whole name must not come back)
        "q": world.private[0].split()[-1],
        "client": world.private[0].split()[-1],
    }


def leaked(world: World, response: httpx.Response) -> list[str]:
    return [shown for shown in world.private if shown in response.text]


async def references_to(owner_session: AsyncSession, business_id: int, world: World) -> list[str]:
    """Rows of the business that point at one of A's rows (``REFERENCES``)."""
    found = await owner_session.execute(
        text(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.columns t ON t.table_schema = c.table_schema "
            "AND t.table_name = c.table_name AND t.column_name = 'business_id' "
            "JOIN information_schema.tables k ON k.table_schema = c.table_schema "
            "AND k.table_name = c.table_name AND k.table_type = 'BASE TABLE' "
            "WHERE c.table_schema = 'public' AND c.column_name = ANY(:columns)"
        ),
        {"columns": list(REFERENCES)},
    )
    pointing = []
    for table, column in list(found):
        count = await owner_session.scalar(
            text(f"SELECT count(*) FROM {table} WHERE business_id = :b AND {column} = :id"),
            {"b": business_id, "id": world.ids[REFERENCES[column]]},
        )
        if count:
            pointing.append(f"{table}.{column}")
    await owner_session.commit()
    return pointing


async def signed_in_owner(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, world: World
) -> str:
    assert world.a.owner_account_id is not None
    return await sign_in_as(
        client, owner_session, settings, world.a.owner_account_id, business_id=world.a.id
    )


async def test_another_businesss_ids_in_queries_and_forms_show_and_change_nothing(
    app: Litestar, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """B's owner puts A's ids (master, service, client, booking…) in the query of every page
    and the form of every action that takes no id in its path (the calendar's ``staff=``, the
    bookings list's and CSV's ``staff=``/``client=``, the new-booking form, analytics, live
    updates, feeds…): no answer shows A's client, master or service, nothing of A changes and
    nothing of B comes to point at A's rows."""
    world = await arrange_a(owner_session)
    b = await arrange_a(owner_session)
    values = foreign_values(world)
    # the control: A's owner, asking the same, does see A's client (the check can fail)
    await signed_in_owner(client, owner_session, settings, world)
    for name in ("dashboard:calendar", "dashboard:bookings"):
        own = await client.get(app.route_reverse(name), params=values)
        assert own.status_code == 200 and world.private[0] in own.text, name
    csrf = await signed_in_owner(client, owner_session, settings, b)
    before = await rows_of(owner_session, world.a.id)
    endpoints = [e for e in dashboard_endpoints(app) if e.role is not None and not e.params]
    assert {"dashboard:calendar", "dashboard:bookings", "dashboard:bookings-csv",
            "dashboard:booking-new", "dashboard:booking-create"} <= {e.name for e in endpoints}  # fmt: skip
    problems = {}
    for endpoint in endpoints:
        for view in ("day", "week"):
            if endpoint.method == "GET":
                response = await client.get(
                    endpoint.path, params={**values, "view": view}, follow_redirects=False
                )
            else:
                response = await client.request(
                    endpoint.method, endpoint.path, headers={"X-CSRF-Token": csrf},
                    data={**FORM, **values, "view": view, "csrf_token": csrf},
                    follow_redirects=False,
                )  # fmt: skip
            shown = leaked(world, response)
            if response.status_code >= 500 or shown:
                problems[f"{endpoint.method} {endpoint.path} (view={view})"] = (
                    response.status_code, shown,
                )  # fmt: skip
    assert problems == {}, "A's ids must show nothing of A to B (and never a 500)"
    assert await rows_of(owner_session, world.a.id) == before
    assert await references_to(owner_session, b.a.id, world) == []


async def test_another_businesss_ids_in_the_forms_of_bs_own_rows_change_nothing(
    app: Litestar, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """Every action on one of B's own rows (moving B's booking to A's master, giving B's
    service A's master, linking B's member to A's master…), sent with A's ids in its form:
    whatever it answers, nothing of A changes and no row of B points at A's. Each action gets
    a business of its own, so one action's effect (a transfer of ownership) does not decide
    the next one's answer."""
    world = await arrange_a(owner_session)
    values = foreign_values(world)
    before = await rows_of(owner_session, world.a.id)
    endpoints = [
        e for e in dashboard_endpoints(app)
        if e.role is not None and e.takes_an_id and e.method != "GET"
    ]  # fmt: skip
    assert "dashboard:booking-reschedule" in {e.name for e in endpoints}
    problems = {}
    b: World | None = None
    csrf = ""
    for endpoint in endpoints:
        if b is None:  # a fresh B after each action B's owner was allowed to do
            b = await arrange_a(owner_session)
            csrf = await signed_in_owner(client, owner_session, settings, b)
        response = await client.request(
            endpoint.method, filled(endpoint, b.ids), headers={"X-CSRF-Token": csrf},
            data={**FORM, **values, "csrf_token": csrf}, follow_redirects=False,
        )  # fmt: skip
        pointing = await references_to(owner_session, b.a.id, world)
        if response.status_code >= 500 or leaked(world, response) or pointing:
            problems[f"{endpoint.method} {endpoint.path}"] = (response.status_code, pointing)
        if response.status_code < 400:
            b = None
    assert problems == {}, "A's ids in B's forms must never reach A's rows"
    assert await rows_of(owner_session, world.a.id) == before


# --- a master and another master's bookings ----------------------------------------------------

# path parameters that name what belongs to one master of the business
OF_ONE_MASTER = {"booking_id", "feed_id"}


async def test_a_master_gets_nothing_of_another_masters_bookings_or_feeds(
    app: Litestar, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """The second master of A, on every route a master may use that names the first master's
    booking or feed (the panel and each of its actions, the feed's revocation): 404 or 403,
    the response shows nothing of the booking, and nothing changes."""
    world = await arrange_a(owner_session)
    assert world.booking_start is not None
    endpoints = [
        e for e in dashboard_endpoints(app)
        if e.role == "master" and OF_ONE_MASTER & {name for name, _ in e.params}
    ]  # fmt: skip
    names = {e.name for e in endpoints}
    assert {"dashboard:booking", "dashboard:booking-confirm", "dashboard:booking-cancel",
            "dashboard:booking-reschedule", "dashboard:booking-complete",
            "dashboard:booking-no-show", "dashboard:booking-messages",
            "dashboard:feed-revoke"} <= names  # fmt: skip
    # a form that would be obeyed were the booking theirs: their own column, a free time
    form = {**FORM, "start": (world.booking_start + timedelta(days=1)).isoformat(),
            "zone": world.a.timezone, "staff_id": str(world.a.staff_ids[1]),
            "body": "matrix"}  # fmt: skip
    # the control: the booking's own master opens its panel
    await sign_in_as(client, owner_session, settings, world.ids["master_account"],
                     business_id=world.a.id)  # fmt: skip
    own = await client.get(app.route_reverse("dashboard:booking", booking_id=world.ids["booking"]))
    assert own.status_code == 200 and world.private[0] in own.text
    csrf = await sign_in_as(client, owner_session, settings, world.ids["other_master_account"],
                            business_id=world.a.id)  # fmt: skip
    before = await rows_of(owner_session, world.a.id)
    problems = {}
    for endpoint in endpoints:
        path = filled(endpoint, world.ids)
        if endpoint.method == "GET":
            response = await client.get(path, follow_redirects=False)
        else:
            response = await client.request(
                endpoint.method, path, data={"csrf_token": csrf, **form},
                headers={"X-CSRF-Token": csrf}, follow_redirects=False,
            )  # fmt: skip
        if response.status_code not in (403, 404) or leaked(world, response):
            problems[f"{endpoint.method} {endpoint.path}"] = response.status_code
    assert problems == {}, "another master's booking or feed must be 404 or 403"
    assert await rows_of(owner_session, world.a.id) == before


# --- calendar feeds ----------------------------------------------------------------------------


async def test_a_feed_address_opens_only_its_own_live_feed(
    app: Litestar, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """``/ical/{token}.ics``: a live token shows its own business's bookings and nobody
    else's; a revoked, forged, altered or unknown one is 404 and shows nothing."""
    world = await arrange_a(owner_session)
    b = await arrange_a(owner_session)

    async def feed(token: str) -> httpx.Response:
        return await client.get(app.route_reverse("ical:feed", filename=f"{token}.ics"))

    live = await feed(world.feed_token)
    assert live.status_code == 200 and live.headers["content-type"].startswith("text/calendar")
    assert world.private[0] in live.text  # the control: the feed does show A's client
    theirs = await feed(b.feed_token)  # B's live feed: B's bookings, none of A's
    assert theirs.status_code == 200 and b.private[0] in theirs.text
    assert leaked(world, theirs) == []
    altered = world.feed_token[:-1] + ("A" if world.feed_token[-1] != "A" else "B")
    refused = {
        "revoked": world.revoked_token,
        "another business's revoked": b.revoked_token,
        "forged": secrets.token_urlsafe(32),
        "altered": altered,
        "its digest": hashlib.sha256(world.feed_token.encode()).hexdigest(),
        "too long": world.feed_token * 5,
    }
    answers = {what: await feed(token) for what, token in refused.items()}
    answers["without .ics"] = await client.get(f"/ical/{world.feed_token}")
    wrong = {what: r.status_code for what, r in answers.items() if r.status_code != 404}
    assert wrong == {}
    assert all(leaked(world, r) == [] for r in answers.values())
    # revoked through the dashboard by its master: 404 from then on
    csrf = await sign_in_as(client, owner_session, settings, world.ids["master_account"],
                            business_id=world.a.id)  # fmt: skip
    revoke = app.route_reverse("dashboard:feed-revoke", feed_id=world.ids["calendar_feed"])
    done = await client.post(revoke, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    gone = await feed(world.feed_token)
    assert gone.status_code == 404 and leaked(world, gone) == []


# --- signed out ---------------------------------------------------------------------------------


async def test_every_dashboard_page_sends_a_signed_out_visitor_to_sign_in(
    app: Litestar, client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    """Without a session, every page that needs one (read from the app) answers 303 to the
    sign-in page (pinned); an unsafe request answers 403 (pinned: no session, no CSRF token
    of one) and changes nothing."""
    world = await arrange_a(owner_session)
    before = await rows_of(owner_session, world.a.id)
    endpoints = [e for e in dashboard_endpoints(app) if e.signed_in]
    assert {"dashboard:calendar", "dashboard:booking", "dashboard:audit",
            "dashboard:security"} <= {e.name for e in endpoints}  # fmt: skip
    signin = app.route_reverse("dashboard:signin")
    wrong = {}
    for endpoint in endpoints:
        path = filled(endpoint, world.ids)
        if endpoint.method == "GET":
            response = await client.get(path, follow_redirects=False)
            where = response.headers.get("location", "")
            if response.status_code != 303 or where.split("?")[0] != signin:
                wrong[f"GET {endpoint.path}"] = (response.status_code, where)
        else:
            response = await client.request(
                endpoint.method, path, data=FORM, follow_redirects=False
            )
            if response.status_code != 403:
                wrong[f"{endpoint.method} {endpoint.path}"] = (response.status_code, "")
    assert wrong == {}, (
        "a page that needs a session sends a signed-out visitor to sign in (303, pinned); an "
        "unsafe request without a session is 403 (pinned CSRF)"
    )
    assert await rows_of(owner_session, world.a.id) == before
