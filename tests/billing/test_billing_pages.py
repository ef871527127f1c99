"""The billing page (issue 16 item 5; DESIGN "Dashboard contracts": ``GET /dashboard/billing``
is the owner's only — an admin or a master gets 403): the plan and its usage, changing the
plan, the billing details with their checks; and read-only mode across the dashboard's write
paths, while reading, exporting, paying and the clients' own cancellations go on."""

from __future__ import annotations

from datetime import UTC, datetime, time

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.factories import BusinessFixture, local_start, new_business
from tests.helpers import TelegramUser, booking_body, grant_consent
from tests.support.dashboard import add_member, csrf_of, form, sign_in_as


async def owner_in(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, locale: str = "en"
) -> tuple[BusinessFixture, str]:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    await owner_session.execute(text("UPDATE accounts SET locale = :l WHERE id = :a"),
                                {"l": locale, "a": business.owner_account_id})  # fmt: skip
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    return business, csrf


def with_check_digit(first_eleven: str) -> str:
    """A BIN/IIN with its check digit, by the published rule: the eleven digits weighted
    1..11 modulo 11; a remainder of 10 means weights 3..11, 1, 2 instead."""
    digits = [int(c) for c in first_eleven]
    remainder = sum(d * w for d, w in zip(digits, range(1, 12), strict=True)) % 11
    if remainder == 10:
        weights = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
        remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
    assert remainder != 10, "pick other digits: no number can carry these"
    return first_eleven + str(remainder)


async def test_the_owner_sees_the_plan_usage_and_the_plans(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    await owner_in(client, owner_session, settings, locale="ru")
    page = await client.get("/dashboard/billing")
    assert page.status_code == 200
    assert csrf_of(page.text)
    assert "Ваш тариф: Pro" in page.text
    assert "Бесплатный пробный период до" in page.text
    assert "Активных: 2 из 5" in page.text  # the factory's two masters
    for price in ("4\u00a0990\u00a0₸ в месяц", "49\u00a0900\u00a0₸ в год",
                  "12\u00a0990\u00a0₸ в месяц", "129\u00a0900\u00a0₸ в год"):  # fmt: skip
        assert price in page.text
    assert 'href="/dashboard/billing"' in page.text  # the navigation's entry


@pytest.mark.parametrize("role", ["admin", "master"])
async def test_an_admin_or_a_master_gets_403(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, role: str
) -> None:
    business = await new_business(owner_session)
    person = await add_member(owner_session, business.id, role, staff_id=(
        business.staff_ids[0] if role == "master" else None))  # fmt: skip
    csrf = await sign_in_as(client, owner_session, settings, person.account_id)
    assert (await client.get("/dashboard/billing")).status_code == 403
    home = await client.get("/dashboard/calendar")
    assert 'href="/dashboard/billing"' not in home.text  # no entry for them
    for path, data in (("/dashboard/billing/plan", {"plan": "business", "period": "month"}),
                       ("/dashboard/billing/details", {"legal_name": "Intruder LLP"})):  # fmt: skip
        refused = await client.post(path, data=form(csrf, **data), follow_redirects=False)
        assert refused.status_code == 403
    await owner_session.commit()
    assert (
        await owner_session.scalar(
            text("SELECT count(*) FROM billing_profiles WHERE business_id = :b"), {"b": business.id}
        )
        == 0
    )
    assert (
        await owner_session.scalar(
            text("SELECT count(*) FROM invoices WHERE business_id = :b"), {"b": business.id}
        )
        == 0
    )


async def test_billing_details_are_checked_saved_and_audited(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_in(client, owner_session, settings, locale="ru")
    good = with_check_digit("99034000123")
    bad = good[:11] + str((int(good[11]) + 1) % 10)
    refused = await client.post(
        "/dashboard/billing/details",
        data=form(csrf, legal_name="ТОО «Салон»", bin_iin=bad, address="Алматы"),
        follow_redirects=False,
    )
    assert refused.status_code == 422
    assert "БИН или ИИН — это 12 цифр с верной контрольной цифрой" in refused.text
    assert f'value="{bad}"' in refused.text  # the value as sent, to correct it
    empty = await client.post("/dashboard/billing/details", data=form(csrf, legal_name=""),
                              follow_redirects=False)  # fmt: skip
    assert empty.status_code == 422 and "Укажите юридическое название" in empty.text
    await owner_session.commit()
    assert (
        await owner_session.scalar(
            text("SELECT count(*) FROM billing_profiles WHERE business_id = :b"), {"b": business.id}
        )
        == 0
    )

    saved = await client.post("/dashboard/billing/details", data=form(
        csrf, legal_name="ТОО «Салон»", bin_iin=good, address="Алматы, Абая 1", vat_payer="1"),
        follow_redirects=False)  # fmt: skip
    assert saved.status_code == 303
    await owner_session.commit()
    row = (await owner_session.execute(text(
        "SELECT legal_name, bin_iin, address, vat_payer FROM billing_profiles "
        "WHERE business_id = :b"), {"b": business.id})).one()  # fmt: skip
    assert tuple(row) == ("ТОО «Салон»", good, "Алматы, Абая 1", True)
    logged = await owner_session.scalar(text(
        "SELECT count(*) FROM audit_log WHERE business_id = :b AND "
        "action = 'billing.details_changed'"), {"b": business.id})  # fmt: skip
    assert logged == 1


async def test_choosing_a_paid_plan_leads_to_its_invoice(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_in(client, owner_session, settings)
    chosen = await client.post("/dashboard/billing/plan", data=form(
        csrf, plan="business", period="year"), follow_redirects=False)  # fmt: skip
    assert chosen.status_code == 303
    assert chosen.headers["location"].startswith("/dashboard/billing/invoices/")
    await owner_session.commit()
    amount = await owner_session.scalar(text(
        "SELECT amount_tiyn FROM invoices WHERE business_id = :b AND status = 'open'"),
        {"b": business.id})  # fmt: skip
    assert amount == 12_990_000  # a year of Business from a trial: nothing to credit
    page = await client.get("/dashboard/billing")
    assert "waiting for payment" in page.text
    bad = await client.post("/dashboard/billing/plan", data=form(csrf, plan="gold"),
                            follow_redirects=False)  # fmt: skip
    assert bad.status_code == 422 and "Choose one of the plans." in bad.text


# --- read-only mode -------------------------------------------------------------------------


async def test_read_only_refuses_the_business_changes_and_keeps_reading_paying_and_clients(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_in(client, owner_session, settings, locale="en")
    user = TelegramUser()
    await grant_consent(client, user)
    start = local_start(business, 3, at=time(10))
    made = await client.post(f"/api/v1/businesses/{business.slug}/bookings",
                             json=booking_body(business.service_id, start, None),
                             headers=user.headers())  # fmt: skip
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    client_id = await owner_session.scalar(
        text("SELECT client_id FROM bookings WHERE id = :i"), {"i": booking_id}
    )
    await owner_session.execute(
        text("UPDATE businesses SET read_only_since = now() WHERE id = :b"), {"b": business.id}
    )
    await owner_session.commit()

    async def counts() -> tuple[int, ...]:
        await owner_session.commit()
        return tuple([await owner_session.scalar(text(
            f"SELECT count(*) FROM {t} WHERE business_id = :b"), {"b": business.id})
            for t in ("staff", "services", "clients", "bookings", "working_hours")])  # fmt: skip

    before = await counts()
    later = local_start(business, 4, at=time(11)).isoformat()
    writes = [
        ("/dashboard/masters", {"name": "New master"}),
        ("/dashboard/services", {"name_ru": "Новая", "name_kk": "Жаңа", "name_en": "New",
                                 "duration_min": "30", "price": "1000"}),
        ("/dashboard/settings", {"slot_step": "30"}),
        ("/dashboard/bookings", {"service_id": business.service_id,
                                 "staff_id": business.staff_ids[0], "start": later,
                                 "client_name": "Walk-in", "client_phone": "+77010003344"}),
        (f"/dashboard/bookings/{booking_id}/cancel", {"reason": "no"}),
        (f"/dashboard/clients/{client_id}", {"notes": "x", "tags": ""}),
    ]  # fmt: skip
    for path, data in writes:
        refused = await client.post(path, data=form(csrf, **data), follow_redirects=False)
        assert refused.status_code == 403, (path, refused.status_code)
        assert "your business is read-only" in refused.text, path
        assert 'href="/dashboard/billing"' in refused.text
    assert await counts() == before  # nothing made, nothing deleted

    # reading and exporting go on
    for path in ("/dashboard/calendar", "/dashboard/clients", f"/dashboard/clients/{client_id}",
                 "/dashboard/bookings", "/dashboard/billing"):  # fmt: skip
        assert (await client.get(path)).status_code == 200, path
    today = datetime.now(UTC).date()
    export = await client.get("/dashboard/bookings.csv", params={
        "from": today.isoformat(), "to": start.date().isoformat()})  # fmt: skip
    assert export.status_code == 200 and export.text.startswith("\ufeff")
    # billing itself works: the details, a plan
    saved = await client.post("/dashboard/billing/details", data=form(
        csrf, legal_name="Read Only LLP"), follow_redirects=False)  # fmt: skip
    assert saved.status_code == 303
    chosen = await client.post("/dashboard/billing/plan", data=form(
        csrf, plan="pro", period="month"), follow_redirects=False)  # fmt: skip
    assert chosen.status_code == 303
    invoice_page = chosen.headers["location"]
    assert invoice_page.startswith("/dashboard/billing/invoices/")
    paying = await client.post(f"{invoice_page}/pay", data=form(csrf), follow_redirects=False)
    assert paying.status_code == 303, paying.text  # on its way to the payment page
    # the client still sees and cancels their booking
    mine = await client.get(f"/api/v1/me/bookings/{booking_id}", headers=user.headers())
    assert mine.status_code == 200
    cancelled = await client.post(f"/api/v1/me/bookings/{booking_id}/cancel",
                                  headers=user.headers())  # fmt: skip
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
