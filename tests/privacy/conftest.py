"""Shared arrangement for the privacy-rights tests: people, bookings, images.

Data is arranged as the tables' owner (``owner_session``) or through the real domain functions
on the runtime role (``db``); every check runs on the runtime role, as the app does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from io import BytesIO
from uuid import uuid4

from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, create_booking_in
from app.models import Account, Business
from tests.conftest import SECRET_KEY
from tests.factories import BusinessFixture, local_start, next_telegram_id

SECRET = SECRET_KEY


def random_phone() -> str:
    """A valid Kazakhstan mobile number nobody else in the test database has."""
    return f"+7701{secrets.randbelow(10**7):07d}"


def random_ip() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"


@dataclass
class Person:
    id: int
    name: str
    phone: str
    email: str
    telegram_id: int

    @property
    def national_phone(self) -> str:
        """The number without +7: matches it however it was written down."""
        return self.phone[2:]


async def make_person(owner_session: AsyncSession, *, first: str = "Zhanar") -> Person:
    """An account with every kind of contact, verified, committed."""
    tag = uuid4().hex[:10]
    now = datetime.now(UTC)
    account = Account(
        name=f"{first} Q{tag}",
        phone=random_phone(),
        phone_verified_at=now,
        email=f"{first.lower()}.{tag}@example.kz",
        email_verified_at=now,
        telegram_id=next_telegram_id(),
        allows_write_to_pm=True,
        password_hash="$2b$12$" + "x" * 53,
        locale="kk",
    )
    owner_session.add(account)
    await owner_session.flush()
    await owner_session.commit()
    assert account.name and account.phone and account.email and account.telegram_id
    return Person(account.id, account.name, account.phone, account.email, account.telegram_id)


async def book(
    db: Database,
    business: BusinessFixture,
    account_id: int,
    *,
    days_ahead: int = 2,
    at: time = time(10),
    staff_index: int = 0,
    comment: str | None = None,
) -> int:
    """A booking made through the booking service, as the signed-in person would."""
    start = local_start(business, days_ahead, at)
    now = min(datetime.now(UTC), start - timedelta(hours=2))
    async with db.transaction(business_id=business.id, account_id=account_id) as session:
        biz = await session.get(Business, business.id)
        account = await session.get(Account, account_id)
        assert biz is not None and account is not None
        booking, created = await create_booking_in(
            session,
            biz,
            BookingRequest(
                service_id=business.service_id,
                staff_id=business.staff_ids[staff_index],
                start=start,
                comment=comment,
            ),
            account=account,
            actor=Actor(kind="client", account_id=account_id),
            now=now,
        )
        assert created
        return booking.id


async def client_card_id(owner_session: AsyncSession, business_id: int, account_id: int) -> int:
    return int(
        await owner_session.scalar(
            text("SELECT id FROM clients WHERE business_id = :b AND account_id = :a"),
            {"b": business_id, "a": account_id},
        )
    )


def image_bytes(
    fmt: str = "JPEG",
    size: tuple[int, int] = (64, 48),
    mode: str = "RGB",
    color: object = (200, 30, 30),
    **save: object,
) -> bytes:
    out = BytesIO()
    Image.new(mode, size, color).save(out, format=fmt, **save)  # type: ignore[arg-type]
    return out.getvalue()


# ---------------------------------------------------------------- a person who is everywhere


@dataclass
class Scene:
    """Person P, with data in every table that can hold it, in businesses A and B; person Q, a
    client of A too, whose data must never leak into P's copy nor suffer from P's erasure."""

    p: Person
    q: Person
    a: BusinessFixture
    b: BusinessFixture
    p_bookings: dict[str, int]  # future_a, future_b, past_a, desk_a
    q_booking: int
    p_cards: dict[str, int]  # a, b
    q_card: int
    p_messages: list[str]
    q_message: str
    session_token: str
    session_csrf: str
    otp_challenges: list[int]


async def build_scene(db: Database, owner_session: AsyncSession) -> Scene:
    from app.domain.avatars import set_avatar
    from app.domain.consent import current_policy, record_consent
    from app.domain.otp import request_code
    from app.domain.privacy import record_data_request
    from app.models import Membership, Message
    from app.security import sessions
    from tests.factories import create_business

    a = await create_business(owner_session)
    b = await create_business(owner_session)
    await owner_session.commit()
    p = await make_person(owner_session)
    q = await make_person(owner_session, first="Aliya")
    # P also helps run business B (an admin, not its owner)
    owner_session.add(Membership(business_id=b.id, account_id=p.id, role="admin"))
    await owner_session.commit()

    for person in (p, q):
        async with db.transaction(account_id=person.id) as session:
            policy = await current_policy(session)
            await record_consent(
                session, person.id, policy_version=policy.version, purposes=policy.purposes,
                action="granted", channel="mini_app", ip="192.0.2.10", user_agent="TestPhone/1.0",
            )  # fmt: skip

    p_bookings = {
        "future_a": await book(db, a, p.id, days_ahead=2, at=time(10), comment=f"{p.name} here"),
        "future_b": await book(db, b, p.id, days_ahead=3, at=time(11)),
        "past_a": await book(db, a, p.id, days_ahead=-3, at=time(10)),
    }
    await owner_session.execute(
        text("UPDATE bookings SET status = 'completed' WHERE id = :id"),
        {"id": p_bookings["past_a"]},
    )
    q_booking = await book(db, a, q.id, days_ahead=2, at=time(15), comment="Aliya's comment")
    p_cards = {
        "a": await client_card_id(owner_session, a.id, p.id),
        "b": await client_card_id(owner_session, b.id, p.id),
    }
    q_card = await client_card_id(owner_session, a.id, q.id)
    # a booking the desk made for P's card (no account on it): P's too
    async with db.transaction(business_id=a.id) as session:
        biz = await session.get(Business, a.id)
        assert biz is not None
        desk, _ = await create_booking_in(
            session, biz,
            BookingRequest(service_id=a.service_id, staff_id=a.staff_ids[1],
                           start=local_start(a, 4, time(16)), source="dashboard",
                           client_name="walk-in"),
            account=None, actor=Actor(kind="staff", account_id=a.owner_account_id),
        )  # fmt: skip
        desk_id, desk_card = desk.id, desk.client_id
    await owner_session.execute(
        text("UPDATE bookings SET client_id = :c WHERE id = :id"),
        {"c": p_cards["a"], "id": desk_id},
    )
    await owner_session.execute(text("DELETE FROM clients WHERE id = :c"), {"c": desk_card})
    p_bookings["desk_a"] = desk_id
    # the business's own notes about P, and what it wrote to the audit log about P's card
    await owner_session.execute(
        text("UPDATE clients SET notes = :n, tags = ARRAY['vip'] WHERE id = :c"),
        {"n": f"{p.name} likes it quiet, call {p.phone}", "c": p_cards["a"]},
    )
    await owner_session.execute(
        text(
            "SELECT audit_append(:b, :actor, 'staff', 'client.update', 'client', :c, NULL, "
            "CAST(:after AS jsonb), NULL, CAST('198.51.100.7' AS inet), 'Dashboard/1.0')"
        ),
        {"b": a.id, "actor": a.owner_account_id, "c": p_cards["a"],
         "after": f'{{"name": "{p.name}", "phone": "{p.phone}", "email": "{p.email}"}}'},
    )  # fmt: skip
    p_messages = [f"Hi, it is {p.name}, running late", f"Dear {p.name}, no problem"]
    q_message = f"Hello from {q.name} at {q.phone}"
    owner_session.add_all(
        [
            Message(business_id=a.id, client_id=p_cards["a"], booking_id=p_bookings["future_a"],
                    sender="client", author_account_id=p.id, body=p_messages[0]),
            Message(business_id=a.id, client_id=p_cards["a"], booking_id=p_bookings["future_a"],
                    sender="business", author_account_id=a.owner_account_id, body=p_messages[1]),
            Message(business_id=a.id, client_id=q_card, booking_id=q_booking, sender="client",
                    author_account_id=q.id, body=q_message),
        ]
    )  # fmt: skip
    await owner_session.execute(
        text(
            "INSERT INTO security_events (account_id, event, ip, user_agent) VALUES "
            "(:p, 'sign_in', '192.0.2.10', 'TestPhone/1.0'), (:q, 'sign_in', '192.0.2.99', 'Q/1')"
        ),
        {"p": p.id, "q": q.id},
    )
    # the business side: an e-mail link to a new address of P's, the invitation P accepted to
    # B, one P sent from B, and one still open to P's phone at A
    await owner_session.execute(
        text(
            "INSERT INTO account_tokens (account_id, purpose, token_hash, target, expires_at) "
            "VALUES (:p, 'change_email', md5(random()::text), :target, now() + interval '1 day')"
        ),
        {"p": p.id, "target": f"new.{p.email}"},
    )
    await owner_session.execute(
        text(
            "INSERT INTO invitations (business_id, role, email, phone, token_hash, invited_by, "
            "expires_at, accepted_at, accepted_by) VALUES "
            "(:b, 'admin', :email, NULL, md5(random()::text), :b_owner, now() + interval '7 days', "
            " now(), :p), "
            "(:b, 'master', 'colleague@example.kz', NULL, md5(random()::text), :p, "
            " now() + interval '7 days', NULL, NULL), "
            "(:a, 'master', NULL, :phone, md5(random()::text), :a_owner, "
            " now() + interval '7 days', NULL, NULL)"
        ),
        {"a": a.id, "b": b.id, "p": p.id, "email": p.email, "phone": p.phone,
         "a_owner": a.owner_account_id, "b_owner": b.owner_account_id},
    )  # fmt: skip
    await owner_session.commit()

    otp_challenges = []
    for channel, destination in (("sms", p.phone), ("email", p.email)):
        async with db.transaction() as session:
            otp_challenges.append(
                await request_code(
                    session, channel=channel, destination=destination, ip=random_ip(),
                    secret=SECRET,
                )
            )  # fmt: skip
    async with db.transaction(account_id=p.id) as session:
        token, info = await sessions.issue(
            session, account_id=p.id, kind="miniapp", key=SECRET, ip="192.0.2.10",
            user_agent="TestPhone/1.0",
        )  # fmt: skip
        await record_data_request(session, p.id, "correct", "email", {"field": "name"})
        await set_avatar(session, p.id, image_bytes("PNG", (40, 40)))
    return Scene(
        p=p, q=q, a=a, b=b, p_bookings=p_bookings, q_booking=q_booking, p_cards=p_cards,
        q_card=q_card, p_messages=p_messages, q_message=q_message, session_token=token,
        session_csrf=info.csrf_secret, otp_challenges=otp_challenges,
    )  # fmt: skip
