"""Business settings (issue 13 item 6): the owner changes the booking rules and the profile; the
Mini App and the API offer what the new rules allow on their next request; bad input is 422
with the message beside its field in the user's language and nothing written; every change is
audited; an admin or a master gets 403."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.factories import BusinessFixture, new_business
from tests.support.dashboard import add_member, csrf_of, form, sign_in_as

RULES = {
    "confirmation": "auto", "pending_ttl": "2", "pending_ttl_unit": "h", "slot_step": "15",
    "min_notice": "0", "min_notice_unit": "min", "horizon": "90", "max_active": "3",
    "cancel_deadline": "2", "cancel_deadline_unit": "h", "reschedule_deadline": "2",
    "reschedule_deadline_unit": "h", "remind_1440": "on", "remind_120": "on",
    "notify_telegram": "on", "notify_sms": "on", "notify_email": "on",
}  # fmt: skip


async def owner_signed_in(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, **kwargs: Any
) -> tuple[BusinessFixture, str]:
    business = await new_business(owner_session, **kwargs)
    assert business.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    return business, csrf


async def column(owner_session: AsyncSession, business_id: int, name: str) -> Any:
    await owner_session.commit()  # a fresh snapshot
    return await owner_session.scalar(
        text(f"SELECT {name} FROM businesses WHERE id = :b"),  # the test's own column names
        {"b": business_id},
    )


async def save_rules(client: httpx.AsyncClient, csrf: str, **changes: str) -> httpx.Response:
    fields = {k: v for k, v in {**RULES, **changes}.items() if v is not None}
    return await client.post(
        "/dashboard/settings", data=form(csrf, **fields), follow_redirects=False
    )


def day_after(business: BusinessFixture, days: int) -> date:
    return (datetime.now(ZoneInfo(business.timezone)) + timedelta(days=days)).date()


async def api_slots(
    client: httpx.AsyncClient, business: BusinessFixture, first: date, last: date
) -> list[datetime]:
    response = await client.get(
        f"/api/v1/businesses/{business.slug}/availability",
        params={"service": business.service_id, "date_from": first, "date_to": last},
    )
    assert response.status_code == 200, response.text
    return [datetime.fromisoformat(s["start"]) for s in response.json()["slots"]]


async def test_slot_step_and_horizon_change_what_clients_are_offered(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    tomorrow = day_after(business, 1)
    before = await api_slots(client, business, tomorrow, tomorrow)
    assert {s.minute for s in before} == {0, 15, 30, 45}  # the factory's 15-minute grid

    page = await client.get("/dashboard/settings")
    assert page.status_code == 200
    assert 'name="slot_step"' in page.text and csrf_of(page.text) == csrf
    saved = await save_rules(client, csrf, slot_step="30", horizon="3")
    assert saved.status_code == 303
    assert saved.headers["location"].startswith("/dashboard/settings")
    assert (await column(owner_session, business.id, "slot_step_min")) == 30
    assert (await column(owner_session, business.id, "horizon_days")) == 3

    # the API, on its next request: only :00 and :30, and nothing past the horizon
    after = await api_slots(client, business, tomorrow, tomorrow)
    assert after and {s.minute for s in after} == {0, 30}
    later = await api_slots(client, business, day_after(business, 3), day_after(business, 10))
    now = datetime.now(ZoneInfo(business.timezone))
    assert all(s < now + timedelta(days=3) for s in later)
    assert not await api_slots(client, business, day_after(business, 4), day_after(business, 10))

    # the Mini App's day strip: exactly the horizon's days (not 14), times on the new grid
    shop = await client.get(f"/app/b/{business.slug}/s/{business.service_id}?date={tomorrow}")
    assert shop.status_code == 200
    strip = set(re.findall(r"date=(\d{4}-\d\d-\d\d)", shop.text))
    assert strip == {day_after(business, i).isoformat() for i in range(3)}
    shown = set(re.findall(r"\b(\d\d):(\d\d)\b", shop.text))
    assert shown and {minute for _, minute in shown} <= {"00", "30"}


async def test_a_long_horizon_is_offered_whole_in_the_mini_app(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    assert (await save_rules(client, csrf, horizon="30")).status_code == 303
    shop = await client.get(f"/app/b/{business.slug}/s/{business.service_id}")
    strip = set(re.findall(r"date=(\d{4}-\d\d-\d\d)", shop.text))
    assert day_after(business, 29).isoformat() in strip  # beyond the old 14 days
    assert day_after(business, 30).isoformat() not in strip


async def test_every_rule_is_saved_and_audited_with_what_changed(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    changes = {
        "confirmation": "manual", "pending_ttl": "45", "pending_ttl_unit": "min",
        "min_notice": "3", "min_notice_unit": "h", "cancel_deadline": "1",
        "cancel_deadline_unit": "d", "reschedule_deadline": "90",
        "reschedule_deadline_unit": "min", "max_active": "5", "remind_120": None,
        "remind_60": "on", "notify_sms": None,
    }  # fmt: skip
    assert (await save_rules(client, csrf, **changes)).status_code == 303
    row = (
        await owner_session.execute(
            text(
                "SELECT auto_confirm, pending_ttl_min, min_notice_min, cancel_deadline_min, "
                "reschedule_deadline_min, max_active_bookings_per_client, reminder_offsets_min, "
                "notify_telegram, notify_sms, observe_public_holidays FROM businesses "
                "WHERE id = :b"
            ),
            {"b": business.id},
        )
    ).one()
    assert tuple(row) == (False, 45, 180, 1440, 90, 5, [1440, 60], True, False, False)
    await owner_session.commit()
    entries = (
        await owner_session.execute(
            text(
                "SELECT l.action, l.actor_kind, l.actor_account_id, d.before, d.after "
                "FROM audit_log l JOIN audit_details d ON d.audit_id = l.id "
                "WHERE l.chain_key = :b AND l.entity = 'business' ORDER BY l.seq"
            ),
            {"b": business.id},
        )
    ).all()
    assert len(entries) == 1
    action, kind, actor, before, after = entries[0]
    assert (action, kind, actor) == ("business.settings", "staff", business.owner_account_id)
    assert after["auto_confirm"] is False and before["auto_confirm"] is True
    assert (before["reschedule_deadline_min"], after["reschedule_deadline_min"]) == (120, 90)
    assert "slot_step_min" not in after  # only what changed

    # the same form again changes nothing and writes no entry
    assert (await save_rules(client, csrf, **changes)).status_code == 303
    count = await owner_session.scalar(
        text("SELECT count(*) FROM audit_log WHERE chain_key = :b AND entity = 'business'"),
        {"b": business.id},
    )
    assert count == 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"slot_step": "3"}, "slot_step", "Введите целое число от 5 до 240."),
        ({"slot_step": "241"}, "slot_step", "Введите целое число от 5 до 240."),
        ({"horizon": "0"}, "horizon", "Введите целое число от 1 до 366."),
        ({"horizon": "367"}, "horizon", "Введите целое число от 1 до 366."),
        ({"horizon": "abc"}, "horizon", "Введите целое число от 1 до 366."),
        ({"max_active": "101"}, "max_active", "Введите целое число от 1 до 100."),
        ({"cancel_deadline": "8", "cancel_deadline_unit": "d"}, "cancel_deadline",
         "Выберите время: от 0 мин до 7 дн."),
        ({"reschedule_deadline": "-1"}, "reschedule_deadline", "Введите целое число."),
        ({"confirmation": "manual", "pending_ttl": "2", "pending_ttl_unit": "min"},
         "pending_ttl", "Выберите время: от 5 мин до 7 дн."),
        ({"notify_telegram": None, "notify_sms": None, "notify_email": None}, "notify",
         "Выберите хотя бы один способ связи с клиентами."),
        ({"confirmation": "sometimes"}, "confirmation", "Выберите, как подтверждаются записи."),
    ],
)  # fmt: skip
async def test_bad_rules_are_422_beside_the_field_in_russian_and_nothing_is_written(
    client: httpx.AsyncClient,
    owner_session: AsyncSession,
    settings: Settings,
    changes: dict[str, Any],
    field: str,
    message: str,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    await client.get("/dashboard/settings?lang=ru")
    with_good = {**changes, "horizon": changes.get("horizon", "7")}  # a good change beside it
    response = await save_rules(client, csrf, **with_good)
    assert response.status_code == 422
    assert f'id="e-{field}"' in response.text
    error = re.search(rf'<small id="e-{field}" class="error" role="alert">([^<]*)</small>',
                      response.text)  # fmt: skip
    assert error is not None and error.group(1) == message
    assert (await column(owner_session, business.id, "horizon_days")) == 90  # nothing written
    count = await owner_session.scalar(
        text("SELECT count(*) FROM audit_log WHERE chain_key = :b AND entity = 'business'"),
        {"b": business.id},
    )
    assert count == 0


async def test_profile_is_saved_normalised_audited_and_keeps_the_wizard(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    new_slug = f"salon-{business.slug[2:]}"
    page = await client.get("/dashboard/profile?setup=1")
    assert page.status_code == 200
    assert 'action="/dashboard/profile?setup=1"' in page.text
    saved = await client.post(
        "/dashboard/profile?setup=1",
        data=form(csrf, name="  Ақ  Бота ", slug=new_slug.upper(), address="Абая 10",
                  phone="8 (701) 123-45-67", timezone="Asia/Almaty", lang_kk="on",
                  lang_en="on"),
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    assert saved.headers["location"] == "/dashboard/profile?setup=1&saved=1"
    row = (
        await owner_session.execute(
            text("SELECT name, slug, address, phone, timezone, languages FROM businesses "
                 "WHERE id = :b"),
            {"b": business.id},
        )
    ).one()  # fmt: skip
    assert tuple(row) == ("Ақ Бота", new_slug, "Абая 10", "+77011234567", "Asia/Almaty",
                          ["kk", "en"])  # fmt: skip
    await owner_session.commit()
    action = await owner_session.scalar(
        text("SELECT action FROM audit_log WHERE chain_key = :b AND entity = 'business'"),
        {"b": business.id},
    )
    assert action == "business.profile"
    # the Mini App finds the business at its new address
    assert (await client.get(f"/app/b/{new_slug}")).status_code == 200


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "x"}, "name"),
        ({"slug": "Bad Slug!"}, "slug"),
        ({"slug": "-abc"}, "slug"),
        ({"phone": "12345"}, "phone"),
        ({"timezone": "Europe/Moscow"}, "timezone"),
        ({"lang_ru": None}, "languages"),
        ({"address": "a" * 301}, "address"),
    ],
)
async def test_bad_profile_is_422_beside_the_field(
    client: httpx.AsyncClient,
    owner_session: AsyncSession,
    settings: Settings,
    changes: dict[str, Any],
    field: str,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    fields = {"name": "Salon", "slug": business.slug, "timezone": "Asia/Almaty", "lang_ru": "on",
              **changes}  # fmt: skip
    response = await client.post(
        "/dashboard/profile?lang=ru",
        data=form(csrf, **{k: v for k, v in fields.items() if v is not None}),
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert f'<small id="e-{field}" class="error" role="alert">' in response.text
    assert re.search(r"[А-Яа-я]", response.text.split(f'id="e-{field}"')[1][:200])
    assert (await column(owner_session, business.id, "name")) == f"Test {business.slug}"


async def test_a_slug_another_business_has_is_422(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    other = await new_business(owner_session)
    business, csrf = await owner_signed_in(client, owner_session, settings)
    response = await client.post(
        "/dashboard/profile",
        data=form(csrf, name="Salon", slug=other.slug, timezone="Asia/Almaty", lang_ru="on"),
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert '<small id="e-slug" class="error" role="alert">' in response.text
    assert (await column(owner_session, business.id, "slug")) == business.slug


@pytest.mark.parametrize("role", ["admin", "master"])
async def test_only_the_owner_sees_or_changes_settings(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, role: str
) -> None:
    business = await new_business(owner_session)
    person = await add_member(owner_session, business.id, role)
    csrf = await sign_in_as(client, owner_session, settings, person.account_id)
    for path in ("/dashboard/settings", "/dashboard/profile"):
        assert (await client.get(path)).status_code == 403
    refused = await save_rules(client, csrf, horizon="3")
    assert refused.status_code == 403
    profile = await client.post(
        "/dashboard/profile",
        data=form(csrf, name="Mine now", slug=business.slug, timezone="Asia/Almaty", lang_ru="on"),
        follow_redirects=False,
    )
    assert profile.status_code == 403
    assert (await column(owner_session, business.id, "horizon_days")) == 90
    home = await client.get("/dashboard/")
    assert 'href="/dashboard/settings"' not in home.text  # the nav does not offer it


async def test_a_client_may_move_until_the_reschedule_deadline_not_the_cancel_one(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, db: Any
) -> None:
    """The reschedule deadline is its own rule: cancel online until 1 h before, move until
    1 day before — the domain refuses a late move and the client's page offers only cancel."""
    from app.domain import bookings
    from app.domain.accounts import ByAccount
    from app.domain.audit import Actor
    from app.domain.errors import ValidationFailed
    from tests.helpers import TelegramUser, booking_body, grant_consent

    business, csrf = await owner_signed_in(client, owner_session, settings)
    changes = {"cancel_deadline": "1", "cancel_deadline_unit": "h",
               "reschedule_deadline": "1", "reschedule_deadline_unit": "d"}  # fmt: skip
    assert (await save_rules(client, csrf, **changes)).status_code == 303
    user = TelegramUser()
    await grant_consent(client, user)
    start = datetime.combine(day_after(business, 3), time(10), ZoneInfo(business.timezone))
    made = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.service_id, start, business.staff_ids[0]),
        headers=user.headers(),
    )
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    account_id = await owner_session.scalar(
        text("SELECT account_id FROM bookings WHERE id = :b"), {"b": booking_id}
    )
    by, actor = ByAccount(account_id), Actor(kind="client", account_id=account_id)
    late = start - timedelta(hours=5)

    page = await bookings.client_booking(db, booking_id, by=by, now=late)
    assert (page.can_cancel, page.can_move, page.can_change) == (True, False, True)
    assert page.move_deadline == start - timedelta(days=1)
    with pytest.raises(ValidationFailed):
        await bookings.reschedule_booking(
            db, booking_id, by=by, new_start=start + timedelta(hours=4), new_staff_id=None,
            actor=actor, now=late,
        )  # fmt: skip
    # a day and a minute before, the same move goes through
    moved = await bookings.reschedule_booking(
        db, booking_id, by=by, new_start=start + timedelta(hours=4), new_staff_id=None,
        actor=actor, now=start - timedelta(days=1, minutes=1),
    )  # fmt: skip
    assert moved.start == start + timedelta(hours=4)
    cancelled = await bookings.cancel_booking(
        db, moved.id, by=by, actor=actor, now=moved.start - timedelta(hours=5)
    )
    assert cancelled.status == "cancelled"


async def test_a_slug_made_under_the_old_rule_may_stay_but_not_be_chosen_anew(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """The database allows ``a--b``; the settings page no longer offers it: a business that
    has one saves its profile unchanged, and nobody picks such a slug now."""
    business, csrf = await owner_signed_in(client, owner_session, settings)
    legacy = business.slug.replace("t-", "t--", 1)
    await owner_session.execute(
        text("UPDATE businesses SET slug = :s WHERE id = :b"), {"s": legacy, "b": business.id}
    )
    await owner_session.commit()
    fields = {"name": "Salon", "timezone": "Asia/Almaty", "lang_ru": "on"}
    kept = await client.post(
        "/dashboard/profile", data=form(csrf, slug=legacy, **fields), follow_redirects=False
    )
    assert kept.status_code == 303
    assert (await column(owner_session, business.id, "name")) == "Salon"
    other = legacy.replace("t--", "u--", 1)
    refused = await client.post(
        "/dashboard/profile", data=form(csrf, slug=other, **fields), follow_redirects=False
    )
    assert refused.status_code == 422
    assert (await column(owner_session, business.id, "slug")) == legacy


async def test_each_length_is_shown_in_a_unit_its_form_offers(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """A day to confirm shows as 1 day (not as 1 of the first unit in the list): saving the
    page untouched keeps every value."""
    business, csrf = await owner_signed_in(client, owner_session, settings)
    changes = {"confirmation": "manual", "pending_ttl": "1", "pending_ttl_unit": "d",
               "min_notice": "90", "min_notice_unit": "min"}  # fmt: skip
    assert (await save_rules(client, csrf, **changes)).status_code == 303
    shown = (await client.get("/dashboard/settings")).text
    for name, unit in (("pending_ttl", "d"), ("min_notice", "min"), ("cancel_deadline", "h")):
        select = shown.split(f'name="{name}_unit"', 1)[1].split("</select>", 1)[0]
        assert f'<option value="{unit}" selected>' in select, name
    assert (await column(owner_session, business.id, "pending_ttl_min")) == 1440


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("8 (727) 250-12-34", "+77272501234"), ("+7 7172 12 34 56", "+77172123456")],
)
async def test_a_salons_landline_is_its_phone(
    client: httpx.AsyncClient,
    owner_session: AsyncSession,
    settings: Settings,
    raw: str,
    stored: str,
) -> None:
    """A business's own phone may be a fixed line (clients call it; it receives no codes);
    a Russian number is still refused."""
    business, csrf = await owner_signed_in(client, owner_session, settings)
    fields = {"name": "Salon", "slug": business.slug, "timezone": "Asia/Almaty", "lang_ru": "on"}
    saved = await client.post(
        "/dashboard/profile", data=form(csrf, phone=raw, **fields), follow_redirects=False
    )
    assert saved.status_code == 303
    assert (await column(owner_session, business.id, "phone")) == stored
    russian = await client.post(
        "/dashboard/profile", data=form(csrf, phone="+7 495 123 45 67", **fields),
        follow_redirects=False,
    )  # fmt: skip
    assert russian.status_code == 422
    assert (await column(owner_session, business.id, "phone")) == stored
