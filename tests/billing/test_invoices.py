"""Invoices (issue 16 item 3; policy 4.3, 7.3): gap-free numbers per year under concurrency and
rollbacks, the BIN/IIN check digit, VAT and totals, immutability once issued, credit notes,
the printable page and the PDF with Kazakh letters, the owner only, five years' keeping through
an account deletion, then the retention job."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.session import Database
from app.db.urls import to_sqlalchemy
from app.domain import audit, invoices
from app.domain.errors import NotFound, ValidationFailed
from app.domain.invoices import InvoiceLine, validate_bin_iin
from app.domain.members import Member
from app.domain.privacy import erase_account
from app.models import Invoice
from app.settings import Settings
from tests.conftest import make_settings
from tests.factories import BusinessFixture, new_business
from tests.support.dashboard import add_member, sign_in_as
from workers import retention

PRO = InvoiceLine(
    description={"ru": "Тариф Pro, месяц", "kk": "Pro тарифі, ай", "en": "Pro plan, a month"},
    quantity=1,
    unit_price_tiyn=499_000,
    amount_tiyn=499_000,
)
KAZAKH_LETTERS = "әғқңөұүһі"


def owner_of(business: BusinessFixture) -> Member:
    assert business.owner_account_id is not None
    return Member(business.owner_account_id, business.id, "owner", None)


async def issue(
    db: Database, business: BusinessFixture, lines: list[InvoiceLine] | None = None
) -> Invoice:
    async with db.transaction(business_id=business.id) as session:
        return await invoices.issue_for_subscription(
            session, business_id=business.id, subscription_id=None, lines=lines or [PRO],
            period_start=date(2026, 12, 1), period_end=date(2027, 1, 1), actor=audit.SYSTEM,
        )  # fmt: skip


def sequence_number(number: str) -> tuple[int, int]:
    year, seq = number.split("-")
    return int(year), int(seq)


# --- BIN / IIN -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        # 9·1+0·2+0·3+1·4+0·5+1·6+3·7+0·8+0·9+0·10+1·11 = 51; 51 mod 11 = 7 → check digit 7
        ("900101300017", True),
        ("900101300018", False),
        # 8·1+8·2+0+5·4+0+2·6+4·7+0+0+1·10+2·11 = 116; 116 mod 11 = 6 → 6
        ("880502400126", True),
        # first pass: 1+4+9+16+25+36+49+64+81+0+11 = 296; 296 mod 11 = 10 → weigh again with
        # 3..11,1,2: 3+8+15+24+35+48+63+80+99+0+2 = 377; 377 mod 11 = 3 → 3
        ("123456789013", True),
        ("123456789012", False),
        # 9+4+6+21+80 = 120 → 10; again: 27+6+8+27+8 = 76 → 10: no check digit is valid
        ("900101300800", False),
        ("900101300801", False),
        ("900101300809", False),
        ("90010130001", False),  # 11 digits
        ("9001013000171", False),  # 13
        ("90010130001a", False),
        ("９００１０１３０００１７", False),  # full-width digits are not digits of a BIN
        ("", False),
    ],
)
def test_bin_iin_check_digit(value: str, valid: bool) -> None:
    assert validate_bin_iin(value) is valid


# --- numbering -----------------------------------------------------------------------------


async def test_fifty_concurrent_issuances_get_fifty_consecutive_numbers(
    db: Database, owner_session: AsyncSession
) -> None:
    businesses = [await new_business(owner_session, masters=1) for _ in range(5)]

    issued = await asyncio.gather(*(issue(db, businesses[i % 5]) for i in range(50)))

    numbers = [invoice.number for invoice in issued]
    assert len(set(numbers)) == 50  # no duplicate
    years = {sequence_number(n)[0] for n in numbers}
    assert len(years) == 1
    seqs = sorted(sequence_number(n)[1] for n in numbers)
    assert seqs == list(range(seqs[0], seqs[0] + 50))  # no gap
    # and the table agrees with what each call returned
    stored = await owner_session.execute(
        text("SELECT number FROM invoices WHERE number = ANY(:n)"), {"n": numbers}
    )
    assert sorted(stored.scalars()) == sorted(numbers)


async def test_a_rolled_back_issuance_leaves_no_gap(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session, masters=1)
    first = await issue(db, business)

    class Abandon(Exception):
        pass

    lost: list[str] = []

    async def issue_then_fail() -> None:
        async with db.transaction(business_id=business.id) as session:
            invoice = await invoices.issue_for_subscription(
                session, business_id=business.id, subscription_id=None, lines=[PRO],
                period_start=None, period_end=None, actor=audit.SYSTEM,
            )  # fmt: skip
            lost.append(invoice.number)
            raise Abandon

    with pytest.raises(Abandon):
        await issue_then_fail()
    assert sequence_number(lost[0])[1] == sequence_number(first.number)[1] + 1

    after = await issue(db, business)
    assert sequence_number(after.number)[1] == sequence_number(first.number)[1] + 1
    assert not await owner_session.scalar(
        text("SELECT count(*) FROM invoices WHERE number = :n AND id <> :id"),
        {"n": after.number, "id": after.id},
    )


async def test_the_app_cannot_number_or_insert_invoices_itself(database: DatabaseUrls) -> None:
    engine = create_async_engine(to_sqlalchemy(database.app), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(text("UPDATE invoice_counters SET last_number = 1"))
    finally:
        await engine.dispose()


# --- the document --------------------------------------------------------------------------


async def test_totals_without_vat_and_with_it(
    db: Database, owner_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    business = await new_business(owner_session, masters=1)
    credit = InvoiceLine(
        description={"ru": "Зачёт", "kk": "Есепке алу", "en": "Credit"},
        quantity=1, unit_price_tiyn=-100_000, amount_tiyn=-100_000,
    )  # fmt: skip
    plain = await issue(db, business, [PRO, credit])
    # 4 990 ₸ − 1 000 ₸ = 3 990 ₸; PoZapisi is not a VAT payer by default: no VAT
    assert (plain.amount_tiyn, plain.vat_tiyn, plain.subtotal_tiyn) == (399_000, 0, 399_000)
    assert plain.vat_rate is None

    monkeypatch.setattr(invoices, "get_settings", lambda: make_settings(INVOICE_VAT_RATE="12"))
    taxed = await issue(db, business)
    # 12 % inside 4 990 ₸: 499 000 × 12 / 112 = 53 464.29 → 53 464 tiyn; 499 000 − 53 464 = 445 536
    assert (taxed.amount_tiyn, taxed.vat_tiyn, taxed.subtotal_tiyn) == (499_000, 53_464, 445_536)
    row = (await owner_session.execute(
        text("SELECT amount_tiyn, vat_tiyn, subtotal_tiyn, vat_rate, seller, lines "
             "FROM invoices WHERE id = :i"), {"i": taxed.id})).one()  # fmt: skip
    assert (row.amount_tiyn, row.vat_tiyn, row.subtotal_tiyn) == (499_000, 53_464, 445_536)
    assert row.vat_rate == 12 and row.seller["name"] and row.lines[0]["amount_tiyn"] == 499_000

    with pytest.raises(ValidationFailed):
        await issue(db, business, [credit])  # a total of zero or less is no invoice


async def test_an_issued_invoice_never_changes_but_its_status(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session, masters=1)
    invoice = await issue(db, business)
    for change in (
        "amount_tiyn = 1", "number = '1999-000001'", "buyer = '{}'::jsonb",
        "lines = '[]'::jsonb", "issued_on = issued_on - 1", "retain_until = retain_until + 1",
    ):  # fmt: skip
        with pytest.raises(DBAPIError, match="cannot change"):
            async with owner_session.begin_nested():
                await owner_session.execute(
                    text(f"UPDATE invoices SET {change} WHERE id = :i"), {"i": invoice.id}
                )
    with pytest.raises(DBAPIError, match="kept until"):
        async with owner_session.begin_nested():
            await owner_session.execute(
                text("DELETE FROM invoices WHERE id = :i"), {"i": invoice.id}
            )
    # the status moves forward only
    with pytest.raises(DBAPIError, match="cannot become"):
        async with owner_session.begin_nested():
            await owner_session.execute(
                text("UPDATE invoices SET status = 'refunded' WHERE id = :i"), {"i": invoice.id}
            )
    # and the app may touch nothing else
    async with db.transaction(business_id=business.id) as session:
        with pytest.raises(DBAPIError, match="permission denied"):
            await session.execute(
                text("UPDATE invoices SET amount_tiyn = 1 WHERE id = :i"), {"i": invoice.id}
            )


async def test_a_credit_note_corrects_an_invoice(db: Database, owner_session: AsyncSession) -> None:
    business = await new_business(owner_session, masters=1)
    other = await new_business(owner_session, masters=1)
    invoice = await issue(db, business)
    async with db.transaction(business_id=business.id) as session:
        part = await invoices.issue_credit_note(
            session, business_id=business.id, invoice_id=invoice.id, amount_tiyn=100_000,
            reason="Price agreed lower", actor=audit.SYSTEM,
        )  # fmt: skip
    assert part.kind == "credit_note" and part.amount_tiyn == -100_000
    assert part.credits_invoice_id == invoice.id and part.status == "credit"
    assert sequence_number(part.number)[0] == sequence_number(invoice.number)[0]
    assert part.number != invoice.number
    async with db.transaction(business_id=business.id) as session:
        with pytest.raises(ValidationFailed):  # only 3 990 ₸ is left to credit
            await invoices.issue_credit_note(
                session, business_id=business.id, invoice_id=invoice.id, amount_tiyn=400_000,
                reason="Too much", actor=audit.SYSTEM,
            )  # fmt: skip
    async with db.transaction(business_id=other.id) as session:
        with pytest.raises(NotFound):  # another business's invoice
            await invoices.issue_credit_note(
                session, business_id=other.id, invoice_id=invoice.id, reason="x",
                actor=audit.SYSTEM,
            )  # fmt: skip
    async with db.transaction(business_id=business.id) as session:
        await invoices.void_open(session, invoice.id, actor=audit.SYSTEM)
    rows = (await owner_session.execute(text(
        "SELECT kind, status, amount_tiyn FROM invoices WHERE id = :i OR credits_invoice_id = :i "
        "ORDER BY id"), {"i": invoice.id})).all()  # fmt: skip
    # the rest was credited by void_open: the invoice is void, nothing is due on it
    assert [tuple(r) for r in rows] == [
        ("invoice", "void", 499_000), ("credit_note", "credit", -100_000),
        ("credit_note", "credit", -399_000),
    ]  # fmt: skip
    entries = await owner_session.scalar(text(
        "SELECT count(*) FROM audit_log WHERE business_id = :b AND action = 'invoice.credit_note'"
    ), {"b": business.id})  # fmt: skip
    assert entries == 2


# --- pages and PDF -------------------------------------------------------------------------


@pytest.fixture
async def kazakh_business(db: Database, owner_session: AsyncSession) -> BusinessFixture:
    business = await new_business(owner_session, masters=1)
    await owner_session.execute(
        text("INSERT INTO billing_profiles (business_id, legal_name, bin_iin, address) "
             "VALUES (:b, :n, '880502400126', :a) ON CONFLICT (business_id) DO UPDATE "
             "SET legal_name = EXCLUDED.legal_name, bin_iin = EXCLUDED.bin_iin, "
             "address = EXCLUDED.address"),
        {"b": business.id, "n": f"ЖК «Әсем {KAZAKH_LETTERS}»",
         "a": "Қазақстан, Алматы, Абай даңғылы 1"},
    )  # fmt: skip
    await owner_session.commit()
    return business


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
async def test_the_pdf_carries_kazakh_letters_in_an_embedded_font(
    db: Database, owner_session: AsyncSession, client: httpx.AsyncClient, settings: Settings,
    kazakh_business: BusinessFixture, lang: str,
) -> None:  # fmt: skip
    invoice = await issue(db, kazakh_business)
    assert kazakh_business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, kazakh_business.owner_account_id,
                     business_id=kazakh_business.id)  # fmt: skip

    response = await client.get(f"/dashboard/billing/invoices/{invoice.id}/pdf?lang={lang}")

    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    extracted = "".join(page.extract_text() for page in reader.pages)
    assert "Қазақстан" in extracted
    for letter in KAZAKH_LETTERS:
        assert letter in extracted, letter
    assert invoice.number in extracted and "880502400126" in extracted
    fonts = {
        str(font["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].get_object().values()
    }
    assert any("DejaVuSans" in name for name in fonts)
    assert b"/FontFile2" in response.content  # the font travels inside the file
    title = {"kk": "төлем шоты", "ru": "Счёт на оплату", "en": "Invoice No."}[lang]
    assert title in extracted


async def test_the_invoice_page_is_the_owners_alone(
    db: Database, owner_session: AsyncSession, client: httpx.AsyncClient, settings: Settings,
    kazakh_business: BusinessFixture,
) -> None:  # fmt: skip
    invoice = await issue(db, kazakh_business)
    other = await new_business(owner_session, masters=1)
    foreign = await issue(db, other)
    assert kazakh_business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, kazakh_business.owner_account_id,
                     business_id=kazakh_business.id)  # fmt: skip
    page = await client.get(f"/dashboard/billing/invoices/{invoice.id}?lang=kk")
    assert page.status_code == 200
    assert invoice.number in page.text and "Қазақстан" in page.text
    assert "880502400126" in page.text
    for path in (f"/dashboard/billing/invoices/{foreign.id}",
                 f"/dashboard/billing/invoices/{foreign.id}/pdf"):  # fmt: skip
        assert (await client.get(path)).status_code == 404
    assert (await client.get("/dashboard/billing/invoices/999999999999/pdf")).status_code == 404

    admin = await add_member(owner_session, kazakh_business.id, "admin")
    # the same browser, now signed in as an admin of the business
    await sign_in_as(client, owner_session, settings, admin.account_id,
                     business_id=kazakh_business.id)  # fmt: skip
    for path in (f"/dashboard/billing/invoices/{invoice.id}",
                 f"/dashboard/billing/invoices/{invoice.id}/pdf"):  # fmt: skip
        assert (await client.get(path)).status_code == 403


# --- keeping -------------------------------------------------------------------------------


@pytest.fixture
async def worker_engine(database: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(to_sqlalchemy(database.worker), poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.mark.policy("7.3")
async def test_invoices_are_kept_five_years_then_purged(
    db: Database, owner_session: AsyncSession, worker_engine: AsyncEngine
) -> None:
    business = await new_business(owner_session, masters=1)
    today: date = await owner_session.scalar(text("SELECT current_date"))
    fresh = await issue(db, business)
    assert fresh.retain_until >= today + timedelta(days=1826)

    async def old_invoice(issued: date, number: str) -> int:
        # as they would have been issued then (the owner arranges the past; the app cannot)
        return int(await owner_session.scalar(text(
            "INSERT INTO invoices (business_id, number, amount_tiyn, issued_on, due_on, status, "
            "retain_until, subtotal_tiyn, lines) VALUES (:b, :n, 499000, :i, :i, 'open', "
            "greatest((CAST(:i AS date) + interval '5 years')::date, CAST(:i AS date) + 1826), "
            "499000, '[]') RETURNING id"),
            {"b": business.id, "n": number, "i": issued}))  # fmt: skip

    tag = business.slug[-6:]
    gone = await old_invoice(today - timedelta(days=6 * 366), f"P-{tag}-6y")
    kept = await old_invoice(today - timedelta(days=4 * 365), f"P-{tag}-4y")
    note = await owner_session.scalar(text(
        "INSERT INTO invoices (business_id, number, amount_tiyn, issued_on, due_on, status, "
        "retain_until, kind, credits_invoice_id, subtotal_tiyn, lines) VALUES (:b, :n, -1000, "
        ":i, :i, 'credit', :keep, 'credit_note', :c, -1000, '[]') RETURNING id"),
        {"b": business.id, "n": f"P-{tag}-cn", "i": today - timedelta(days=6 * 366),
         "keep": today - timedelta(days=6 * 366) + timedelta(days=1827), "c": gone})  # fmt: skip
    await owner_session.commit()

    await retention.enforce(worker_engine, datetime.combine(today, time(3), UTC))

    left = set((await owner_session.execute(
        text("SELECT id FROM invoices WHERE business_id = :b"), {"b": business.id})).scalars())  # fmt: skip
    assert gone not in left and note not in left  # past five years, the credit note with it
    assert {fresh.id, kept} <= left  # younger: never
    # a clock told it is twenty years later still takes nothing the database's own date keeps
    await retention.enforce(
        worker_engine, datetime.combine(today, time(3), UTC) + timedelta(days=7300)
    )
    left = set((await owner_session.execute(
        text("SELECT id FROM invoices WHERE business_id = :b"), {"b": business.id})).scalars())  # fmt: skip
    assert {fresh.id, kept} <= left


@pytest.mark.policy("7.3")
async def test_an_account_deletion_keeps_the_business_invoices(
    db: Database, owner_session: AsyncSession, kazakh_business: BusinessFixture
) -> None:
    admin = await add_member(owner_session, kazakh_business.id, "admin")
    invoice = await issue(db, kazakh_business)
    async with db.transaction(
        business_id=kazakh_business.id, account_id=admin.account_id
    ) as session:
        await invoices.issue_credit_note(
            session, business_id=kazakh_business.id, invoice_id=invoice.id, amount_tiyn=1000,
            reason="Rounding", actor=audit.Actor(kind="staff", account_id=admin.account_id),
        )  # fmt: skip
    before = (await owner_session.execute(text(
        "SELECT id, number, amount_tiyn, buyer, status FROM invoices WHERE business_id = :b "
        "ORDER BY id"), {"b": kazakh_business.id})).all()  # fmt: skip
    await owner_session.commit()

    async with db.transaction(account_id=admin.account_id) as session:
        await erase_account(session, admin.account_id, now=datetime.now(UTC))

    await owner_session.commit()
    after = (await owner_session.execute(text(
        "SELECT id, number, amount_tiyn, buyer, status FROM invoices WHERE business_id = :b "
        "ORDER BY id"), {"b": kazakh_business.id})).all()  # fmt: skip
    assert after == before and len(after) == 2
    person = (await owner_session.execute(
        text("SELECT name, email, deleted_at FROM accounts WHERE id = :a"),
        {"a": admin.account_id})).one()  # fmt: skip
    assert person.name is None and person.email is None and person.deleted_at is not None
    assert not await owner_session.scalar(
        text("SELECT count(*) FROM memberships WHERE account_id = :a"), {"a": admin.account_id}
    )
