"""Message texts: every event renders in ru, kk and en, in the business's time zone, safely."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from workers.billing import BILLING_EVENTS, billing_fields
from workers.context import (
    BookingInfo,
    BusinessInfo,
    booking_fields,
    business_fields,
    policy_fields,
)
from workers.notification_texts import ACCOUNT_LINK_EVENTS, EVENTS, Renderer, UnknownEvent

CYRILLIC = re.compile(r"[А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі]")
KAZAKH = set("әғқңөұүһі")
SMS_PART = 70  # characters in one UCS-2 (Cyrillic) SMS part

BUSINESS = BusinessInfo(
    id=1, slug="ak-bota", name="Ақ Бота", timezone="Asia/Almaty", address="Абая 10",
    notify_telegram=True, notify_sms=True, notify_email=True,
)  # fmt: skip
BOOKING = BookingInfo(
    id=7, business_id=1, public_code="K7M2QX9PTA", status="confirmed",
    start_at=datetime(2026, 12, 1, 5, 0, tzinfo=UTC),  # 10:00 in Almaty (UTC+5)
    service_name={"ru": "Стрижка", "kk": "Шаш қию", "en": "Haircut"}, price_tiyn=500000,
    cancel_reason="Мастер заболел", cancelled_by="business", staff_name="Дана",
    client_name="Айгерим", previous_start=datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
)  # fmt: skip


def context_for(event: str, locale: str) -> dict[str, Any]:
    """What the relay passes for ``event`` (see workers.relay.Deliverer._context)."""
    fields: dict[str, Any] = {**business_fields(BUSINESS)}
    if event == "otp.code":
        return {**fields, "code": "482913", "minutes": 5}
    if event in ACCOUNT_LINK_EVENTS:
        return {**fields, "link": "https://app.pozapisi.test/dashboard/verify/abc"}
    if event == "policy.notice":
        payload = {"version": "2027-01-01", "effective_at": "2027-01-01",
                   "summary": {"ru": "Новый срок хранения.", "kk": "Жаңа сақтау мерзімі.",
                               "en": "A new retention period."}}  # fmt: skip
        return {**fields, **policy_fields(payload, locale, "https://pozapisi.kz")}
    if event == "data_request.answered":  # the payload, as app.domain.operators queues it
        return {**fields, "request_id": 12, "kind": "access", "answer": "Ваша копия во вложении."}
    if event == "ops.requests_due":  # as pz_ops_requests_due queues it
        due = [{"id": 12, "kind": "access", "due_on": "2027-03-17", "overdue": False},
               {"id": 9, "kind": "delete", "due_on": "2027-03-12", "overdue": True}]  # fmt: skip
        return {**fields, "requests": due, "today": "2027-03-15"}
    if event in BILLING_EVENTS:  # as app.domain.subscriptions queues them for the owner
        payload = {"plan": {"ru": "Pro", "kk": "Pro", "en": "Pro"}, "amount_tiyn": 499000,
                   "grace_until": "2027-04-08", "invoice_number": "2027-000042"}  # fmt: skip
        return {**fields, **billing_fields(payload, locale)}
    fields.update(booking_fields(BOOKING, BUSINESS, locale, "—"))
    fields.update(excerpt="Здравствуйте! Можно перенести?")
    return fields


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(contact_email="info@pozapisi.kz")


@pytest.mark.parametrize("locale", ["ru", "kk", "en"])
@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_event_renders_in_every_language(renderer: Renderer, event: str, locale: str) -> None:
    message = renderer.render(
        event, locale, context_for(event, locale), button_url="https://app.pozapisi.test/app/b/x"
    )
    assert message.subject and message.text and message.html and message.sms
    assert "\n\n\n" not in message.text
    assert "<html" in message.email_html and message.subject in message.email_html
    if locale in ("ru", "kk"):
        # translated, not English shown to a Russian or Kazakh reader
        assert CYRILLIC.search(message.subject), message.subject
        assert CYRILLIC.search(message.sms), message.sms


def test_kazakh_texts_are_kazakh(renderer: Renderer) -> None:
    texts = " ".join(
        renderer.render(event, "kk", context_for(event, "kk")).text for event in sorted(EVENTS)
    )
    assert KAZAKH & set(texts.lower())


def test_times_are_shown_in_the_business_time_zone(renderer: Renderer) -> None:
    message = renderer.render("booking.confirmed", "ru", context_for("booking.confirmed", "ru"))
    assert "10:00" in message.text  # 05:00 UTC is 10:00 in Almaty
    assert "1 декабря" in message.text and "вторник" in message.text
    assert "5\u00a0000\u00a0₸" in message.text
    assert "01.12 10:00" in message.sms


def test_rescheduled_says_when_it_was(renderer: Renderer) -> None:
    message = renderer.render("booking.rescheduled", "en", context_for("booking.rescheduled", "en"))
    assert "14:30" in message.text  # the previous time, 09:30 UTC


@pytest.mark.parametrize("locale", ["ru", "kk", "en"])
@pytest.mark.parametrize(
    "event", ["otp.code", "booking.created", "booking.reminder", "booking.cancelled"]
)
def test_short_messages_fit_one_sms_part(renderer: Renderer, event: str, locale: str) -> None:
    message = renderer.render(event, locale, context_for(event, locale))
    assert len(message.sms) <= SMS_PART, (len(message.sms), message.sms)


def test_telegram_html_escapes_what_people_typed(renderer: Renderer) -> None:
    fields = context_for("message.business", "ru")
    fields.update(business="<b>Salon</b> & Co", excerpt="<script>alert(1)</script>")
    message = renderer.render("message.business", "ru", fields)
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "&lt;b&gt;Salon&lt;/b&gt; &amp; Co" in message.html
    assert "<b>" in message.html  # our own markup stays
    assert "<script>alert(1)</script>" in message.text  # plain text is not HTML


def test_button_only_when_the_template_names_one(renderer: Renderer) -> None:
    url = "https://app.pozapisi.test/app/bookings/7"
    with_button = renderer.render(
        "booking.reminder", "en", context_for("booking.reminder", "en"), button_url=url
    )
    assert with_button.button is not None and with_button.button.url == url
    assert with_button.button.label == "Cancel or move"
    code = renderer.render("otp.code", "en", context_for("otp.code", "en"), button_url=url)
    assert code.button is None


def test_unknown_event_is_refused(renderer: Renderer) -> None:
    with pytest.raises(UnknownEvent):
        renderer.render("booking.exploded", "ru", {})
