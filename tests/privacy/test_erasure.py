"""The right to be forgotten (policy 8.3): one transaction erases the person across every
business, keeps everybody else's data and the audit chains intact, and cannot be aimed at
anybody but the signed-in account."""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.accounts import account_from_telegram
from app.domain.errors import NotFound, Unauthorized, ValidationFailed
from app.domain.otp import account_for_contact, request_code, verify_code
from app.domain.privacy import erase_account
from app.integrations.telegram_webapp import InitData, TelegramUser
from app.models import Membership
from app.security import sessions
from tests.factories import create_business
from tests.privacy.conftest import SECRET, Person, Scene, build_scene, make_person, random_ip

pytestmark = pytest.mark.policy("8.3")

TEXTUAL = ("text", "character varying", "character", "jsonb", "json", "ARRAY")


async def traces(owner_session: AsyncSession, person: Person) -> set[tuple[str, str, str]]:
    """Every (table, column, what) in the whole database that still holds the person's name,
    phone (in any notation), e-mail or Telegram id. Columns come from the live schema, so a new
    table is scanned without touching this test. The deletion notice waiting in the outbox to
    reach the person's old addresses is the one expected exception (checked separately)."""
    needles = {
        "name": person.name,
        "phone": person.phone,
        "national phone": person.national_phone,
        "email": person.email,
        "telegram id": str(person.telegram_id),
    }
    columns = (
        await owner_session.execute(
            text(
                "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_schema, table_name) "
                "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
                "AND (c.data_type = ANY(:textual) OR c.data_type = 'bigint')"
            ),
            {"textual": list(TEXTUAL)},
        )
    ).all()
    assert len(columns) > 50
    found = set()
    for table, column, data_type in columns:
        if data_type == "bigint":
            query = f'SELECT count(*) FROM "{table}" WHERE "{column}" = :tid'
            if await owner_session.scalar(text(query), {"tid": person.telegram_id}):
                found.add((table, column, "telegram id"))
            continue
        query = (
            f'SELECT count(*) FROM "{table}" WHERE strpos(lower(CAST("{column}" AS text)), :n) > 0'
        )
        if (table, column) == ("notifications", "address"):
            query += " AND event <> 'account.deleted'"
        for what, needle in needles.items():
            if await owner_session.scalar(text(query), {"n": needle.lower()}):
                found.add((table, column, what))
    return found


async def erase(db: Database, account_id: int, *, as_account: int | None = None) -> None:
    async with db.transaction(account_id=as_account or account_id) as session:
        await erase_account(session, account_id, now=datetime.now(UTC))


async def scalar(owner_session: AsyncSession, sql: str, **params: object) -> object:
    return await owner_session.scalar(text(sql), params)


async def test_nothing_of_the_person_is_left_anywhere(
    db: Database, owner_session: AsyncSession
) -> None:
    scene: Scene = await build_scene(db, owner_session)
    p = scene.p
    before = await traces(owner_session, p)
    # positive control: the scan sees the person everywhere the scene put them
    assert {
        ("accounts", "name", "name"), ("accounts", "phone", "phone"),
        ("accounts", "email", "email"), ("accounts", "telegram_id", "telegram id"),
        ("clients", "name", "name"), ("clients", "phone", "phone"), ("clients", "notes", "name"),
        ("messages", "body", "name"), ("bookings", "comment", "name"),
        ("notifications", "address", "phone"), ("notifications", "address", "email"),
        ("audit_details", "after", "email"),
        ("account_tokens", "target", "email"), ("invitations", "email", "email"),
        ("invitations", "phone", "phone"),
    } <= before  # fmt: skip

    await erase(db, p.id)

    assert await traces(owner_session, p) == set()
    account = (
        (await owner_session.execute(text("SELECT * FROM accounts WHERE id = :a"), {"a": p.id}))
        .mappings()
        .one()
    )
    for column in ("name", "phone", "phone_verified_at", "email", "email_verified_at",
                   "telegram_id", "password_hash", "avatar"):  # fmt: skip
        assert account[column] is None, column
    assert account["deleted_at"] is not None
    # the invitation P sent stays the business's, without the link to P
    assert await scalar(owner_session, "SELECT count(*) FROM invitations WHERE invited_by = :p "
                        "OR accepted_by = :p", p=p.id) == 0  # fmt: skip
    assert await scalar(owner_session, "SELECT count(*) FROM invitations WHERE email = "
                        "'colleague@example.kz' AND business_id = :b", b=scene.b.id) == 1  # fmt: skip
    # the confirmation waits in the outbox for each address the account had, and only there
    notices = (
        await owner_session.execute(
            text(
                "SELECT channel, address, account_id, status, payload, idempotency_key "
                "FROM notifications WHERE event = 'account.deleted' AND idempotency_key LIKE :k"
            ),
            {"k": f"account.deleted:{p.id}:%"},
        )
    ).all()
    assert {(n.channel, n.address) for n in notices} == {
        ("telegram", str(p.telegram_id)), ("sms", p.phone), ("email", p.email),
    }  # fmt: skip
    assert all(n.account_id is None and n.status == "pending" and n.payload == {} for n in notices)


async def test_business_side_effects(db: Database, owner_session: AsyncSession) -> None:
    scene = await build_scene(db, owner_session)
    p, q = scene.p, scene.q
    await erase(db, p.id)

    status = {
        name: tuple(
            (
                await owner_session.execute(
                    text(
                        "SELECT status, cancelled_by, cancel_reason, account_id, comment "
                        "FROM bookings WHERE id = :id"
                    ),
                    {"id": booking_id},
                )
            ).one()
        )
        for name, booking_id in scene.p_bookings.items()
    }
    assert status["future_a"] == ("cancelled", "client", "account deleted", None, None)
    assert status["future_b"] == ("cancelled", "client", "account deleted", None, None)
    assert status["past_a"] == ("completed", None, None, None, None)  # history stays
    assert status["desk_a"][0] == "confirmed"  # the business's own booking of the card stays

    # no reminder or other message goes to P any more; each business is told of the cancellation
    pending = await scalar(
        owner_session,
        "SELECT count(*) FROM notifications WHERE status = 'pending' AND (account_id = :a "
        "OR booking_id = ANY(:b)) AND event <> 'staff.booking.cancelled'",
        a=p.id, b=[scene.p_bookings["future_a"], scene.p_bookings["future_b"]],
    )  # fmt: skip
    assert pending == 0
    told = (
        await owner_session.execute(
            text(
                "SELECT business_id, account_id FROM notifications "
                "WHERE event = 'staff.booking.cancelled' AND booking_id = ANY(:b)"
            ),
            {"b": [scene.p_bookings["future_a"], scene.p_bookings["future_b"]]},
        )
    ).all()
    assert {tuple(t) for t in told} == {
        (scene.a.id, scene.a.owner_account_id), (scene.b.id, scene.b.owner_account_id),
    }  # fmt: skip

    # P's cards: anonymous and unlinked, their threads gone; P's role in B ended
    cards = (
        await owner_session.execute(
            text("SELECT name, phone, notes, tags, account_id FROM clients WHERE id = ANY(:c)"),
            {"c": list(scene.p_cards.values())},
        )
    ).all()
    assert [tuple(c) for c in cards] == [(None, None, None, [], None)] * 2
    assert await scalar(
        owner_session, "SELECT count(*) FROM messages WHERE client_id = ANY(:c)",
        c=list(scene.p_cards.values()),
    ) == 0  # fmt: skip
    assert await scalar(
        owner_session, "SELECT count(*) FROM memberships WHERE account_id = :a", a=p.id
    ) == 0  # fmt: skip

    # Q is untouched
    q_card = (
        await owner_session.execute(
            text("SELECT name, phone, account_id FROM clients WHERE id = :c"), {"c": scene.q_card}
        )
    ).one()
    assert tuple(q_card) == (q.name, q.phone, q.id)
    q_booking = (
        await owner_session.execute(
            text("SELECT status, account_id, comment FROM bookings WHERE id = :b"),
            {"b": scene.q_booking},
        )
    ).one()
    assert tuple(q_booking) == ("confirmed", q.id, "Aliya's comment")
    assert await scalar(
        owner_session, "SELECT body FROM messages WHERE client_id = :c", c=scene.q_card
    ) == scene.q_message  # fmt: skip
    assert await scalar(
        owner_session, "SELECT name FROM accounts WHERE id = :a", a=q.id
    ) == q.name  # fmt: skip
    assert await scalar(
        owner_session,
        "SELECT count(*) FROM notifications WHERE account_id = :a AND status = 'pending'",
        a=q.id,
    )  # Q's reminders are still due


async def test_sessions_are_revoked_and_audit_chains_verify(
    db: Database, owner_session: AsyncSession
) -> None:
    scene = await build_scene(db, owner_session)
    p = scene.p
    async with db.transaction() as session:
        assert await sessions.verify(session, scene.session_token, kind="miniapp", key=SECRET)
    await erase(db, p.id)
    async with db.transaction() as session:
        assert (
            await sessions.verify(session, scene.session_token, kind="miniapp", key=SECRET) is None
        )

    actions = (
        await owner_session.execute(
            text(
                "SELECT chain_key, action FROM audit_log WHERE "
                "(chain_key = 0 AND entity = 'account' AND entity_id = :a) "
                "OR (chain_key = ANY(:chains) AND action IN ('booking.cancelled', 'client.erase') "
                "AND actor_account_id = :a)"
            ),
            {"a": p.id, "chains": [scene.a.id, scene.b.id]},
        )
    ).all()
    assert {tuple(a) for a in actions} >= {
        (0, "account.erase"), (scene.a.id, "booking.cancelled"), (scene.b.id, "booking.cancelled"),
        (scene.a.id, "client.erase"), (scene.b.id, "client.erase"),
    }  # fmt: skip
    # the chains this erasure wrote to (and cleared details of) still verify
    broken = await scalar(
        owner_session,
        "SELECT count(*) FROM audit_verify() WHERE chain_key = ANY(:chains)",
        chains=[0, scene.a.id, scene.b.id],
    )
    assert broken == 0
    assert await scalar(
        owner_session,
        "SELECT count(*) FROM data_requests WHERE account_id = :a AND kind = 'delete' "
        "AND status = 'done' AND due_on IS NOT NULL",
        a=p.id,
    ) == 1  # fmt: skip


async def test_a_new_sign_in_starts_a_new_account(
    db: Database, owner_session: AsyncSession
) -> None:
    p = await make_person(owner_session)
    await erase(db, p.id)
    user = TelegramUser(id=p.telegram_id, first_name="Zhanar", language_code="kk")
    async with db.transaction() as session:
        account, created = await account_from_telegram(
            session, InitData(user=user, auth_date=int(clock.time()), start_param=None, raw="")
        )
        assert created and account.id != p.id
    async with db.transaction() as session:
        challenge_id = await request_code(
            session, channel="sms", destination=p.phone, ip=random_ip(), secret=SECRET
        )
    code = await scalar(
        owner_session,
        "SELECT payload->>'code' FROM notifications WHERE idempotency_key = :k",
        k=f"otp.code:{challenge_id}",
    )
    async with db.transaction() as session:
        verified = await verify_code(
            session, challenge_id=challenge_id, destination=p.phone, code=str(code), secret=SECRET
        )
        by_phone = await account_for_contact(session, verified)
        assert by_phone.id not in (p.id, account.id)


async def test_an_account_cannot_erase_another(db: Database, owner_session: AsyncSession) -> None:
    victim = await make_person(owner_session)
    attacker = await make_person(owner_session, first="Mallory")
    with pytest.raises(Unauthorized):
        await erase(db, victim.id, as_account=attacker.id)
    # the database function itself refuses, whoever calls it and however
    for context in (attacker.id, None):
        with pytest.raises(DBAPIError) as caught:
            async with db.transaction(account_id=context) as session:
                await session.execute(
                    text("SELECT erase_account_data(:a, now())"), {"a": victim.id}
                )
        assert "erase only itself" in str(caught.value)
    assert await scalar(
        owner_session, "SELECT name FROM accounts WHERE id = :a AND deleted_at IS NULL",
        a=victim.id,
    ) == victim.name  # fmt: skip


async def test_the_function_is_the_only_way_across_tenants(
    db: Database, owner_session: AsyncSession
) -> None:
    """Without it, the app role cannot touch a card in a business it is not working for."""
    scene = await build_scene(db, owner_session)
    async with db.transaction(account_id=scene.p.id) as session:
        result = await session.execute(
            text("UPDATE clients SET name = NULL WHERE account_id = :a"), {"a": scene.p.id}
        )
        assert getattr(result, "rowcount", None) == 0
    grants = await scalar(
        owner_session,
        "SELECT array_agg(grantee::regrole::text ORDER BY 1) FROM (SELECT (aclexplode(proacl)).grantee "
        "FROM pg_proc WHERE proname = 'erase_account_data') g WHERE grantee <> 0",
    )
    assert "pozapisi_app" in grants and "pozapisi_worker" not in grants  # type: ignore[operator]


async def test_erased_once(db: Database, owner_session: AsyncSession) -> None:
    p = await make_person(owner_session)
    await erase(db, p.id)
    with pytest.raises(NotFound):
        await erase(db, p.id)


async def test_an_owner_hands_the_business_over_first(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await create_business(owner_session, with_owner=False)
    p = await make_person(owner_session)
    owner_session.add(Membership(business_id=business.id, account_id=p.id, role="owner"))
    await owner_session.commit()
    with pytest.raises(ValidationFailed):
        await erase(db, p.id)
    assert await scalar(
        owner_session, "SELECT deleted_at FROM accounts WHERE id = :a", a=p.id
    ) is None  # fmt: skip
