"""The team on a 360 px phone, in Russian, in headless Chromium: the owner's invitation refused
beside its field, then sent; the invitee opens the link from the message in a browser of their
own, makes an account with a name and a password and lands in the business's dashboard. Pages
fit the phone, nothing leaves the origin, no script fails."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.browser.conftest import PageWatch
from tests.factories import new_business


async def test_an_owner_invites_an_administrator_who_joins_on_a_phone(
    browser: Any,
    phone_page: tuple[Any, PageWatch],
    live_server: str,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    page, watch = phone_page
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    token, _ = await sessions.issue(
        owner_session, account_id=business.owner_account_id, kind="dashboard",
        key=secret_key_for(settings), ip="127.0.0.1", user_agent="playwright",
    )  # fmt: skip
    await owner_session.commit()
    await page.context.add_cookies(
        [{"name": "__Host-pz_dash", "value": token, "domain": "127.0.0.1", "path": "/",
          "secure": True, "httpOnly": True, "sameSite": "Lax"}]
    )  # fmt: skip

    await page.goto(f"{live_server}/dashboard/team?lang=ru")
    await expect(page.locator("h1")).to_have_text("Команда")
    assert await watch.fits_360()
    await page.fill("#f-contact", "8 495 123 45 67")  # a Moscow landline: not a KZ mobile
    await page.select_option("#f-role", "admin")
    await page.click("text=Отправить приглашение")
    await expect(page.locator("#e-contact")).to_contain_text("казахстанский мобильный номер")
    await expect(page.locator("#f-contact")).to_have_value("8 495 123 45 67")  # kept
    email = f"admin-{uuid4().hex[:8]}@example.com"
    await page.fill("#f-contact", email)
    await page.click("text=Отправить приглашение")
    await expect(page.locator("table.data")).to_contain_text(email)
    assert await watch.fits_360()
    await watch.shot("team-invited")

    link = await owner_session.scalar(
        text(
            "SELECT payload ->> 'link' FROM notifications WHERE event = 'team.invitation' "
            "AND address = :e"
        ),
        {"e": email},
    )
    await owner_session.commit()
    path = urlsplit(str(link)).path  # the message's link, on this server
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="ru-RU")
    try:
        invitee = await context.new_page()
        theirs = PageWatch(invitee, live_server)
        await invitee.goto(f"{live_server}{path}?lang=ru")
        await expect(invitee.locator("h1")).to_contain_text(f"Test {business.slug}")
        assert await theirs.fits_360()
        await theirs.shot("team-invitation")
        await invitee.fill("#f-name", "Дана")
        await invitee.fill("#f-password", "тюльпан-река-42")
        await invitee.click("text=Создать аккаунт и присоединиться")
        await expect(invitee.locator("header .business-name")).to_have_text(f"Test {business.slug}")
        # an administrator: no team in the menu, and the team page refuses them
        await expect(invitee.locator("nav.dash-nav")).not_to_contain_text("Команда")
        refused = await invitee.goto(f"{live_server}/dashboard/team")
        assert refused is not None and refused.status == 403
        await theirs.shot("team-joined")
        assert theirs.foreign == [] and theirs.errors == []
    finally:
        await context.close()
    assert watch.foreign == [] and watch.errors == []
