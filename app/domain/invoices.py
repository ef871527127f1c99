"""Invoices PoZapisi issues to businesses (issue 16; policy 4.3, 7.3), and credit notes.

An invoice is a financial document. Issued through the database's ``pz_invoice_issue`` (the app
may not insert one itself), it gets the next number of its year — ``2026-000123``, gap-free and
never twice, also under concurrency and rollbacks: the year's counter row is advanced in the
invoice's own transaction (see that function's file) — and a snapshot of the seller (PoZapisi,
from settings), the buyer (the business's billing details: legal name, BIN/IIN, address), the
lines, the VAT and the totals in tiyn. From then on only its status moves (open → paid or void,
paid → refunded); the trigger ``invoices_issued_immutable`` refuses anything else, for every
role. A correction is a credit note: a negative document with its own number in the same
sequence, naming the invoice it corrects. Invoices are kept five years (``retain_until``),
through account deletions (legal hold: ``erase_account_data`` never touches them), then the
retention job removes them (``pz_purge_financial``).

Prices are VAT-inclusive (the price on the landing is the price charged): with a VAT rate set
(``INVOICE_VAT_RATE``) the invoice shows the VAT inside the total; without one PoZapisi is not
a VAT payer and the invoice says so ("Без НДС").

Views: printable HTML (``billing/invoice.html``) and PDF in ru, kk and en. The PDF embeds
DejaVu Sans (vendored under ``app/domain/data`` with its licence; never a system font), so
Cyrillic and the Kazakh letters ә ғ қ ң ө ұ ү һ і print and can be searched and copied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from fpdf import FPDF
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import audit
from app.domain.audit import Actor
from app.domain.errors import NotFound, ValidationFailed
from app.domain.members import Member
from app.i18n import N_, fmt_date, gettext, localized, money, use_locale
from app.models import Business, Invoice
from app.settings import Settings, get_settings

FONT_DIR = Path(__file__).parent / "data"
KAZAKHSTAN = ZoneInfo("Asia/Almaty")  # the day an invoice is issued on (UTC+5)
CURRENCY = "KZT"

STATUS_LABELS = {
    "open": N_("Awaiting payment"),
    "paid": N_("Paid"),
    "void": N_("Cancelled by a credit note"),
    "refunded": N_("Refunded"),
    "credit": N_("Credit note"),
}


# --- BIN / IIN -----------------------------------------------------------------------------

_FIRST_WEIGHTS = tuple(range(1, 12))
_SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def validate_bin_iin(value: str) -> bool:
    """Whether ``value`` is a well-formed Kazakhstan IIN or BIN: 12 digits, the last a check
    digit. The first eleven digits are weighted 1..11 and summed modulo 11; a remainder of 10
    means weighing again with 3..11, 1, 2; a second 10 means no number may carry those eleven
    digits. Otherwise the remainder is the check digit."""
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return False
    digits = [int(c) for c in value]
    remainder = sum(d * w for d, w in zip(digits, _FIRST_WEIGHTS, strict=False)) % 11
    if remainder == 10:
        remainder = sum(d * w for d, w in zip(digits, _SECOND_WEIGHTS, strict=False)) % 11
        if remainder == 10:
            return False
    return remainder == digits[11]


# --- issuing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line of an invoice: its text in ru, kk and en, and VAT-inclusive amounts in tiyn
    (``amount_tiyn`` may be negative: a credit for unused days of a plan)."""

    description: dict[str, str]
    quantity: int
    unit_price_tiyn: int
    amount_tiyn: int


_ISSUE = text(
    "SELECT invoice_id, number, amount_tiyn, vat_tiyn, retain_until FROM pz_invoice_issue("
    ":business_id, :subscription_id, :kind, :credits, :issued_on, :due_on, :currency, "
    "CAST(:seller AS jsonb), CAST(:buyer AS jsonb), CAST(:lines AS jsonb), :vat_rate, "
    ":period_start, :period_end, :reason)"
)
_BUYER = text("SELECT legal_name, bin_iin, address FROM billing_profiles WHERE business_id = :b")


def today_in_kazakhstan(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(KAZAKHSTAN).date()


def seller_details(settings: Settings) -> dict[str, str]:
    """PoZapisi as the seller, as the invoice will name it for good."""
    return {
        "name": settings.seller_name,
        "bin": settings.seller_bin,
        "address": settings.seller_address,
        "bank": settings.seller_bank,
        "iban": settings.seller_iban,
        "bik": settings.seller_bik,
    }


async def _buyer(session: AsyncSession, business_id: int) -> dict[str, str]:
    """The business's billing details now (they become part of the invoice): its legal name,
    BIN/IIN and address; a business that has entered none is named by its name."""
    profile = (await session.execute(_BUYER, {"b": business_id})).first()
    name = await session.scalar(select(Business.name).where(Business.id == business_id))
    if name is None:
        raise NotFound()
    if profile is None:
        return {"name": name, "bin_iin": "", "address": ""}
    return {
        "name": profile.legal_name or name,
        "bin_iin": profile.bin_iin or "",
        "address": profile.address or "",
    }


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def _issue(
    session: AsyncSession,
    *,
    business_id: int,
    subscription_id: int | None,
    kind: str,
    credits: int | None,
    lines: list[InvoiceLine],
    period_start: date | None,
    period_end: date | None,
    reason: str | None,
    buyer: dict[str, str] | None,
    seller: dict[str, str] | None,
    vat_rate: Decimal | None,
    actor: Actor,
    now: datetime | None,
) -> Invoice:
    settings = get_settings()
    issued_on = today_in_kazakhstan(now)
    due_on = issued_on + timedelta(days=settings.invoice_due_days)
    seller = seller if seller is not None else seller_details(settings)
    buyer = buyer if buyer is not None else await _buyer(session, business_id)
    row = (
        await session.execute(
            _ISSUE,
            {
                "business_id": business_id, "subscription_id": subscription_id, "kind": kind,
                "credits": credits, "issued_on": issued_on, "due_on": due_on,
                "currency": CURRENCY, "seller": _json(seller), "buyer": _json(buyer),
                "lines": _json([asdict(line) for line in lines]), "vat_rate": vat_rate,
                "period_start": period_start, "period_end": period_end, "reason": reason,
            },
        )
    ).one()  # fmt: skip
    await audit.record(
        session,
        actor=actor,
        action="invoice.issued" if kind == "invoice" else "invoice.credit_note",
        entity="invoice",
        entity_id=row.invoice_id,
        business_id=business_id,
        after={
            "number": row.number, "amount_tiyn": row.amount_tiyn, "vat_tiyn": row.vat_tiyn,
            "currency": CURRENCY, "credits_invoice_id": credits,
        },
    )  # fmt: skip
    # built here rather than read back: the worker role (renewals) may issue but not read
    return Invoice(
        id=row.invoice_id, business_id=business_id, subscription_id=subscription_id,
        number=row.number, amount_tiyn=row.amount_tiyn, issued_on=issued_on, due_on=due_on,
        status="open" if kind == "invoice" else "credit", kind=kind, credits_invoice_id=credits,
        currency=CURRENCY, seller=seller, buyer=buyer,
        lines=[asdict(line) for line in lines], vat_rate=vat_rate,
        subtotal_tiyn=row.amount_tiyn - row.vat_tiyn, vat_tiyn=row.vat_tiyn,
        period_start=period_start, period_end=period_end, reason=reason,
        retain_until=row.retain_until,
    )  # fmt: skip


def _check_lines(lines: list[InvoiceLine]) -> None:
    if not lines:
        raise ValidationFailed(gettext(N_("An invoice needs at least one line.")))
    for line in lines:
        if not all(line.description.get(lang) for lang in ("ru", "kk", "en")):
            raise ValueError("an invoice line needs its text in ru, kk and en")


async def issue_for_subscription(
    session: AsyncSession,
    *,
    business_id: int,
    subscription_id: int | None,
    lines: list[InvoiceLine],
    period_start: date | None,
    period_end: date | None,
    actor: Actor,
    now: datetime | None = None,
) -> Invoice:
    """Issue an invoice (status ``open``) in the caller's transaction, which acts for the
    business. Holds the year's number until that transaction ends: keep it short after this."""
    _check_lines(lines)
    if sum(line.amount_tiyn for line in lines) <= 0:
        raise ValidationFailed(gettext(N_("An invoice's total must be above zero.")))
    return await _issue(
        session, business_id=business_id, subscription_id=subscription_id, kind="invoice",
        credits=None, lines=lines, period_start=period_start, period_end=period_end,
        reason=None, buyer=None, seller=None, vat_rate=get_settings().invoice_vat_rate,
        actor=actor, now=now,
    )  # fmt: skip


async def issue_credit_note(
    session: AsyncSession,
    *,
    business_id: int,
    invoice_id: int,
    reason: str,
    amount_tiyn: int | None = None,
    actor: Actor,
    now: datetime | None = None,
) -> Invoice:
    """Correct an issued invoice with a credit note: a negative document in the same number
    sequence naming it, for ``amount_tiyn`` (the whole invoice when None), with the original's
    seller, buyer and VAT rate. An open invoice credited in full is void (nothing is due); a
    paid one stays paid — the money goes back through a refund."""
    original = await session.scalar(
        select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.business_id == business_id)
        .with_for_update()
    )
    if original is None or original.kind != "invoice":
        raise NotFound()
    credited = -(
        await session.scalar(
            select(func.coalesce(func.sum(Invoice.amount_tiyn), 0)).where(
                Invoice.credits_invoice_id == original.id
            )
        )
        or 0
    )
    left = original.amount_tiyn - credited
    amount = left if amount_tiyn is None else amount_tiyn
    if not reason.strip():
        raise ValidationFailed(fields={"reason": gettext(N_("Say why the invoice is corrected."))})
    if amount <= 0 or amount > left:
        raise ValidationFailed(
            fields={"amount": gettext(N_("A credit note cannot exceed what is left to credit."))}
        )
    line = InvoiceLine(
        description={
            lang: _in(lang, N_("Correction of invoice No. %(number)s"))
            % {"number": original.number}
            for lang in ("ru", "kk", "en")
        },
        quantity=1,
        unit_price_tiyn=-amount,
        amount_tiyn=-amount,
    )
    note = await _issue(
        session, business_id=business_id, subscription_id=original.subscription_id,
        kind="credit_note", credits=original.id, lines=[line], period_start=original.period_start,
        period_end=original.period_end, reason=reason.strip(), buyer=original.buyer,
        seller=original.seller, vat_rate=original.vat_rate, actor=actor, now=now,
    )  # fmt: skip
    if original.status == "open" and amount == left:
        original.status = "void"
        await session.flush()
    return note


async def void_open(session: AsyncSession, invoice_id: int, *, actor: Actor) -> None:
    """An open, unpaid invoice of the transaction's business that is no longer wanted (an
    owner replaced the plan change it billed): credited in full by a credit note, so it becomes
    void with a document saying why. A paid invoice is refused; a void one is left as it is."""
    invoice = await session.scalar(select(Invoice).where(Invoice.id == invoice_id))
    if invoice is None or invoice.kind != "invoice":
        raise NotFound()
    if invoice.status == "void":
        return
    if invoice.status != "open":
        raise ValidationFailed(gettext(N_("A paid invoice cannot be cancelled.")))
    await issue_credit_note(
        session, business_id=invoice.business_id, invoice_id=invoice.id,
        reason=N_("Replaced by a new order"), actor=actor,  # translated when shown
    )  # fmt: skip


def _in(lang: str, message: str) -> str:
    with use_locale(lang):
        return gettext(message)


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    id: int
    number: str
    kind: str  # invoice, credit_note
    issued_on: date
    due_on: date
    amount_tiyn: int
    currency: str
    status: str
    paid_tiyn: int
    refunded_tiyn: int

    @property
    def status_label(self) -> str:
        return gettext(STATUS_LABELS.get(self.status, self.status))


_SETTLED = text(
    "SELECT invoice_id, "
    "coalesce(sum(amount_tiyn) FILTER (WHERE kind = 'payment'), 0) AS paid, "
    "coalesce(sum(amount_tiyn) FILTER (WHERE kind = 'refund'), 0) AS refunded "
    "FROM payments WHERE business_id = :b AND status = 'completed' AND flag IS NULL "
    "GROUP BY invoice_id"
)


async def list_for_business(session: AsyncSession, business_id: int) -> list[InvoiceRow]:
    """The business's invoices and credit notes, newest first, with what was paid and
    refunded on each (accepted payments only)."""
    settled = {r.invoice_id: r for r in await session.execute(_SETTLED, {"b": business_id})}
    rows = await session.scalars(
        select(Invoice).where(Invoice.business_id == business_id).order_by(Invoice.id.desc())
    )
    result = []
    for invoice in rows:
        money_in = settled.get(invoice.id)
        result.append(
            InvoiceRow(
                id=invoice.id, number=invoice.number, kind=invoice.kind,
                issued_on=invoice.issued_on, due_on=invoice.due_on,
                amount_tiyn=invoice.amount_tiyn, currency=invoice.currency, status=invoice.status,
                paid_tiyn=money_in.paid if money_in else 0,
                refunded_tiyn=money_in.refunded if money_in else 0,
            )
        )  # fmt: skip
    return result


@dataclass(frozen=True, slots=True)
class DocumentLine:
    description: str
    quantity: int
    unit_price_tiyn: int
    amount_tiyn: int


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """An invoice as it is shown and printed, in one language."""

    id: int
    number: str
    kind: str
    status: str
    issued_on: date
    due_on: date
    period_start: date | None
    period_end: date | None
    seller: dict[str, str]
    buyer: dict[str, str]
    lines: list[DocumentLine]
    vat_rate: Decimal | None
    subtotal_tiyn: int
    vat_tiyn: int
    amount_tiyn: int
    currency: str
    credits_number: str | None
    reason: str | None
    paid_tiyn: int
    refunded_tiyn: int
    locale: str

    @property
    def status_label(self) -> str:
        return gettext(STATUS_LABELS.get(self.status, self.status))

    @property
    def payable(self) -> bool:
        return self.kind == "invoice" and self.status == "open"


async def _document(
    session: AsyncSession, business_id: int, invoice_id: int, locale: str
) -> InvoiceDocument:
    invoice = await session.scalar(
        select(Invoice).where(Invoice.id == invoice_id, Invoice.business_id == business_id)
    )
    if invoice is None:
        raise NotFound()
    credits_number = None
    if invoice.credits_invoice_id is not None:
        credits_number = await session.scalar(
            select(Invoice.number).where(Invoice.id == invoice.credits_invoice_id)
        )
    settled = {r.invoice_id: r for r in await session.execute(_SETTLED, {"b": business_id})}
    money_in = settled.get(invoice.id)
    return InvoiceDocument(
        id=invoice.id, number=invoice.number, kind=invoice.kind, status=invoice.status,
        issued_on=invoice.issued_on, due_on=invoice.due_on, period_start=invoice.period_start,
        period_end=invoice.period_end, seller=invoice.seller, buyer=invoice.buyer,
        lines=[
            DocumentLine(
                description=localized(line["description"], locale),
                quantity=line["quantity"], unit_price_tiyn=line["unit_price_tiyn"],
                amount_tiyn=line["amount_tiyn"],
            )
            for line in invoice.lines
        ],
        vat_rate=invoice.vat_rate, subtotal_tiyn=invoice.subtotal_tiyn,
        vat_tiyn=invoice.vat_tiyn, amount_tiyn=invoice.amount_tiyn, currency=invoice.currency,
        credits_number=credits_number, reason=invoice.reason,
        paid_tiyn=money_in.paid if money_in else 0,
        refunded_tiyn=money_in.refunded if money_in else 0, locale=locale,
    )  # fmt: skip


async def invoice_document(
    db: Database, by: Member, invoice_id: int, locale: str
) -> InvoiceDocument:
    """One of the business's invoices for the owner to read; another business's is
    ``NotFound``."""
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        return await _document(session, by.business_id, invoice_id, locale)


async def invoice_pdf(db: Database, by: Member, invoice_id: int, locale: str) -> tuple[str, bytes]:
    """The invoice as a PDF in ``locale``: its file name and bytes."""
    document = await invoice_document(db, by, invoice_id, locale)
    return f"invoice-{document.number}.pdf", render_pdf(document)


# --- printing ------------------------------------------------------------------------------


def title_of(document: InvoiceDocument) -> str:
    if document.kind == "credit_note":
        return gettext(N_("Credit note No. %(number)s of %(date)s")) % {
            "number": document.number, "date": fmt_date(document.issued_on, "long"),
        }  # fmt: skip
    return gettext(N_("Invoice No. %(number)s of %(date)s")) % {
        "number": document.number, "date": fmt_date(document.issued_on, "long"),
    }  # fmt: skip


def vat_line(document: InvoiceDocument) -> str:
    if document.vat_rate is None:
        return gettext(N_("Without VAT"))
    rate = f"{document.vat_rate.normalize():f}"
    return gettext(N_("Including VAT %(rate)s%%: %(amount)s")) % {
        "rate": rate, "amount": money(document.vat_tiyn, document.currency),
    }  # fmt: skip


def render_pdf(document: InvoiceDocument) -> bytes:
    """The invoice on an A4 page, in the document's language, with DejaVu Sans embedded."""
    with use_locale(document.locale):
        pdf = FPDF(format="A4")
        pdf.set_creator("PoZapisi")
        pdf.set_title(title_of(document))
        pdf.set_lang(document.locale)
        pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
        pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        pdf.set_auto_page_break(auto=True, margin=15)
        pdf.add_page()
        width = pdf.epw
        pdf.set_font("DejaVu", "B", 14)
        pdf.multi_cell(width, 8, title_of(document), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9)
        if document.credits_number:
            pdf.multi_cell(
                width, 5,
                gettext(N_("Corrects invoice No. %(number)s")) % {"number": document.credits_number},
                new_x="LMARGIN", new_y="NEXT",
            )  # fmt: skip
            if document.reason:
                pdf.multi_cell(width, 5, gettext(N_("Reason: %(reason)s")) % {"reason": gettext(document.reason)},
                               new_x="LMARGIN", new_y="NEXT")  # fmt: skip
        pdf.ln(3)
        for heading, party, id_label in (
            (N_("Seller"), document.seller, N_("BIN")),
            (N_("Buyer"), document.buyer, N_("BIN/IIN")),
        ):
            pdf.set_font("DejaVu", "B", 10)
            pdf.cell(width, 6, gettext(heading), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("DejaVu", "", 9)
            details = [party.get("name", "")]
            number = party.get("bin") or party.get("bin_iin")
            if number:
                details.append(f"{gettext(id_label)}: {number}")
            if party.get("address"):
                details.append(party["address"])
            if party.get("bank"):
                details.append(f"{gettext(N_('Bank'))}: {party['bank']}")
            if party.get("iban"):
                details.append(f"IBAN: {party['iban']}")
            if party.get("bik"):
                details.append(f"{gettext(N_('BIC'))}: {party['bik']}")
            for detail in details:
                pdf.multi_cell(width, 5, detail, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        if document.period_start and document.period_end:
            pdf.multi_cell(
                width, 5,
                gettext(N_("Period: %(start)s – %(end)s")) % {
                    "start": fmt_date(document.period_start), "end": fmt_date(document.period_end),
                },
                new_x="LMARGIN", new_y="NEXT",
            )  # fmt: skip
        pdf.multi_cell(
            width, 5, gettext(N_("Due by %(date)s")) % {"date": fmt_date(document.due_on)},
            new_x="LMARGIN", new_y="NEXT",
        )  # fmt: skip
        pdf.ln(3)
        columns = (width * 0.52, width * 0.1, width * 0.19, width * 0.19)
        pdf.set_font("DejaVu", "B", 9)
        for label, size, align in zip(
            (N_("Description"), N_("Qty"), N_("Price"), N_("Amount")), columns,
            ("L", "R", "R", "R"), strict=True,
        ):  # fmt: skip
            pdf.cell(size, 7, gettext(label), border="B", align=align)
        pdf.ln()
        pdf.set_font("DejaVu", "", 9)
        for line in document.lines:
            top = pdf.get_y()
            pdf.multi_cell(columns[0], 6, line.description, new_x="RIGHT", new_y="TOP")
            bottom = pdf.get_y()
            pdf.set_xy(pdf.l_margin + columns[0], top)
            pdf.cell(columns[1], 6, str(line.quantity), align="R")
            pdf.cell(columns[2], 6, money(line.unit_price_tiyn, document.currency), align="R")
            pdf.cell(columns[3], 6, money(line.amount_tiyn, document.currency), align="R")
            pdf.set_xy(pdf.l_margin, max(bottom, top + 6))
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", 10)
        total = gettext(N_("Total: %(amount)s")) % {
            "amount": money(document.amount_tiyn, document.currency)
        }
        pdf.cell(width, 6, total, align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9)
        pdf.cell(width, 5, vat_line(document), align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.cell(width, 5, f"{gettext(N_('Status'))}: {document.status_label}",
                 new_x="LMARGIN", new_y="NEXT")  # fmt: skip
        return bytes(pdf.output())
