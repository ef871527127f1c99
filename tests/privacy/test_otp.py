"""One-time codes (policy 2.2, 2.3, 8.2): hashed, short-lived, single use, few tries, throttled,
and the same answer whether or not an address has an account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.errors import RateLimited, ValidationFailed
from app.domain.otp import (
    CodeInvalid,
    VerifiedContact,
    account_for_contact,
    confirm_contact_change,
    normalize_email,
    normalize_phone,
    request_code,
    request_contact_change,
    verify_code,
)
from tests.privacy.conftest import SECRET, make_person, random_ip, random_phone

pytestmark = pytest.mark.policy("2.2")


# ---------------------------------------------------------------- helpers


async def ask(
    db: Database,
    destination: str,
    *,
    channel: str = "sms",
    ip: str | None = None,
    now: datetime | None = None,
    **kwargs: Any,
) -> int:
    async with db.transaction(account_id=kwargs.get("account_id")) as session:
        return await request_code(
            session, channel=channel, destination=destination, ip=ip or random_ip(),
            secret=SECRET, now=now, **kwargs,
        )  # fmt: skip


async def sent_code(owner_session: AsyncSession, challenge_id: int) -> dict[str, Any]:
    """The outbox row that carries a challenge's code (what the SMS/e-mail worker sends)."""
    row = (
        (
            await owner_session.execute(
                text(
                    "SELECT business_id, booking_id, account_id, address, event, channel, payload, "
                    "status FROM notifications WHERE idempotency_key = :k"
                ),
                {"k": f"otp.code:{challenge_id}"},
            )
        )
        .mappings()
        .one()
    )
    return dict(row)


async def code_of(owner_session: AsyncSession, challenge_id: int) -> str:
    return str((await sent_code(owner_session, challenge_id))["payload"]["code"])


async def verify(
    db: Database, challenge_id: int, destination: str, code: str, **kwargs: Any
) -> VerifiedContact:
    async with db.transaction() as session:
        return await verify_code(
            session, challenge_id=challenge_id, destination=destination, code=code,
            secret=SECRET, **kwargs,
        )  # fmt: skip


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "raw",
    ["+7 701 123 45 67", "+77011234567", "8 701 123 45 67", "8 (701) 123-45-67", " 7011234567 "],
)
def test_kazakhstan_mobile_numbers_are_normalized_to_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+77011234567"


@pytest.mark.parametrize(
    "raw",
    [
        "+1 555 123 4567",  # USA
        "+7 912 345 67 89",  # Russia shares +7
        "+7 727 123 45 67",  # an Almaty landline cannot receive a code
        "garbage",
        "",
        "   ",
        "+7 701 123 45",  # too short
        "+7 701 123 45 67 89 00",
        "+7 701 123 45 67 ext. 5",
        "1" * 200,
    ],
)
def test_other_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalize_phone(raw)
    assert set(caught.value.fields) == {"phone"}
    assert caught.value.fields["phone"].strip()


def test_emails_are_normalized_and_checked() -> None:
    assert normalize_email("  Aigerim.N@Mail.KZ ") == "aigerim.n@mail.kz"
    assert normalize_email("user@пример.қаз").startswith("user@xn--")
    for bad in ("bad", "a@b", "a b@c.kz", "@mail.kz", "a@@mail.kz", "a@mail..kz", "a@-x.kz", ""):
        with pytest.raises(ValidationFailed):
            normalize_email(bad)


# ---------------------------------------------------------------- codes


async def test_code_is_six_digits_stored_only_as_keyed_hashes(
    db: Database, owner_session: AsyncSession
) -> None:
    phone = random_phone()
    challenge_id = await ask(db, phone)
    code = await code_of(owner_session, challenge_id)
    assert len(code) == 6 and code.isdigit()
    row = (
        (
            await owner_session.execute(
                text("SELECT * FROM otp_challenges WHERE id = :id"), {"id": challenge_id}
            )
        )
        .mappings()
        .one()
    )
    for column, value in row.items():
        assert code not in str(value), column
        assert phone[1:] not in str(value) and phone[2:] not in str(value), column
    assert row["expires_at"] - row["created_at"] == timedelta(minutes=5)
    assert row["account_id"] is None and row["attempts"] == 0
    # the delivery row: a platform message to the address, nothing else
    sent = await sent_code(owner_session, challenge_id)
    assert sent["business_id"] is None and sent["booking_id"] is None
    assert sent["account_id"] is None
    assert (sent["address"], sent["event"], sent["channel"]) == (phone, "otp.code", "sms")


async def test_right_code_signs_in_once(db: Database, owner_session: AsyncSession) -> None:
    phone = random_phone()
    challenge_id = await ask(db, "8 " + phone[2:])  # written the local way
    code = await code_of(owner_session, challenge_id)
    verified = await verify(db, challenge_id, phone, code)
    assert verified.destination == phone and verified.purpose == "sign_in"
    with pytest.raises(CodeInvalid):  # reused
        await verify(db, challenge_id, phone, code)


async def test_sixth_try_is_refused_even_with_the_right_code(
    db: Database, owner_session: AsyncSession
) -> None:
    phone = random_phone()
    challenge_id = await ask(db, phone)
    code = await code_of(owner_session, challenge_id)
    for _ in range(5):
        # each wrong try in its own transaction, which the error rolls back: it still counts
        with pytest.raises(CodeInvalid):
            await verify(db, challenge_id, phone, other_code(code))
    with pytest.raises(RateLimited):
        await verify(db, challenge_id, phone, code)
    attempts = await owner_session.scalar(
        text("SELECT attempts FROM otp_challenges WHERE id = :id"), {"id": challenge_id}
    )
    assert attempts == 5


async def test_fifth_try_may_still_be_right(db: Database, owner_session: AsyncSession) -> None:
    phone = random_phone()
    challenge_id = await ask(db, phone)
    code = await code_of(owner_session, challenge_id)
    for wrong in ("000000" if code != "000000" else "111111", other_code(code), "12", "abcdef"):
        with pytest.raises(CodeInvalid):
            await verify(db, challenge_id, phone, wrong)
    assert (await verify(db, challenge_id, phone, code)).destination == phone


async def test_expired_code_is_refused(db: Database, owner_session: AsyncSession) -> None:
    phone = random_phone()
    start = datetime.now(UTC)
    challenge_id = await ask(db, phone, now=start)
    code = await code_of(owner_session, challenge_id)
    with pytest.raises(CodeInvalid):
        await verify(db, challenge_id, phone, code, now=start + timedelta(minutes=5, seconds=1))
    verified = await verify(db, challenge_id, phone, code, now=start + timedelta(minutes=4))
    assert verified.destination == phone  # positive control: the same code in time works


async def test_code_for_another_address_is_refused(
    db: Database, owner_session: AsyncSession
) -> None:
    phone = random_phone()
    challenge_id = await ask(db, phone)
    code = await code_of(owner_session, challenge_id)
    for elsewhere in (random_phone(), "not a phone", "someone@example.kz"):
        with pytest.raises(CodeInvalid):
            await verify(db, challenge_id, elsewhere, code)
    with pytest.raises(CodeInvalid):
        await verify(db, 10**15, phone, code)  # no such challenge: the same error
    for forged in (0, -1, 2**63, 10**30):
        with pytest.raises(CodeInvalid):
            await verify(db, forged, phone, code)
    assert (await verify(db, challenge_id, phone, code)).destination == phone


async def test_every_failure_reads_the_same(db: Database, owner_session: AsyncSession) -> None:
    phone = random_phone()
    challenge_id = await ask(db, phone)
    code = await code_of(owner_session, challenge_id)
    messages = set()
    for cid, destination, typed in (
        (challenge_id, phone, other_code(code)),
        (challenge_id, random_phone(), code),
        (10**15, phone, code),
    ):
        with pytest.raises(CodeInvalid) as caught:
            await verify(db, cid, destination, typed)
        messages.add((caught.value.code, caught.value.status, caught.value.message))
    assert len(messages) == 1
    assert messages.pop()[:2] == ("validation", 422)


async def test_known_and_unknown_numbers_get_the_same_answer(
    db: Database, owner_session: AsyncSession
) -> None:
    known = await make_person(owner_session)
    unknown = random_phone()
    ip = random_ip()
    shapes = []
    for phone in (known.phone, unknown):
        challenge_id = await ask(db, phone, ip=ip)
        assert isinstance(challenge_id, int)
        sent = await sent_code(owner_session, challenge_id)
        row = (
            (
                await owner_session.execute(
                    text(
                        "SELECT channel, purpose, account_id, attempts, consumed_at, "
                        "expires_at - created_at AS ttl FROM otp_challenges WHERE id = :id"
                    ),
                    {"id": challenge_id},
                )
            )
            .mappings()
            .one()
        )
        shapes.append(
            (dict(row), sent["event"], sent["channel"], sent["account_id"], sorted(sent["payload"]))
        )
    assert shapes[0] == shapes[1]
    # and both sign in: the known number to its account, the unknown one to a new account
    results = []
    for phone in (known.phone, unknown):
        async with db.transaction() as session:
            challenge_id = await request_code(
                session, channel="sms", destination=phone, ip=random_ip(), secret=SECRET
            )
        code = await code_of(owner_session, challenge_id)
        async with db.transaction() as session:
            verified = await verify_code(
                session, challenge_id=challenge_id, destination=phone, code=code, secret=SECRET
            )
            account = await account_for_contact(session, verified)
            results.append((account.id, account.phone, account.phone_verified_at is not None))
    assert results[0] == (known.id, known.phone, True)
    assert results[1][0] != known.id and results[1][1:] == (unknown, True)


@pytest.mark.policy("2.3")
async def test_email_codes_and_case_insensitive_accounts(
    db: Database, owner_session: AsyncSession
) -> None:
    person = await make_person(owner_session)
    challenge_id = await ask(db, person.email.upper(), channel="email")
    sent = await sent_code(owner_session, challenge_id)
    assert (sent["address"], sent["channel"]) == (person.email, "email")
    async with db.transaction() as session:
        verified = await verify_code(
            session, challenge_id=challenge_id, destination=f" {person.email} ",
            code=str(sent["payload"]["code"]), secret=SECRET,
        )  # fmt: skip
        account = await account_for_contact(session, verified)
        assert account.id == person.id


async def test_throttled_per_destination(db: Database, owner_session: AsyncSession) -> None:
    phone = random_phone()
    start = datetime.now(UTC)
    for minute in range(3):
        await ask(db, phone, now=start + timedelta(minutes=minute))
    with pytest.raises(RateLimited):
        await ask(db, phone, now=start + timedelta(minutes=4))
    with pytest.raises(RateLimited):  # however it is written, and from another network
        await ask(db, "8" + phone[2:], now=start + timedelta(minutes=5), ip=random_ip())
    # after the 15-minute window, the next code goes out
    await ask(db, phone, now=start + timedelta(minutes=15, seconds=1))


async def test_throttled_per_ip(db: Database) -> None:
    ip = random_ip()
    start = datetime.now(UTC)
    for i in range(10):
        await ask(db, random_phone(), ip=ip, now=start + timedelta(seconds=i))
    with pytest.raises(RateLimited):
        await ask(db, random_phone(), ip=ip, now=start + timedelta(minutes=1))
    await ask(db, random_phone(), ip=random_ip(), now=start + timedelta(minutes=1))
    await ask(db, random_phone(), ip=ip, now=start + timedelta(hours=1, seconds=10))


async def test_ipv6_is_throttled_per_64(db: Database) -> None:
    prefix = f"2001:db8:{random_ip().split('.', 1)[1].replace('.', ':')}"
    start = datetime.now(UTC)
    for i in range(10):
        await ask(db, random_phone(), ip=f"{prefix}::{i + 1:x}", now=start)
    with pytest.raises(RateLimited):
        await ask(db, random_phone(), ip=f"{prefix}::ffff", now=start)


async def test_bad_address_asks_nothing(db: Database) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await ask(db, "+1 555 123 4567")
    assert set(caught.value.fields) == {"phone"}
    with pytest.raises(ValidationFailed) as caught:
        await ask(db, "not-an-email", channel="email")
    assert set(caught.value.fields) == {"email"}
    with pytest.raises(ValidationFailed) as caught:
        await ask(db, random_phone(), channel="pigeon")
    assert set(caught.value.fields) == {"channel"}


# ---------------------------------------------------------------- change of contact (8.2)


@pytest.mark.policy("8.2")
async def test_changing_the_phone_needs_a_code_to_the_new_number(
    db: Database, owner_session: AsyncSession
) -> None:
    person = await make_person(owner_session)
    new_phone = random_phone()
    async with db.transaction(account_id=person.id) as session:
        challenge_id = await request_contact_change(
            session, account_id=person.id, channel="sms", destination=new_phone,
            ip=random_ip(), secret=SECRET,
        )  # fmt: skip
    code = await code_of(owner_session, challenge_id)
    # a change code does not sign anybody in
    with pytest.raises(CodeInvalid):
        await verify(db, challenge_id, new_phone, code)
    # nor does it change another account's phone
    stranger = await make_person(owner_session, first="Other")
    with pytest.raises(CodeInvalid):
        async with db.transaction(account_id=stranger.id) as session:
            await confirm_contact_change(
                session, account_id=stranger.id, channel="sms", challenge_id=challenge_id,
                destination=new_phone, code=code, secret=SECRET,
            )  # fmt: skip
    async with db.transaction(account_id=person.id) as session:
        account = await confirm_contact_change(
            session, account_id=person.id, channel="sms", challenge_id=challenge_id,
            destination=new_phone, code=code, secret=SECRET,
        )  # fmt: skip
        assert account.phone == new_phone and account.phone_verified_at is not None
    stored = await owner_session.scalar(
        text("SELECT phone FROM accounts WHERE id = :a"), {"a": person.id}
    )
    assert stored == new_phone


@pytest.mark.policy("8.2")
async def test_a_sign_in_code_does_not_change_a_phone(
    db: Database, owner_session: AsyncSession
) -> None:
    person = await make_person(owner_session)
    new_phone = random_phone()
    challenge_id = await ask(db, new_phone)
    code = await code_of(owner_session, challenge_id)
    with pytest.raises(CodeInvalid):
        async with db.transaction(account_id=person.id) as session:
            await confirm_contact_change(
                session, account_id=person.id, channel="sms", challenge_id=challenge_id,
                destination=new_phone, code=code, secret=SECRET,
            )  # fmt: skip


@pytest.mark.policy("8.2")
async def test_a_phone_or_email_of_another_account_is_refused_only_to_its_holder(
    db: Database, owner_session: AsyncSession
) -> None:
    """Asking to move to a taken address sends a code like any other (the asker learns
    nothing); only the code, which reaches the address's holder, leads to the refusal."""
    holder = await make_person(owner_session)
    person = await make_person(owner_session, first="Other")
    for channel, destination, field in (
        ("sms", "8" + holder.phone[2:], "phone"),
        ("email", holder.email.upper(), "email"),
    ):
        async with db.transaction(account_id=person.id) as session:
            challenge_id = await request_contact_change(
                session, account_id=person.id, channel=channel, destination=destination,
                ip=random_ip(), secret=SECRET,
            )  # fmt: skip
        code = await code_of(owner_session, challenge_id)
        with pytest.raises(ValidationFailed) as caught:
            async with db.transaction(account_id=person.id) as session:
                await confirm_contact_change(
                    session, account_id=person.id, channel=channel, challenge_id=challenge_id,
                    destination=destination, code=code, secret=SECRET,
                )  # fmt: skip
        assert set(caught.value.fields) == {field}
    contacts = await owner_session.execute(
        text("SELECT phone, email FROM accounts WHERE id = :a"), {"a": person.id}
    )
    assert contacts.one() == (person.phone, person.email)  # nothing changed


@pytest.mark.policy("8.2")
async def test_email_change(db: Database, owner_session: AsyncSession) -> None:
    person = await make_person(owner_session)
    new_email = f"new.{person.id}@example.kz"
    async with db.transaction(account_id=person.id) as session:
        challenge_id = await request_contact_change(
            session, account_id=person.id, channel="email", destination=new_email,
            ip=random_ip(), secret=SECRET,
        )  # fmt: skip
    code = await code_of(owner_session, challenge_id)
    async with db.transaction(account_id=person.id) as session:
        account = await confirm_contact_change(
            session, account_id=person.id, channel="email", challenge_id=challenge_id,
            destination=new_email.upper(), code=code, secret=SECRET,
        )  # fmt: skip
        assert account.email == new_email
