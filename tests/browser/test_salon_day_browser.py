"""Issue 14's end-to-end scenario, in headless Chromium, as the owner of the demo salon (the
pair `make run` prints) with a client in a second browser:

the owner signs in with the form and opens today's calendar, switches the salon to confirming
bookings by hand, moves to a working day, books a walk-in by clicking a free time and, booking
the same master and time again, sees the clash message with what was typed kept. A client books
in the Mini App in another browser; the booking appears on the owner's open calendar without a
reload, waiting for confirmation. The owner confirms it and moves it to a free time, marks a
visit of the last working day as a no-show, answers the client's message from the inbox (the client's outbox entry
exists) and downloads the bookings as CSV, reading the Cyrillic and Kazakh names back intact.

The demo salon's masters work Monday to Saturday, 10:00–14:00 and 15:00–20:00 (Almaty); the
scenario picks its day and times from what the calendar offers, so it runs on any day."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import demo
from app.models import Business
from tests.browser.conftest import PageWatch

pytestmark = pytest.mark.browser

WALK_IN_MASTER = "Ержан Қасымов"  # the only master of "Борода и усы"
WALK_IN_SERVICE = "Борода и усы"
WALK_IN_CLIENT = "Әсел Нұрланқызы"
SLOT_LABEL = re.compile(r"^Новая запись (.+) (\d{4}-\d{2}-\d{2}) (\d{2}):(\d{2})$")


def working_day_ahead(today: date, days: int) -> date:
    """The first Monday-to-Saturday at least ``days`` after ``today``."""
    day = today + timedelta(days=days)
    while day.weekday() == 6:
        day += timedelta(days=1)
    return day


async def free_slots(page: Any) -> dict[str, set[tuple[int, int]]]:
    """The free quarter hours the shown day offers, by master: (hour, minute)."""
    labels = await page.locator("a.cal-slot").evaluate_all(
        "links => links.map(a => a.getAttribute('aria-label'))"
    )
    free: dict[str, set[tuple[int, int]]] = {}
    for label in labels:
        found = SLOT_LABEL.match(label or "")
        if found:
            free.setdefault(found[1], set()).add((int(found[3]), int(found[4])))
    return free


def free_run(free: set[tuple[int, int]], quarters: int, *, after: int = 15) -> tuple[int, int]:
    """The first whole hour from ``after`` o'clock at which ``quarters`` quarter hours in a row
    are free."""
    for hour in range(after, 20):
        start = hour * 60
        if all(divmod(start + 15 * q, 60) in free for q in range(quarters)):
            return hour, 0
    raise AssertionError(f"no {quarters} free quarter hours in a row after {after}:00")


async def unmarked_visit(owner_session: AsyncSession, business: Business) -> tuple[int, date]:
    """A visit of the demo's last working day, still confirmed: the demo leaves that day's
    visits for the salon to mark, as it finds them the next morning."""
    found = (
        await owner_session.execute(
            text(
                "SELECT id, lower(period) AS start FROM bookings WHERE business_id = :b "
                "AND status = 'confirmed' AND lower(period) < now() "
                "ORDER BY lower(period) DESC LIMIT 1"
            ),
            {"b": business.id},
        )
    ).one()
    return found.id, found.start.astimezone(ZoneInfo(business.timezone)).date()


async def latest_code(owner_session: AsyncSession, address: str) -> str:
    await owner_session.commit()
    payload = await owner_session.scalar(
        text(
            "SELECT payload FROM notifications WHERE event = 'otp.code' AND address = :a "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"a": address},
    )
    assert payload is not None, "no code was queued"
    return str(payload["code"])


async def client_books(browser: Any, live_server: str, owner_session: AsyncSession,
                       day: date, phone: str) -> Any:  # fmt: skip
    """A client signs in to the Mini App with an SMS code in their own browser and books the
    salon's first service, the first time it offers on ``day``; returns their page."""
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="ru-RU")
    page = await context.new_page()
    await page.goto(f"{live_server}/app/b/{demo.SLUG}")
    await page.click("a.service >> nth=0")
    await page.click(f"nav.days a.day[href*='date={day.isoformat()}']")
    await page.wait_for_selector(f"#times[data-day='{day.isoformat()}'] .slot")
    await page.click("#times .slot >> nth=0")
    await page.wait_for_url("**/app/signin**")
    await page.fill("input[name=contact]", phone)
    await page.click("button.primary")
    await page.wait_for_selector("input[name=code]")
    await page.fill("input[name=code]", await latest_code(owner_session, phone))
    await page.click("button.primary")
    await page.wait_for_url("**/app/consent**")
    await page.click("button.primary")
    await page.wait_for_url("**/confirm**")
    await page.click("button.primary")
    await page.wait_for_selector("[data-haptic='success']")
    return page


async def test_an_owner_runs_a_day_of_the_demo_salon(
    browser: Any, live_server: str, owner_session: AsyncSession, tmp_path: Path
) -> None:
    business = await demo.load_demo(owner_session)
    await owner_session.commit()
    tz = ZoneInfo(business.timezone)
    today = datetime.now(UTC).astimezone(tz).date()
    day = working_day_ahead(today, 2)  # far enough ahead for every deadline of the day
    missed_id, missed_day = await unmarked_visit(owner_session, business)
    phone = "+7701" + str(business.id * 7919 % 10_000_000).zfill(7)

    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU")
    page = await context.new_page()
    watch = PageWatch(page, live_server)
    client_page = None
    try:
        # sign in as the demo's owner, with the form
        await page.goto(f"{live_server}/dashboard/signin")
        await page.fill("#f-email", demo.DEMO_LOGINS[0][1])
        await page.fill("#f-password", demo.DEMO_LOGINS[0][2])
        await page.get_by_role("button", name="Войти").click()
        await page.wait_for_url(lambda url: "/signin" not in url)

        # bookings wait for the salon's confirmation from now on
        await page.goto(f"{live_server}/dashboard/settings")
        await page.check("input[name=confirmation][value=manual]")
        await page.get_by_role("button", name="Сохранить настройки").click()
        await expect(page.locator("input[name=confirmation][value=manual]")).to_be_checked()

        # today's calendar, then forward to the working day with htmx
        await page.get_by_role("link", name="Календарь").first.click()
        await expect(page.locator("h1")).to_have_text("Календарь")
        await expect(page.locator(".calendar-date")).to_have_text(today.isoformat())
        shown = today
        while shown < day:
            shown += timedelta(days=1)
            await page.click("a[rel=next]")
            await expect(page.locator(".calendar-date")).to_have_text(shown.isoformat())

        # a walk-in, by clicking a free time of the master who trims beards
        hour, minute = free_run((await free_slots(page))[WALK_IN_MASTER], 3)
        label = f"Новая запись {WALK_IN_MASTER} {day.isoformat()} {hour:02d}:{minute:02d}"
        await page.get_by_label(label, exact=True).click()
        await page.wait_for_url("**/dashboard/bookings/new?*")
        form_url = page.url
        await page.select_option("#f-service_id", label=WALK_IN_SERVICE)
        await page.fill("#f-client_name", WALK_IN_CLIENT)
        await page.fill("#f-client_phone", "8 701 555 12 34")
        await page.get_by_role("button", name="Записать").click()
        await page.wait_for_url(f"**/dashboard/calendar?date={day.isoformat()}*")
        walk_in = page.locator(".cal-block", has_text=WALK_IN_CLIENT)
        await expect(walk_in).to_contain_text(f"{hour:02d}:{minute:02d}–")

        # the same master and time again: the clash is named, what was typed is kept
        await page.goto(form_url)
        await page.select_option("#f-service_id", label=WALK_IN_SERVICE)
        await page.fill("#f-client_name", "Другой клиент")
        await page.fill("#f-client_phone", "+7 701 555 99 88")
        await page.get_by_role("button", name="Записать").click()
        await expect(
            page.get_by_text("Это время только что заняли. Выберите другое.")
        ).to_be_visible()
        await expect(page.locator("#f-client_name")).to_have_value("Другой клиент")
        await expect(page.locator("#f-client_phone")).to_have_value("+7 701 555 99 88")

        # the calendar stays open; a client books in the Mini App in their own browser
        await page.goto(f"{live_server}/dashboard/calendar?date={day.isoformat()}&view=day")
        waiting = page.locator(".cal-block.cal-status-pending")
        await expect(waiting).to_have_count(0)
        await page.evaluate("window.stayedOpen = true")
        client_page = await client_books(browser, live_server, owner_session, day, phone)
        await expect(waiting).to_have_count(1)  # polled in, not reloaded:
        assert await page.evaluate("window.stayedOpen === true")
        await client_page.fill("#messages textarea[name=body]", "Можно прийти на 10 минут позже?")
        await client_page.get_by_role("button", name="Отправить").click()
        await expect(client_page.locator("#messages")).to_contain_text("на 10 минут позже")

        # confirm it from its panel, then move it to a free time of its master
        free = await free_slots(page)
        await waiting.locator("a").click()
        await page.wait_for_url("**/dashboard/bookings/*")
        booking_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
        await page.get_by_role("button", name="Подтвердить").click()
        await expect(page.locator(".booking-status")).to_have_text("Подтверждена")
        master = await owner_session.scalar(
            text("SELECT s.name FROM bookings b JOIN staff s ON s.id = b.staff_id WHERE b.id = :b"),
            {"b": booking_id},
        )
        hour, minute = free_run(free[master], 5)  # a 60-minute service and 10 minutes after
        moved_to = datetime.combine(day, time(hour, minute))
        await page.locator(".booking-move summary").click()
        await page.fill("#f-start", moved_to.strftime("%Y-%m-%dT%H:%M"))
        await page.get_by_role("button", name="Перенести запись").click()
        await expect(page.locator(".booking-facts")).to_contain_text(f"{hour:02d}:{minute:02d}")
        await owner_session.commit()
        moved = (
            await owner_session.execute(
                text(
                    "SELECT id, status, lower(period) AS start FROM bookings "
                    "WHERE rescheduled_from_id = :b"
                ),
                {"b": booking_id},
            )
        ).one()
        assert moved.start == moved_to.replace(tzinfo=tz) and moved.status == "confirmed"
        assert page.url.split("?")[0].endswith(f"/dashboard/bookings/{moved.id}")

        # a visit of the last working day: the client did not come
        await page.goto(f"{live_server}/dashboard/calendar?date={missed_day.isoformat()}")
        await page.locator(f".cal-block a[href='/dashboard/bookings/{missed_id}']").click()
        await page.get_by_role("button", name="Клиент не пришёл").click()
        await expect(page.locator(".booking-status")).to_have_text("Неявка")
        await owner_session.commit()
        assert (
            await owner_session.scalar(
                text("SELECT status FROM bookings WHERE id = :b"), {"b": missed_id}
            )
            == "no_show"
        )

        # the client's message, answered from the inbox, goes to the client's outbox
        await page.get_by_role("link", name=re.compile("^Сообщения")).first.click()
        await page.locator(".inbox-row.unread a").first.click()
        await expect(page.locator("main")).to_contain_text("на 10 минут позже")
        await page.fill("#f-body", "Конечно, ждём вас!")
        await page.get_by_role("button", name="Отправить").click()
        await expect(page.locator("main")).to_contain_text("Конечно, ждём вас!")
        await owner_session.commit()
        queued = await owner_session.scalar(
            text(
                "SELECT count(*) FROM notifications n "
                "JOIN messages m ON m.id = (n.payload->>'message_id')::bigint "
                "WHERE n.event = 'message.business' AND m.body = 'Конечно, ждём вас!' "
                "AND n.account_id = (SELECT account_id FROM bookings WHERE id = :b)"
            ),
            {"b": booking_id},
        )
        assert queued == 1

        # the bookings of the day as CSV, read back
        await page.goto(f"{live_server}/dashboard/bookings?from={day}&to={day}")
        await expect(page.locator(".bookings-table")).to_contain_text(WALK_IN_CLIENT)
        async with page.expect_download() as downloading:
            await page.click("text=Скачать CSV")
        saved = tmp_path / "bookings.csv"
        await (await downloading.value).save_as(saved)
        data = saved.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        rows = data.decode("utf-8-sig")
        assert WALK_IN_CLIENT in rows and "Борода и усы" in rows
        assert watch.foreign == [] and watch.errors == []
    finally:
        await owner_session.execute(
            text("UPDATE businesses SET auto_confirm = true WHERE id = :b"), {"b": business.id}
        )
        await owner_session.commit()
        if client_page is not None:
            await client_page.context.close()
        await context.close()
