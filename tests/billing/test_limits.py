"""Plan limits (issue 16 item 1): the 6th master on Pro, notes and tags on Free, SMS on Free.
Reaching a limit explains it in the user's language with a link to the plans, and nothing
already made is lost — a business moved down to a smaller plan keeps all it has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.factories import BusinessFixture, new_business
from tests.support.dashboard import form, sign_in_as


async def on_plan(owner_session: AsyncSession, business_id: int, code: str) -> None:
    """Put the business on a plan (paid, current): the test's starting point."""
    await owner_session.execute(text(
        "UPDATE subscriptions SET plan_id = (SELECT id FROM plans WHERE code = :code), "
        "status = 'active', current_period_start = current_date, "
        "current_period_end = current_date + 30 WHERE business_id = :b"),
        {"code": code, "b": business_id})  # fmt: skip
    await owner_session.commit()


async def signed_in_owner(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, *,
    masters: int, plan: str, locale: str = "ru",
) -> tuple[BusinessFixture, str]:  # fmt: skip
    business = await new_business(owner_session, masters=masters)
    await on_plan(owner_session, business.id, plan)
    await owner_session.execute(text("UPDATE accounts SET locale = :l WHERE id = :a"),
                                {"l": locale, "a": business.owner_account_id})  # fmt: skip
    assert business.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    return business, csrf


async def staff_count(owner_session: AsyncSession, business_id: int) -> int:
    await owner_session.commit()
    return int(await owner_session.scalar(text(
        "SELECT count(*) FROM staff WHERE business_id = :b AND archived_at IS NULL"),
        {"b": business_id}))  # fmt: skip


async def add_master(client: httpx.AsyncClient, csrf: str, name: str) -> httpx.Response:
    return await client.post("/dashboard/masters", data=form(csrf, name=name),
                             follow_redirects=False)  # fmt: skip


async def test_the_sixth_master_on_pro_is_refused_with_the_reason_and_the_way_up(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await signed_in_owner(client, owner_session, settings, masters=4,
                                           plan="pro")  # fmt: skip
    fifth = await add_master(client, csrf, "Пятый мастер")
    assert fifth.status_code == 303, fifth.text
    assert await staff_count(owner_session, business.id) == 5

    sixth = await add_master(client, csrf, "Шестой мастер")
    assert sixth.status_code == 403
    assert "Тариф Pro включает до 5 активных мастеров" in sixth.text
    assert 'href="/dashboard/billing"' in sixth.text
    assert await staff_count(owner_session, business.id) == 5

    await on_plan(owner_session, business.id, "business")  # unlimited
    assert (await add_master(client, csrf, "Шестой мастер")).status_code == 303
    assert await staff_count(owner_session, business.id) == 6


async def test_a_downgrade_keeps_every_master_and_refuses_only_adding(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await signed_in_owner(client, owner_session, settings, masters=7,
                                           plan="free", locale="kk")  # fmt: skip
    assert await staff_count(owner_session, business.id) == 7  # on a 1-master plan: all kept
    refused = await add_master(client, csrf, "Сегізінші")
    assert refused.status_code == 403
    assert "Free тарифіне 1 белсенді шебер кіреді" in refused.text
    assert await staff_count(owner_session, business.id) == 7
    page = await client.get("/dashboard/billing")
    assert page.status_code == 200
    assert "Белсенді: 1 ішінен 7" in page.text  # 7 of 1, every one kept

    # archived, then restored: restoring is adding one back, refused the same way
    first = business.staff_ids[0]
    archived = await client.post(f"/dashboard/masters/{first}/archive",
                                 data=form(csrf), follow_redirects=False)  # fmt: skip
    assert archived.status_code in (200, 303), archived.text
    restored = await client.post(f"/dashboard/masters/{first}/restore",
                                 data=form(csrf), follow_redirects=False)  # fmt: skip
    assert restored.status_code == 403
    assert await staff_count(owner_session, business.id) == 6


async def test_notes_and_tags_on_free_are_refused_and_what_was_written_stays(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await signed_in_owner(client, owner_session, settings, masters=1,
                                           plan="pro", locale="en")  # fmt: skip
    client_id = await owner_session.scalar(text(
        "INSERT INTO clients (business_id, name, phone, notes, tags) VALUES "
        "(:b, 'Aigerim', '+77010001122', 'likes short cuts', '{regular}') RETURNING id"),
        {"b": business.id})  # fmt: skip
    await owner_session.commit()
    url = f"/dashboard/clients/{client_id}"
    saved = await client.post(url, data=form(csrf, notes="likes short cuts; tea", tags="regular"),
                              follow_redirects=False)  # fmt: skip
    assert saved.status_code in (200, 303), saved.text

    await on_plan(owner_session, business.id, "free")
    refused = await client.post(url, data=form(csrf, notes="", tags=""), follow_redirects=False)
    assert refused.status_code == 403
    assert "Client notes and tags are part of the Pro and Business plans" in refused.text
    await owner_session.commit()
    row = (await owner_session.execute(text("SELECT notes, tags FROM clients WHERE id = :c"),
                                       {"c": client_id})).one()  # fmt: skip
    assert (row.notes, list(row.tags)) == ("likes short cuts; tea", ["regular"])
    card = await client.get(f"/dashboard/clients/{client_id}")
    assert "likes short cuts; tea" in card.text  # still readable


@pytest.mark.parametrize(("plan", "sms"), [("free", False), ("pro", True), ("business", True)])
async def test_sms_only_on_a_plan_with_sms(
    owner_session: AsyncSession, plan: str, sms: bool
) -> None:
    """The relay reads a business's SMS switch through pz_plan_allows (workers/context.py):
    on Free the switch counts as off, so reminders go by Telegram or e-mail."""
    business = await new_business(owner_session)
    await on_plan(owner_session, business.id, plan)
    allowed = await owner_session.scalar(
        text("SELECT notify_sms AND pz_plan_allows(id, 'sms') FROM businesses WHERE id = :b"),
        {"b": business.id},
    )
    assert allowed is sms


async def test_a_free_business_reminder_goes_by_telegram_never_sms(
    owner_session: AsyncSession,
) -> None:
    from workers.context import load_batch
    from workers.routing import candidates

    business = await new_business(owner_session)
    await on_plan(owner_session, business.id, "free")
    async with owner_session.bind.connect() as conn:  # type: ignore[union-attr]
        batch = await load_batch(
            conn, account_ids=[], business_ids=[business.id], booking_ids=[], message_ids=[],
            reminder_booking_ids=[], now=datetime.now(UTC) + timedelta(seconds=1),
        )  # fmt: skip
    info = batch.businesses[business.id]
    assert info.notify_sms is False
    routes = candidates(channel="auto", address="+77010002233", account=None, business=info)
    assert routes == []  # an SMS address on Free: no route (Telegram and e-mail stay)
