"""The catalog in the dashboard (issue 13, item 3 and the wizard's services and masters steps):
services and masters are added, edited, reordered, deactivated and taken back by admins and
owners; a master sees the lists read-only; another business's ids answer 404; each change is
audited and the Mini App sees it on its next request."""

from __future__ import annotations

import re
from io import BytesIO
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.i18n import money
from app.models import Booking, Service, Staff, StaffService
from app.settings import Settings
from tests.factories import BusinessFixture, local_start, new_business
from tests.helpers import TelegramUser, booking_body, grant_consent
from tests.support.dashboard import add_member, form, sign_in_as

# Every catalog route that takes an id (method, path template): another business's id → 404.
ID_ROUTES: list[tuple[str, str]] = [
    ("GET", "/dashboard/services/{service_id}"),
    ("POST", "/dashboard/services/{service_id}"),
    ("POST", "/dashboard/services/{service_id}/move"),
    ("POST", "/dashboard/services/{service_id}/archive"),
    ("POST", "/dashboard/services/{service_id}/restore"),
    ("GET", "/dashboard/masters/{staff_id}"),
    ("POST", "/dashboard/masters/{staff_id}"),
    ("GET", "/dashboard/masters/{staff_id}/photo"),
    ("POST", "/dashboard/masters/{staff_id}/photo/delete"),
    ("POST", "/dashboard/masters/{staff_id}/move"),
    ("POST", "/dashboard/masters/{staff_id}/archive"),
    ("POST", "/dashboard/masters/{staff_id}/restore"),
]

# Routes that change the catalog or show a form to change it: admins and owners only.
ADMIN_ROUTES: list[tuple[str, str]] = [
    ("GET", "/dashboard/services/new"),
    ("POST", "/dashboard/services"),
    ("GET", "/dashboard/masters/new"),
    ("POST", "/dashboard/masters"),
    *[route for route in ID_ROUTES if route != ("GET", "/dashboard/masters/{staff_id}/photo")],
]


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(out, format="PNG")
    return out.getvalue()


async def signed_in(
    client: httpx.AsyncClient,
    owner_session: AsyncSession,
    settings: Settings,
    business: BusinessFixture,
    role: str = "owner",
) -> str:
    """Sign in as the business's owner (or a new member with ``role``); the CSRF token."""
    if role == "owner":
        assert business.owner_account_id is not None
        account_id = business.owner_account_id
    else:
        account_id = (await add_member(owner_session, business.id, role)).account_id
    return await sign_in_as(client, owner_session, settings, account_id, business_id=business.id)


def service_fields(csrf: str, **overrides: Any) -> dict[str, str]:
    fields: dict[str, Any] = {
        "name_ru": "Маникюр", "name_kk": "Маникюр жасау", "name_en": "Manicure",
        "category_ru": "Ногти", "category_kk": "", "category_en": "Nails",
        "duration_min": "90", "price": "8 000", "buffer_before_min": "0", "buffer_after_min": "15",
    }  # fmt: skip
    fields.update(overrides)
    return form(csrf, **fields)


async def services_of(session: AsyncSession, business_id: int) -> list[Service]:
    session.expire_all()
    rows = await session.execute(
        select(Service).where(Service.business_id == business_id).order_by(Service.sort_order)
    )
    return list(rows.scalars())


async def audit_actions(session: AsyncSession, business_id: int) -> list[tuple[str, str, int]]:
    rows = await session.execute(
        text(
            "SELECT action, actor_kind, entity_id FROM audit_log WHERE business_id = :b ORDER BY id"
        ),
        {"b": business_id},
    )
    return [(r.action, r.actor_kind, r.entity_id) for r in rows]


async def test_an_owner_adds_a_service_with_a_masters_own_price_and_the_mini_app_offers_it(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    csrf = await signed_in(client, owner_session, settings, business)
    first, second = business.staff_ids
    new_page = await client.get("/dashboard/services/new")
    assert new_page.status_code == 200
    assert f'name="staff_{first}"' in new_page.text and f'name="staff_{second}"' in new_page.text
    # the form carries the session's token itself (works without script)
    assert f'name="csrf_token" value="{csrf}"' in new_page.text
    master_page = await client.get("/dashboard/masters/new")
    assert f'name="csrf_token" value="{csrf}"' in master_page.text

    response = await client.post(
        "/dashboard/services",
        data=service_fields(
            csrf, **{f"staff_{first}": "1", f"price_{first}": "10000", f"duration_{first}": "120"}
        ),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/services"

    added = (await services_of(owner_session, business.id))[-1]
    assert added.name == {"ru": "Маникюр", "kk": "Маникюр жасау", "en": "Manicure"}
    assert added.category == {"ru": "Ногти", "en": "Nails"}
    assert (added.duration_min, added.price_tiyn) == (90, 800_000)
    assert (added.buffer_before_min, added.buffer_after_min) == (0, 15)
    links = (
        await owner_session.execute(
            select(StaffService).where(StaffService.service_id == added.id)
        )
    ).scalars().all()  # fmt: skip
    assert [(x.staff_id, x.price_tiyn, x.duration_min) for x in links] == [(first, 1_000_000, 120)]

    listing = await client.get("/dashboard/services?lang=en")
    assert "Manicure" in listing.text
    assert money(1_000_000, locale="en") in listing.text  # who does it, at their own price
    assert "120 min" in listing.text

    # the Mini App and the API offer it on their next request
    storefront = await client.get(f"/app/b/{business.slug}?lang=en")
    assert "Manicure" in storefront.text
    api = (await client.get(f"/api/v1/businesses/{business.slug}/services")).json()
    offered = {s["id"]: s for s in api["services"]}
    assert offered[added.id]["staff_ids"] == [first]
    assert offered[added.id]["price_tiyn"] == 800_000

    assert ("service.create", "staff", added.id) in await audit_actions(owner_session, business.id)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"duration_min": "0"}, "duration_min", "Укажите длительность от 5 до 720 минут."),
        ({"duration_min": "721"}, "duration_min", "Укажите длительность от 5 до 720 минут."),
        ({"price": "-5"}, "price", "Цена не может быть отрицательной."),
        ({"price": "много"}, "price", "Укажите цену в тенге, например 8 000."),
        ({"price": "100000000"}, "price", "Слишком высокая цена: не больше 10 000 000 ₸."),
        ({"price": ""}, "price", "Укажите цену (0, если бесплатно)."),
        ({"name_ru": "  "}, "name_ru", "Укажите на русском: он показывается, когда нет перевода."),
        ({"buffer_after_min": "300"}, "buffer_after_min", "Укажите от 0 до 240 минут."),
        ({"name_en": "x" * 121}, "name_en", "Не больше 120 символов."),
    ],
)
async def test_bad_input_is_refused_beside_its_field_in_russian_and_nothing_is_written(
    client: httpx.AsyncClient,
    owner_session: AsyncSession,
    settings: Settings,
    overrides: dict[str, str],
    field: str,
    message: str,
) -> None:
    business = await new_business(owner_session)
    csrf = await signed_in(client, owner_session, settings, business)
    before = len(await services_of(owner_session, business.id))
    response = await client.post(
        "/dashboard/services?lang=ru", data=service_fields(csrf, **overrides)
    )
    assert response.status_code == 422
    beside = re.search(rf'<small id="e-{field}" class="error" role="alert">([^<]*)</small>',
                       response.text)  # fmt: skip
    assert beside is not None, response.text
    assert beside.group(1).replace("&nbsp;", "\u00a0") == message
    assert f'id="f-{field}"' in response.text and 'aria-invalid="true"' in response.text
    # what was typed is still there
    assert 'value="Manicure"' in response.text or field == "name_en"
    assert len(await services_of(owner_session, business.id)) == before
    edit = await client.post(
        f"/dashboard/services/{business.service_id}?lang=ru",
        data=service_fields(csrf, **overrides),
    )
    assert edit.status_code == 422
    assert (await services_of(owner_session, business.id))[0].name["ru"] == "Стрижка"


async def test_a_masters_own_price_is_checked_and_every_wrong_field_is_named_at_once(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    csrf = await signed_in(client, owner_session, settings, business)
    first = business.staff_ids[0]
    response = await client.post(
        "/dashboard/services?lang=ru",
        data=service_fields(csrf, duration_min="0", **{f"staff_{first}": "1",
                            f"price_{first}": "-1", f"duration_{first}": "3"}),
    )  # fmt: skip
    assert response.status_code == 422
    for name in ("duration_min", f"price_{first}", f"duration_{first}"):
        assert f'id="e-{name}"' in response.text, name


@pytest.mark.parametrize(
    ("typed", "tiyn"),
    [("8 000", 800_000), ("8000", 800_000), ("8\u00a0000 ₸", 800_000), ("8000.50", 800_050),
     ("0", 0), ("12 500 тг", 1_250_000)],
)  # fmt: skip
def test_prices_are_read_as_people_type_them(typed: str, tiyn: int) -> None:
    from app.domain.offering import parse_price

    assert parse_price(typed) == tiyn


async def test_editing_a_service_changes_who_does_it_and_keeps_the_rest(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    csrf = await signed_in(client, owner_session, settings, business)
    first, second = business.staff_ids
    page = await client.get(f"/dashboard/services/{business.service_id}?lang=en")
    assert page.status_code == 200
    assert 'value="Стрижка"' in page.text and 'value="5000"' in page.text
    assert f'name="staff_{first}" value="1" checked' in page.text

    response = await client.post(
        f"/dashboard/services/{business.service_id}",
        data=service_fields(csrf, name_ru="Стрижка мужская", price="6 500",
                            **{f"staff_{second}": "1", f"price_{second}": "7000"}),
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    service = next(
        s for s in await services_of(owner_session, business.id) if s.id == business.service_id
    )
    assert service.name["ru"] == "Стрижка мужская" and service.price_tiyn == 650_000
    links = (
        await owner_session.execute(
            select(StaffService.staff_id, StaffService.price_tiyn).where(
                StaffService.service_id == business.service_id
            )
        )
    ).all()
    assert [tuple(x) for x in links] == [(second, 700_000)]  # the first no longer does it
    api = (await client.get(f"/api/v1/businesses/{business.slug}/services")).json()
    offered = {s["id"]: s for s in api["services"]}
    assert offered[business.service_id]["staff_ids"] == [second]
    actions = await audit_actions(owner_session, business.id)
    assert ("service.update", "staff", business.service_id) in actions


async def test_services_move_up_and_down_and_htmx_swaps_the_list(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    csrf = await signed_in(client, owner_session, settings, business)
    ids = [s.id for s in await services_of(owner_session, business.id)]
    assert ids == [business.service_id, business.short_service_id]

    moved = await client.post(
        f"/dashboard/services/{business.short_service_id}/move",
        data=form(csrf, direction="up"), follow_redirects=False,
    )  # fmt: skip
    assert moved.status_code == 303
    assert [s.id for s in await services_of(owner_session, business.id)] == [
        business.short_service_id, business.service_id,
    ]  # fmt: skip
    # the first cannot go higher: nothing changes
    await client.post(
        f"/dashboard/services/{business.short_service_id}/move", data=form(csrf, direction="up")
    )
    assert (await services_of(owner_session, business.id))[0].id == business.short_service_id
    # as htmx sends it (token in the header): the redirect leads to the page the list is taken from
    swapped = await client.post(
        f"/dashboard/services/{business.short_service_id}/move",
        data={"direction": "down"}, headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )  # fmt: skip
    assert swapped.status_code == 200 and 'id="service-list"' in swapped.text
    order = [s.id for s in await services_of(owner_session, business.id)]
    assert order == [business.service_id, business.short_service_id]
    assert swapped.text.index(f'id="service-{order[0]}"') < swapped.text.index(
        f'id="service-{order[1]}"'
    )
    # the Mini App's API lists them in the new order
    api = (await client.get(f"/api/v1/businesses/{business.slug}/services")).json()
    assert [s["id"] for s in api["services"]] == order
    bad = await client.post(
        f"/dashboard/services/{business.service_id}/move", data=form(csrf, direction="sideways")
    )
    assert bad.status_code == 422
    actions = [a for a, _, _ in await audit_actions(owner_session, business.id)]
    assert actions.count("service.move") == 2


async def test_a_deactivated_service_keeps_its_booking_and_leaves_the_mini_app(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    user = TelegramUser()
    await grant_consent(client, user)
    booked = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.short_service_id, local_start(business, 3)),
        headers=user.headers(),
    )
    assert booked.status_code == 201, booked.text
    booking_id = booked.json()["id"]

    csrf = await signed_in(client, owner_session, settings, business)
    response = await client.post(
        f"/dashboard/services/{business.short_service_id}/archive", data=form(csrf),
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    owner_session.expire_all()
    booking = await owner_session.get(Booking, booking_id)
    assert booking is not None and booking.status in ("confirmed", "pending")
    service = await owner_session.get(Service, business.short_service_id)
    assert service is not None and service.archived_at is not None

    storefront = await client.get(f"/app/b/{business.slug}?lang=en")
    assert "Brows" not in storefront.text and "Haircut" in storefront.text
    page = await client.get(f"/app/b/{business.slug}/s/{business.short_service_id}")
    assert page.status_code == 404
    api = (await client.get(f"/api/v1/businesses/{business.slug}/services")).json()
    assert business.short_service_id not in [s["id"] for s in api["services"]]

    listing = await client.get("/dashboard/services?lang=en")
    assert "Deactivated services (1)" in listing.text
    restored = await client.post(
        f"/dashboard/services/{business.short_service_id}/restore", data=form(csrf)
    )
    assert restored.status_code == 200
    api = (await client.get(f"/api/v1/businesses/{business.slug}/services")).json()
    assert business.short_service_id in [s["id"] for s in api["services"]]
    actions = await audit_actions(owner_session, business.id)
    assert ("service.archive", "staff", business.short_service_id) in actions
    assert ("service.restore", "staff", business.short_service_id) in actions


async def test_an_owner_adds_a_master_with_a_photo_and_the_services_they_do(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    csrf = await signed_in(client, owner_session, settings, business)
    response = await client.post(
        "/dashboard/masters",
        data=form(csrf, name="Айгерим", title_ru="Топ-стилист", title_en="Top stylist",
                  **{f"service_{business.short_service_id}": "1"}),
        files={"photo": ("me.png", png(), "image/png")},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303, response.text
    owner_session.expire_all()
    master = (
        await owner_session.execute(
            select(Staff).where(Staff.business_id == business.id, Staff.name == "Айгерим")
        )
    ).scalar_one()
    assert master.title == {"ru": "Топ-стилист", "en": "Top stylist"}
    assert master.photo is not None and bytes(master.photo)[8:12] == b"WEBP"  # re-encoded
    links = (
        await owner_session.execute(
            select(StaffService.service_id).where(StaffService.staff_id == master.id)
        )
    ).scalars().all()  # fmt: skip
    assert list(links) == [business.short_service_id]

    listing = await client.get("/dashboard/masters?lang=en")
    found = re.search(rf'src="(/dashboard/masters/{master.id}/photo\?v=[0-9a-f]+)"', listing.text)
    assert found, listing.text
    photo = await client.get(found.group(1))
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/webp"
    assert photo.headers["cache-control"].startswith("private, max-age=")
    again = await client.get(found.group(1), headers={"If-None-Match": photo.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert "Brows" in listing.text

    # the Mini App offers the new master for the service
    picker = await client.get(f"/app/b/{business.slug}/s/{business.short_service_id}")
    assert "Айгерим" in picker.text

    # the photo can be removed; then there is none to serve
    removed = await client.post(
        f"/dashboard/masters/{master.id}/photo/delete", data=form(csrf), follow_redirects=False
    )
    assert removed.status_code == 303
    assert (await client.get(f"/dashboard/masters/{master.id}/photo")).status_code == 404
    actions = await audit_actions(owner_session, business.id)
    assert ("staff.create", "staff", master.id) in actions
    assert ("staff.photo_remove", "staff", master.id) in actions


async def test_a_photo_that_is_no_image_is_refused_beside_the_field_and_nothing_is_written(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    csrf = await signed_in(client, owner_session, settings, business)
    response = await client.post(
        "/dashboard/masters?lang=ru",
        data=form(csrf, name="Данияр"),
        files={"photo": ("cv.png", b"%PDF-1.4 not a picture", "image/png")},
    )
    assert response.status_code == 422
    assert 'id="e-photo"' in response.text
    assert "Загрузите фото в формате JPEG, PNG или WebP." in response.text
    assert 'value="Данияр"' in response.text
    both = await client.post(
        "/dashboard/masters?lang=ru",
        data=form(csrf, name=""),
        files={"photo": ("cv.png", b"not a picture", "image/png")},
    )
    assert both.status_code == 422
    assert 'id="e-photo"' in both.text and 'id="e-name"' in both.text  # every refusal at once
    count = await owner_session.scalar(
        select(Staff.id).where(Staff.business_id == business.id, Staff.name == "Данияр")
    )
    assert count is None
    # the same on an existing master: the old photo and name stay
    edit = await client.post(
        f"/dashboard/masters/{business.staff_ids[0]}?lang=ru",
        data=form(csrf, name="Другое имя"),
        files={"photo": ("x.jpg", b"\xff\xd8\xff garbage", "image/jpeg")},
    )
    assert edit.status_code == 422
    owner_session.expire_all()
    master = await owner_session.get(Staff, business.staff_ids[0])
    assert master is not None and master.name == "Master 0" and master.photo is None


async def test_editing_a_master_changes_what_they_do_and_keeps_their_own_prices(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    first, second = business.staff_ids
    link = await owner_session.get(StaffService, (first, business.service_id))
    assert link is not None
    link.price_tiyn = 900_000
    await owner_session.commit()
    csrf = await signed_in(client, owner_session, settings, business)
    page = await client.get(f"/dashboard/masters/{first}?lang=en")
    assert page.status_code == 200
    assert f'name="service_{business.service_id}" value="1" checked' in page.text
    assert f'name="service_{business.short_service_id}" value="1" checked' in page.text

    listing = await client.get("/dashboard/masters?lang=en")
    assert money(900_000, locale="en") in listing.text  # the own price, not the service's

    response = await client.post(
        f"/dashboard/masters/{first}",
        data=form(csrf, name="Master Zero", title_en="Barber",
                  **{f"service_{business.service_id}": "1"}),
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    owner_session.expire_all()
    rows = (
        await owner_session.execute(
            select(StaffService.service_id, StaffService.price_tiyn).where(
                StaffService.staff_id == first
            )
        )
    ).all()
    assert [tuple(r) for r in rows] == [(business.service_id, 900_000)]
    master = await owner_session.get(Staff, first)
    assert master is not None and master.name == "Master Zero" and master.title == {"en": "Barber"}
    assert second  # the other master is untouched
    assert ("staff.update", "staff", first) in await audit_actions(owner_session, business.id)


async def test_a_deactivated_master_is_no_longer_offered_and_can_be_taken_back(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    first, second = business.staff_ids
    csrf = await signed_in(client, owner_session, settings, business)
    await client.post(f"/dashboard/masters/{second}/move", data=form(csrf, direction="up"))
    owner_session.expire_all()
    order = (
        await owner_session.execute(
            select(Staff.id).where(Staff.business_id == business.id, Staff.archived_at.is_(None))
            .order_by(Staff.sort_order)
        )
    ).scalars().all()  # fmt: skip
    assert list(order) == [second, first]

    response = await client.post(
        f"/dashboard/masters/{second}/archive", data=form(csrf), follow_redirects=False
    )
    assert response.status_code == 303
    api = (await client.get(f"/api/v1/businesses/{business.slug}/services")).json()
    offered = {s["id"]: s for s in api["services"]}
    assert offered[business.service_id]["staff_ids"] == [first]
    listing = await client.get("/dashboard/masters?lang=en")
    assert "Deactivated masters (1)" in listing.text

    await client.post(f"/dashboard/masters/{second}/restore", data=form(csrf))
    api = (await client.get(f"/api/v1/businesses/{business.slug}/services")).json()
    offered = {s["id"]: s for s in api["services"]}
    assert offered[business.service_id]["staff_ids"] == [first, second]  # back, at the end
    actions = await audit_actions(owner_session, business.id)
    assert ("staff.archive", "staff", second) in actions
    assert ("staff.restore", "staff", second) in actions
    assert ("staff.move", "staff", second) in actions


def _path(template: str, service_id: int, staff_id: int) -> str:
    return template.format(service_id=service_id, staff_id=staff_id)


async def _call(client: httpx.AsyncClient, method: str, path: str, csrf: str) -> httpx.Response:
    if method == "GET":
        return await client.get(path, follow_redirects=False)
    data = form(csrf, direction="up", name="X", name_ru="X", duration_min="60", price="1")
    return await client.post(path, data=data, follow_redirects=False)


async def test_another_businesss_ids_are_not_found_on_every_route(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    theirs = await new_business(owner_session)
    mine = await new_business(owner_session)
    staff = await owner_session.get(Staff, theirs.staff_ids[0])
    assert staff is not None
    staff.photo = b"RIFF\x00\x00\x00\x00WEBPVP8 "  # something to serve, were it reachable
    await owner_session.commit()
    csrf = await signed_in(client, owner_session, settings, mine)
    for method, template in ID_ROUTES:
        for service_id, staff_id in (
            (theirs.service_id, theirs.staff_ids[0]),
            (2**63 + 5, 2**63 + 5),  # beyond bigint: no id of ours, never a 500
        ):
            response = await _call(client, method, _path(template, service_id, staff_id), csrf)
            assert response.status_code == 404, (method, template, response.status_code)
    owner_session.expire_all()
    theirs_now = await owner_session.get(Service, theirs.service_id)
    assert theirs_now is not None and theirs_now.name["ru"] == "Стрижка"
    assert theirs_now.archived_at is None
    # and my own ids work on the same routes (the check can fail)
    own = await _call(client, "GET", f"/dashboard/services/{mine.service_id}", csrf)
    assert own.status_code == 200


async def test_a_master_sees_the_lists_read_only_and_may_change_nothing(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    csrf = await signed_in(client, owner_session, settings, business, role="master")
    for path in ("/dashboard/services?lang=en", "/dashboard/masters?lang=en"):
        page = await client.get(path)
        assert page.status_code == 200
        assert "Master 0" in page.text
        assert "/move" not in page.text and "Edit" not in page.text and "/new" not in page.text
    for method, template in ADMIN_ROUTES:
        path = _path(template, business.service_id, business.staff_ids[0])
        response = await _call(client, method, path, csrf)
        assert response.status_code == 403, (method, template, response.status_code)
    assert not [a for a in await audit_actions(owner_session, business.id)]
    # an admin may
    admin_client = client
    csrf = await signed_in(admin_client, owner_session, settings, business, role="admin")
    edited = await admin_client.get(f"/dashboard/services/{business.service_id}")
    assert edited.status_code == 200


async def test_the_setup_wizard_keeps_its_flag_through_the_forms(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    csrf = await signed_in(client, owner_session, settings, business)
    listing = await client.get("/dashboard/services?setup=1")
    assert listing.status_code == 200
    assert 'href="/dashboard/services/new?setup=1"' in listing.text
    assert f"/dashboard/services/{business.service_id}/move?setup=1" in listing.text
    new = await client.get("/dashboard/services/new?setup=1")
    assert 'action="/dashboard/services?setup=1"' in new.text
    response = await client.post(
        "/dashboard/services?setup=1", data=service_fields(csrf), follow_redirects=False
    )
    assert response.headers["location"] == "/dashboard/services?setup=1"
    masters = await client.get("/dashboard/masters?setup=1")
    assert 'href="/dashboard/masters/new?setup=1"' in masters.text
    plain = await client.get("/dashboard/services")
    assert "setup=1" not in plain.text


async def test_csrf_is_required_on_every_change(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    await signed_in(client, owner_session, settings, business)
    response = await client.post(
        f"/dashboard/services/{business.service_id}/archive", data={}, follow_redirects=False
    )
    assert response.status_code == 403
    owner_session.expire_all()
    service = await owner_session.get(Service, business.service_id)
    assert service is not None and service.archived_at is None


async def test_empty_lists_say_what_to_do(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, masters=1)
    await owner_session.execute(
        text("UPDATE services SET archived_at = now() WHERE business_id = :b"), {"b": business.id}
    )
    await owner_session.execute(
        text("UPDATE staff SET archived_at = now() WHERE business_id = :b"), {"b": business.id}
    )
    await owner_session.commit()
    await signed_in(client, owner_session, settings, business)
    services = await client.get("/dashboard/services?lang=en")
    assert "No services yet." in services.text
    masters = await client.get("/dashboard/masters?lang=en")
    assert "No masters yet." in masters.text
    new = await client.get("/dashboard/services/new?lang=en")
    assert "No masters yet. Add masters" in new.text


@pytest.mark.parametrize("lang", ["ru", "kk", "en"])
async def test_every_catalog_page_speaks_the_three_languages(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, lang: str
) -> None:
    business = await new_business(owner_session)
    await signed_in(client, owner_session, settings, business)
    headings = {"ru": "Новая услуга", "kk": "Жаңа қызмет", "en": "New service"}
    pages = [
        "/dashboard/services", "/dashboard/services/new",
        f"/dashboard/services/{business.service_id}", "/dashboard/masters",
        "/dashboard/masters/new", f"/dashboard/masters/{business.staff_ids[0]}",
    ]  # fmt: skip
    for path in pages:
        response = await client.get(f"{path}?lang={lang}")
        assert response.status_code == 200, path
        assert f'<html lang="{lang}">' in response.text
    new = await client.get(f"/dashboard/services/new?lang={lang}")
    assert f"<h1>{headings[lang]}</h1>" in new.text
