"""The dashboard's authorization matrix (issue 13, done-when): every dashboard route that takes an
id, asked by the owner of business B with business A's real ids, answers 404 and changes
nothing of A; every route that needs an administrator or the owner answers a master 403.

The routes are read from the app itself (``app.routes``), not listed by hand: a route added
later is in the matrix the day it lands. A path parameter this file cannot map to one of A's
ids fails the test, so the new route's author adds the mapping (``ID_OF``). The role a handler
needs is read from its ``member`` dependency, the one ``app.security.dashboard.role`` makes."""

from __future__ import annotations

import inspect
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import set_context
from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, create_booking_in
from app.models import Account, Business
from app.security.dashboard import role as role_dependencies
from app.settings import Settings
from tests.factories import BusinessFixture, local_start, new_business, next_telegram_id
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
            for method in sorted(handler.http_methods - SKIPPED_METHODS):
                found.append(Endpoint(method, route.path, handler.name, required_role(handler)))
    return found


@dataclass
class World:
    a: BusinessFixture
    ids: dict[str, int]


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
    client = Account(name="Matrix client", telegram_id=next_telegram_id(), locale="en")
    owner_session.add(client)
    await owner_session.commit()
    await set_context(owner_session, business_id=a.id)
    business = await owner_session.get_one(Business, a.id)
    booking, _ = await create_booking_in(
        owner_session, business,
        BookingRequest(service_id=a.service_id, staff_id=staff_id, start=local_start(a, 5)),
        account=client, actor=Actor(kind="client", account_id=client.id),
    )  # fmt: skip
    master = await add_member(owner_session, a.id, "master", staff_id=staff_id)
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
            "INSERT INTO calendar_feeds (business_id, staff_id, token_hash) "
            "VALUES (:b, :s, md5(random()::text) || md5(random()::text)) RETURNING id",
            b=a.id, s=staff_id,
        ),
    }  # fmt: skip
    await owner_session.commit()
    ids["master_account"] = master.account_id
    return World(a=a, ids=ids)


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


async def test_a_master_is_refused_every_route_for_administrators_and_owners(
    app: Litestar, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    world = await arrange_a(owner_session)
    master = world.ids["master_account"]
    csrf = await sign_in_as(client, owner_session, settings, master, business_id=world.a.id)
    before = await rows_of(owner_session, world.a.id)
    endpoints = [e for e in dashboard_endpoints(app) if e.role in ("admin", "owner")]
    assert endpoints
    answers = {}
    for endpoint in endpoints:
        path = filled(endpoint, world.ids)
        answers[f"{endpoint.method} {endpoint.path}"] = await ask(client, endpoint, path, csrf)
    wrong = {route: status for route, status in answers.items() if status != 403}
    assert wrong == {}, "a master must get 403 on what needs an administrator or the owner"
    # the CSRF token was right: the same session may still do what a master may
    assert (await client.get(f"{PREFIX}/", follow_redirects=False)).status_code == 200
    assert await rows_of(owner_session, world.a.id) == before


@pytest.mark.parametrize("least", ["admin", "owner"])
def test_role_dependencies_say_what_they_require(least: str) -> None:
    """The matrix reads the role from role()'s closure: it must be there to read."""
    provide = role_dependencies(least)["member"]
    assert inspect.getclosurevars(provide.dependency).nonlocals["at_least"] == least
