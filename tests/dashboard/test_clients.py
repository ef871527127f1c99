"""Dashboard: the business's clients (issue 14 item 6) — search by name or phone, the client
card (pinned: another business's client → 404), notes and tags (admin+, audited), and policy
5.1: a card shows only the name, phone, services booked and times, and the business's own notes
and tags — never the person's e-mail, Telegram id, avatar or bookings elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import client_cards
from app.domain.members import Member
from app.i18n import money
from app.models import Account
from app.settings import Settings
from tests.factories import BusinessFixture, new_business, next_telegram_id
from tests.support.dashboard import add_member, form, sign_in_as


@dataclass(frozen=True)
class Seeded:
    client_id: int
    account_id: int | None
    booking_ids: list[int]


async def seed_client(
    session: AsyncSession,
    business: BusinessFixture,
    *,
    name: str = "Айгерим",
    phone: str | None = "+77011234567",
    account: Account | None = None,
    visits: int = 3,
    status: str = "completed",
    service: str = "Стрижка",
    price_tiyn: int = 500_000,
) -> Seeded:
    """A client of the business with ``visits`` past bookings of ``status`` (committed)."""
    client_id = int(
        (
            await session.execute(
                text(
                    "INSERT INTO clients (business_id, account_id, name, phone) "
                    "VALUES (:b, :a, :n, :p) RETURNING id"
                ),
                {"b": business.id, "a": account.id if account else None, "n": name, "p": phone},
            )
        ).scalar_one()
    )
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(days=visits + 2)
    rows = await session.execute(
        text(
            "INSERT INTO bookings (business_id, public_code, client_id, account_id, staff_id, "
            "service_id, period, blocked_period, status, source, service_name, duration_min, "
            "price_tiyn) SELECT :b, :code || d, :c, :a, :s, :v, "
            "tstzrange(CAST(:t AS timestamptz) + make_interval(days => d), "
            "          CAST(:t AS timestamptz) + make_interval(days => d, mins => 50)), "
            "tstzrange(CAST(:t AS timestamptz) + make_interval(days => d), "
            "          CAST(:t AS timestamptz) + make_interval(days => d, mins => 60)), "
            ":status, 'dashboard', jsonb_build_object('ru', CAST(:svc AS text), 'en', "
            "CAST(:svc AS text)), 50, :price FROM generate_series(0, :n - 1) d RETURNING id"
        ),
        {"b": business.id, "code": uuid4().hex[:8].upper(), "c": client_id,
         "a": account.id if account else None, "s": business.staff_ids[0],
         "v": business.service_id, "t": first, "status": status, "svc": service,
         "price": price_tiyn, "n": visits},
    )  # fmt: skip
    booking_ids = [int(r[0]) for r in rows]
    await session.commit()
    return Seeded(client_id, account.id if account else None, booking_ids)


async def person(session: AsyncSession, *, email: str | None = None, locale: str = "ru") -> Account:
    account = Account(
        name="Person", email=email, telegram_id=next_telegram_id(), locale=locale,
        avatar=b"\x89PNG-avatar-bytes",
    )  # fmt: skip
    session.add(account)
    await session.commit()
    return account


async def test_search_by_name_and_by_a_phone_typed_any_way(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    await seed_client(owner_session, business, name="Айгерим Сапарова", phone="+77011234567")
    await seed_client(owner_session, business, name="Данияр", phone="+77059998877")
    other = await new_business(owner_session)
    await seed_client(owner_session, other, name="Айгерим Чужая", phone="+77011234500")
    await sign_in_as(client, owner_session, settings, business.owner_account_id)

    everyone = await client.get("/dashboard/clients")
    assert everyone.status_code == 200
    assert "Айгерим Сапарова" in everyone.text and "Данияр" in everyone.text
    assert "Чужая" not in everyone.text

    by_name = await client.get("/dashboard/clients", params={"q": "айгер"})
    assert "Айгерим Сапарова" in by_name.text and "Данияр" not in by_name.text
    assert "Чужая" not in by_name.text
    for typed in ("8 (701) 123-45-67", "+7 701 123 4567", "123-45"):
        by_phone = await client.get("/dashboard/clients", params={"q": typed})
        assert by_phone.status_code == 200
        assert "Айгерим Сапарова" in by_phone.text, typed
        assert "Данияр" not in by_phone.text, typed
    nobody = await client.get("/dashboard/clients", params={"q": "Зарина"})
    assert nobody.status_code == 200 and "Айгерим" not in nobody.text
    odd = await client.get("/dashboard/clients", params={"q": "%_\\", "page": "x"})
    assert odd.status_code == 200


async def test_the_list_is_paginated(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    await owner_session.execute(
        text(
            "INSERT INTO clients (business_id, name) SELECT :b, 'Pager ' || lpad(n::text, 3, '0') "
            "FROM generate_series(1, :n) n"
        ),
        {"b": business.id, "n": client_cards.PAGE_SIZE + 5},
    )
    await owner_session.commit()
    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    first = await client.get("/dashboard/clients")
    assert first.text.count("Pager ") == client_cards.PAGE_SIZE
    assert "page=2" in first.text
    second = await client.get("/dashboard/clients", params={"page": "2"})
    assert second.text.count("Pager ") == 5
    assert "Pager 001" in second.text and "page=3" not in second.text


async def test_the_card_shows_this_business_only_and_nothing_policy_5_1_forbids(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    someone = await person(owner_session, email=f"secret-{uuid4().hex[:6]}@example.com")
    assert someone.telegram_id is not None
    here = await seed_client(owner_session, business, account=someone, visits=3,
                             service="Стрижка здесь", price_tiyn=500_000)  # fmt: skip
    await seed_client(owner_session, business, name="Айгерим", account=None, visits=0)
    await owner_session.execute(
        text("UPDATE bookings SET status = 'no_show' WHERE id = :a"), {"a": here.booking_ids[0]}
    )
    await owner_session.execute(
        text("UPDATE bookings SET status = 'cancelled' WHERE id = :a"), {"a": here.booking_ids[1]}
    )
    # the same person at another business: its bookings, notes and tags are not this one's
    elsewhere = await new_business(owner_session)
    theirs = await seed_client(owner_session, elsewhere, account=someone, visits=2,
                               service="Маникюр где-то", price_tiyn=900_000)  # fmt: skip
    await owner_session.execute(
        text("UPDATE clients SET notes = 'Чужая заметка', tags = '{чужой}' WHERE id = :c"),
        {"c": theirs.client_id},
    )
    await owner_session.commit()
    await sign_in_as(client, owner_session, settings, business.owner_account_id)

    card = await client.get(f"/dashboard/clients/{here.client_id}")
    assert card.status_code == 200
    page = card.text
    assert "Айгерим" in page and "+77011234567" in page
    assert "Стрижка здесь" in page
    assert money(500_000) in page  # the one completed visit's price
    for forbidden in (someone.email, str(someone.telegram_id), "avatar", "Маникюр где-то",
                      "Чужая заметка", "чужой", money(900_000)):  # fmt: skip
        assert forbidden and forbidden not in page, forbidden

    # another business's client: 404, and its own card is not reachable through this session
    assert (await client.get(f"/dashboard/clients/{theirs.client_id}")).status_code == 404
    assert (await client.get("/dashboard/clients/999999999999")).status_code == 404


async def test_card_totals(db: Database, owner_session: AsyncSession) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    seeded = await seed_client(owner_session, business, visits=4, price_tiyn=300_000)
    await owner_session.execute(
        text("UPDATE bookings SET status = 'no_show' WHERE id = :a"), {"a": seeded.booking_ids[0]}
    )
    await owner_session.execute(
        text("UPDATE bookings SET status = 'cancelled' WHERE id = ANY(:a)"),
        {"a": seeded.booking_ids[1:3]},
    )
    await owner_session.commit()
    owner = Member(business.owner_account_id, business.id, "owner")
    card = await client_cards.card(db, owner, seeded.client_id)
    assert (card.completed, card.spend_tiyn, card.no_shows, card.cancellations) == (
        1, 300_000, 1, 2,
    )  # fmt: skip
    assert len(card.visits) == 4


async def test_a_card_costs_the_same_statements_for_20_and_200_visits(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    owner = Member(business.owner_account_id, business.id, "owner")
    few = await seed_client(owner_session, business, visits=20)
    many = await seed_client(owner_session, business, name="Много", visits=200)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        card_few = await client_cards.card(db, owner, few.client_id)
        of_few = len(statements)
        statements.clear()
        card_many = await client_cards.card(db, owner, many.client_id)
        of_many = len(statements)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(card_few.visits) == 20 and len(card_many.visits) == 200
    assert of_few == of_many
    assert of_few > 0


async def test_notes_and_tags_are_saved_audited_and_checked(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    admin = await add_member(owner_session, business.id, "admin")
    seeded = await seed_client(owner_session, business)
    csrf = await sign_in_as(client, owner_session, settings, admin.account_id)
    url = f"/dashboard/clients/{seeded.client_id}"

    saved = await client.post(
        url, data=form(csrf, notes="Любит кофе", tags="vip, постоянный, VIP"),
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{url}?saved=1"
    row = (
        await owner_session.execute(
            text("SELECT notes, tags FROM clients WHERE id = :c"), {"c": seeded.client_id}
        )
    ).one()
    assert row.notes == "Любит кофе" and row.tags == ["vip", "постоянный"]
    audited = (
        await owner_session.execute(
            text(
                "SELECT actor_account_id, entity_id FROM audit_log WHERE business_id = :b "
                "AND action = 'client.notes'"
            ),
            {"b": business.id},
        )
    ).all()
    assert [(r[0], r[1]) for r in audited] == [(admin.account_id, seeded.client_id)]
    page = await client.get(url)
    assert "Любит кофе" in page.text and "постоянный" in page.text

    # the booking panel appends its notes to the card: a card holds as many as it allows
    longest = await client.post(url, data=form(csrf, notes="n" * client_cards.NOTES_MAX, tags=""),
                                follow_redirects=False)  # fmt: skip
    assert longest.status_code == 303
    over = await client.post(url, data=form(csrf, notes="n" * (client_cards.NOTES_MAX + 1)))
    assert over.status_code == 422 and 'id="e-notes"' in over.text
    await client.post(url, data=form(csrf, notes="Любит кофе", tags="vip, постоянный"))

    too_long = await client.post(url, data=form(csrf, notes="x", tags="t" * 41))
    assert too_long.status_code == 422
    assert 'id="e-tags"' in too_long.text
    after = (
        await owner_session.execute(
            text("SELECT notes FROM clients WHERE id = :c"), {"c": seeded.client_id}
        )
    ).scalar_one()
    assert after == "Любит кофе"  # nothing half-written

    # another business's client: 404, unchanged
    other = await new_business(owner_session)
    theirs = await seed_client(owner_session, other)
    foreign = await client.post(f"/dashboard/clients/{theirs.client_id}",
                                data=form(csrf, notes="mine now", tags=""))  # fmt: skip
    assert foreign.status_code == 404
    assert (
        await owner_session.execute(
            text("SELECT notes FROM clients WHERE id = :c"), {"c": theirs.client_id}
        )
    ).scalar_one() is None


async def test_masters_are_refused(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    master = await add_member(owner_session, business.id, "master",
                              staff_id=business.staff_ids[0])  # fmt: skip
    seeded = await seed_client(owner_session, business)
    csrf = await sign_in_as(client, owner_session, settings, master.account_id)
    assert (await client.get("/dashboard/clients")).status_code == 403
    assert (await client.get(f"/dashboard/clients/{seeded.client_id}")).status_code == 403
    refused = await client.post(f"/dashboard/clients/{seeded.client_id}",
                                data=form(csrf, notes="x", tags=""))  # fmt: skip
    assert refused.status_code == 403
    home = await client.get("/dashboard/")
    assert 'href="/dashboard/clients"' not in home.text
