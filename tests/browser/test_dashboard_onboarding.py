"""Issue 13's done-when, end to end in headless Chromium: a new owner signs up, walks the set-up
wizard (profile, two services, two masters, weekly hours with a lunch break, a day off) on a
360 px phone, and finishes; a plain browser (no Telegram, no session) opens the public link and
is offered exactly the times those hours allow on a chosen day, and none on the day off; the
owner invites an administrator, who accepts in a third browser, signs in, edits a service, and
is refused (403) the settings and the team.

The expected times are computed here from the hours typed in, the service's duration and the
business's slot step, never copied from the page. The live server answers on
http://127.0.0.1:<port>; Chromium treats 127.0.0.1 as a secure context and keeps the
``__Host-``/Secure session cookie there, which the test checks."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.business_days import booking_days
from tests.browser.conftest import PageWatch

pytestmark = pytest.mark.browser

ZONE = ZoneInfo("Asia/Almaty")  # a new business's time zone (the profile keeps it)
PASSWORD = "tulip-river-lantern-42"
ADMIN_PASSWORD = "amber-cloud-harbour-17"

HAIRCUT_MIN = 60  # the service the public page is checked with
# weekly hours, Monday to Friday (Monday typed, then copied): each master has a break
AIGERIM_HOURS = [(time(10), time(14)), (time(15), time(19))]  # lunch 14:00-15:00
DANA_HOURS = [(time(11), time(13)), (time(14, 30), time(18))]  # lunch 13:00-14:30


def expected_starts(
    day: date, hours: list[list[tuple[time, time]]], duration_min: int, step_min: int
) -> list[datetime]:
    """Every start the slot rules allow on an empty day: on the step grid counted from each
    interval's start, the visit ending by the interval's end; one time for any master."""
    starts: set[datetime] = set()
    for intervals in hours:
        for opens, closes in intervals:
            start = datetime.combine(day, opens, tzinfo=ZONE)
            end = datetime.combine(day, closes, tzinfo=ZONE)
            while start + timedelta(minutes=duration_min) <= end:
                starts.add(start)
                start += timedelta(minutes=step_min)
    return sorted(starts)


def ordinary_weekdays(today: date) -> list[date]:
    """Weekdays in the public page's two weeks, far enough ahead for any minimum notice, that
    are neither a public holiday nor a transferred day (the business observes both)."""
    found = []
    for ahead in range(2, 13):
        day = today + timedelta(days=ahead)
        calendar = booking_days(day.year)
        if day.weekday() < 5 and day not in calendar.closed and day not in calendar.works_as:
            found.append(day)
    return found


def at(path: str) -> re.Pattern[str]:
    """A page's address on the live server: ``path`` exactly, then maybe more query or a
    fragment (Playwright's globs read ``?`` as a wildcard)."""
    return re.compile(r"^https?://[^/]+" + re.escape(path) + r"([?&#].*)?$")


AT_MASTER_HOURS = re.compile(r"/dashboard/schedules/\d+\?setup=1$")


async def scalar(session: AsyncSession, sql: str, **params: Any) -> Any:
    await session.commit()  # a fresh snapshot: see what the app has committed
    return (await session.execute(text(sql), params)).scalar()


async def dashboard_cookie(context: Any) -> dict[str, Any]:
    cookies = await context.cookies()
    found = [c for c in cookies if c["name"] == "__Host-pz_dash"]
    assert found, "Chromium did not keep the dashboard's __Host- cookie on http://127.0.0.1"
    return dict(found[0])


async def next_step(page: Any, url: re.Pattern[str]) -> None:
    await page.click("#setup-steps a[rel=next]")
    await page.wait_for_url(url)


async def add_service(page: Any, name: str, duration: int, price: str, after: int = 0) -> None:
    await page.click("a[href='/dashboard/services/new?setup=1']")
    await page.wait_for_url(at("/dashboard/services/new?setup=1"))
    await page.fill("#f-name_ru", name)
    await page.fill("#f-duration_min", str(duration))
    await page.fill("#f-price", price)
    await page.fill("#f-buffer_after_min", str(after))
    await page.click("form.catalog-form button.primary")
    await page.wait_for_url(at("/dashboard/services?setup=1"))
    await expect(page.locator("main")).to_contain_text(name)


async def add_master(page: Any, name: str, services: list[str]) -> None:
    await page.click("a[href='/dashboard/masters/new?setup=1']")
    await page.wait_for_url(at("/dashboard/masters/new?setup=1"))
    await page.fill("#f-name", name)
    for service in services:
        await page.locator("label.check", has_text=service).locator("input").check()
    await page.click("form.catalog-form button.primary")
    await page.wait_for_url(at("/dashboard/masters?setup=1"))
    await expect(page.locator("main")).to_contain_text(name)


async def set_hours(page: Any, master: str, intervals: list[tuple[time, time]]) -> None:
    """Monday's intervals, copied to Tuesday-Friday, saved."""
    await page.click(f"a[href^='/dashboard/schedules/'][aria-label*='{master}']")
    await page.wait_for_url(AT_MASTER_HOURS)
    for index, (opens, closes) in enumerate(intervals):
        await page.fill(f"#f-w0-{index}-start", opens.strftime("%H:%M"))
        await page.fill(f"#f-w0-{index}-end", closes.strftime("%H:%M"))
    await page.click("button[name=copy_monday]")
    await page.wait_for_url(AT_MASTER_HOURS)
    await expect(page.locator("#f-w4-1-end")).to_have_value(intervals[1][1].strftime("%H:%M"))
    await page.click("form.week-form button.primary")
    await page.wait_for_url(at("/dashboard/schedules?setup=1"))


async def offered_starts(page: Any, day: date) -> list[datetime]:
    """The times the public page offers on ``day`` (read from each time's booking link)."""
    await page.click(f"nav.days a.day[href*='date={day.isoformat()}']")
    times = page.locator(f"#times[data-day='{day.isoformat()}']")
    await expect(times).to_be_visible()
    links = await times.locator("a.slot").evaluate_all("els => els.map(e => e.href)")
    return [datetime.fromisoformat(parse_qs(urlsplit(h).query)["start"][0]) for h in links]


async def test_a_new_owner_sets_up_shares_the_link_and_invites_an_admin(
    browser: Any, live_server: str, owner_session: AsyncSession
) -> None:
    suffix = uuid4().hex[:8]
    owner_email = f"owner-{suffix}@example.com"
    admin_email = f"admin-{suffix}@example.com"
    haircut, manicure = f"Стрижка {suffix}", f"Маникюр {suffix}"

    # --- the owner, on a phone, in Russian ----------------------------------------------------
    owner_context = await browser.new_context(
        viewport={"width": 360, "height": 740}, locale="ru-RU"
    )
    page = await owner_context.new_page()
    watch = PageWatch(page, live_server)
    await page.goto(f"{live_server}/dashboard/signup")
    await page.fill("#f-business_name", f"Студия Ару {suffix}")
    await page.fill("#f-email", owner_email)
    await page.fill("#f-password", PASSWORD)
    await page.click("main form button.primary")
    # sign-up opens the wizard at its first step
    await page.wait_for_url(at("/dashboard/profile?setup=1"))
    cookie = await dashboard_cookie(owner_context)
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/" and not cookie.get("domain", "").startswith(".")
    await expect(page.locator("#setup-steps [aria-current=step]")).to_contain_text("Профиль")
    await expect(page.locator("#setup-steps a[rel=prev]")).to_have_count(0)  # nothing before
    assert await watch.fits_360()

    # 1. profile
    await page.fill("#f-address", "Алматы, ул. Абая 10")
    await page.fill("#f-phone", "+7 701 123 45 67")
    await page.click("form.settings-form button.primary")
    await page.wait_for_url(at("/dashboard/profile?setup=1&saved=1"))
    # the bar, fetched with each step's state, marks the profile done
    await expect(page.locator("#setup-steps li.done")).to_have_count(1)
    await next_step(page, at("/dashboard/services?setup=1"))

    # 2. two services
    await expect(page.locator("#setup-steps [aria-current=step]")).to_contain_text("Услуги")
    await add_service(page, haircut, HAIRCUT_MIN, "8 000")
    await add_service(page, manicure, 90, "6 500", after=10)
    await next_step(page, at("/dashboard/masters?setup=1"))

    # 3. two masters: both cut hair, one also does nails
    await add_master(page, f"Айгерим {suffix}", [haircut, manicure])
    await add_master(page, f"Дана {suffix}", [haircut])
    await next_step(page, at("/dashboard/schedules?setup=1"))

    # 4. weekly hours with a lunch break
    await set_hours(page, f"Айгерим {suffix}", AIGERIM_HOURS)
    await set_hours(page, f"Дана {suffix}", DANA_HOURS)
    await expect(page.locator("#setup-steps li.done")).to_have_count(4)
    await next_step(page, at("/dashboard/closed-days?setup=1"))

    # 5. a day off: an ordinary weekday after the day checked below
    today = datetime.now(ZONE).date()
    chosen, day_off = ordinary_weekdays(today)[:2]
    await page.fill("#f-on_date", day_off.isoformat())
    await page.fill("#f-name", "Санитарный день")
    await page.click("form[action^='/dashboard/closed-days'] button.primary")
    await page.wait_for_url(at("/dashboard/closed-days?setup=1"))
    await expect(page.locator("main")).to_contain_text("Санитарный день")
    await next_step(page, at("/dashboard/setup/done"))

    # 6. the links and the QR code
    await expect(page.locator("p.success")).to_be_visible()  # nothing left to do
    public_link = await page.input_value("#link-web")
    telegram_link = await page.input_value("#link-telegram")
    slug = public_link.rsplit("/", 1)[1]
    assert public_link.endswith(f"/app/b/{slug}")
    assert telegram_link.startswith("https://t.me/") and telegram_link.endswith(f"?startapp={slug}")
    qr = page.locator(".setup-qr img")
    await expect(qr).to_be_visible()
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert await watch.fits_360()
    await watch.shot("onboarding-done")
    await page.click(".setup-finish button.primary")
    await page.wait_for_url(at("/dashboard"))
    await expect(page.locator("#setup-prompt")).to_have_count(0)
    assert await scalar(
        owner_session, "SELECT setup_done_at IS NOT NULL FROM businesses WHERE slug = :s", s=slug
    )
    step_min = await scalar(
        owner_session, "SELECT slot_step_min FROM businesses WHERE slug = :s", s=slug
    )

    # --- a client in a plain browser opens the public link ------------------------------------
    client_context = await browser.new_context(locale="ru-RU")
    client = await client_context.new_page()
    client_watch = PageWatch(client, live_server)
    # the live server is not the configured public base: open the link's path on it
    await client.goto(live_server + urlsplit(public_link).path)
    await expect(client.locator("a.service", has_text=haircut)).to_be_visible()
    await client.locator("a.service", has_text=haircut).click()
    offered = await offered_starts(client, chosen)
    expected = expected_starts(chosen, [AIGERIM_HOURS, DANA_HOURS], HAIRCUT_MIN, step_min)
    assert offered == expected
    # 14:00 is lunch for both; at 14:30 Aigerim still has lunch, but Dana is back
    assert datetime.combine(chosen, time(14), tzinfo=ZONE) not in offered
    assert datetime.combine(chosen, time(14, 30), tzinfo=ZONE) in offered
    assert await offered_starts(client, day_off) == []
    assert client_watch.foreign == [] and client_watch.errors == []
    await client_context.close()

    # --- the owner invites an administrator ---------------------------------------------------
    await page.goto(f"{live_server}/dashboard/team")
    await page.fill("#f-contact", admin_email)
    await page.select_option("#f-role", "admin")
    await page.click("form.team-invite button.primary")
    await page.wait_for_url(at("/dashboard/team"))
    await expect(page.locator("main")).to_contain_text(admin_email)
    link = await scalar(
        owner_session,
        "SELECT payload ->> 'link' FROM notifications WHERE event = 'team.invitation' "
        "AND address = :a ORDER BY id DESC LIMIT 1",
        a=admin_email,
    )
    assert link, "no invitation was queued"
    assert watch.foreign == [] and watch.errors == []
    await owner_context.close()

    # --- the administrator, in a third browser --------------------------------------------------
    admin_context = await browser.new_context(locale="ru-RU")
    admin = await admin_context.new_page()
    admin_watch = PageWatch(admin, live_server)
    await admin.goto(live_server + urlsplit(link).path)
    await admin.fill("#f-name", "Алия")
    await admin.fill("#f-password", ADMIN_PASSWORD)
    await admin.click("form[action^='/dashboard/invite/'] button.primary")
    await admin.wait_for_url(at("/dashboard"))
    # sign out, then in again with the new password
    await admin.click("form.signout button")
    await admin.wait_for_url(at("/dashboard/signin"))
    assert not [c for c in await admin_context.cookies() if c["name"] == "__Host-pz_dash"]
    await admin.fill("#f-email", admin_email)
    await admin.fill("#f-password", ADMIN_PASSWORD)
    await admin.click("form[action='/dashboard/signin'] button.primary")
    await admin.wait_for_url(at("/dashboard"))
    await dashboard_cookie(admin_context)

    # an administrator edits a service
    await admin.goto(f"{live_server}/dashboard/services")
    await admin.click(f"a[href^='/dashboard/services/'][aria-label*='{haircut}']")
    await admin.fill("#f-price", "9 500")
    await admin.click("form.catalog-form button.primary")
    await admin.wait_for_url(at("/dashboard/services"))
    price = await scalar(
        owner_session,
        "SELECT s.price_tiyn FROM services s JOIN businesses b ON b.id = s.business_id "
        "WHERE b.slug = :s AND s.name ->> 'ru' = :n",
        s=slug,
        n=haircut,
    )
    assert price == 950_000
    # and is refused the owner's pages
    for path in ("/dashboard/settings", "/dashboard/team", "/dashboard/setup"):
        response = await admin.goto(live_server + path)
        assert response is not None and response.status == 403, path
    assert admin_watch.foreign == [] and admin_watch.errors == []
    await admin_context.close()
