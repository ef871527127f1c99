"""Policy 5.2: the Telegram, SMS and e-mail providers get a message strictly for delivering it —
the recipient's address and the message's text, nothing else about the person or the booking.

The relay hands an adapter only the address and the rendered message (``Rendered``); these
tests send one whose every part is recognisable and check that each field of what reaches the
loopback provider is the address, a part of the message, or a constant of the channel. The
relay's own tests check the same of Telegram and SMS with a queued row (``test_relay.py``)."""

from __future__ import annotations

from email.utils import parseaddr

import pytest

from app.integrations.tls import outbound_tls_context
from tests.conftest import BOT_TOKEN
from tests.workers.conftest import SMS_KEY, Mailbox
from tests.workers.provider_stub import ProviderStub
from workers.channels import Button, Rendered
from workers.channels.email import EmailChannel
from workers.channels.sms import SmsChannel
from workers.channels.telegram import TelegramChannel

pytestmark = pytest.mark.policy("5.2")

MESSAGE = Rendered(
    subject="Запись подтверждена", text="Вы записаны на 10:00", html="<b>Вы записаны</b> на 10:00",
    sms="Запись 10:00", button=Button("Открыть", "https://app.pozapisi.test/app/bookings/7"),
)  # fmt: skip


async def test_telegram_gets_the_chat_and_the_text_only(stub: ProviderStub) -> None:
    channel = TelegramChannel(stub.telegram_url, BOT_TOKEN, timeout=2)
    try:
        await channel.send("700100200", MESSAGE)
    finally:
        await channel.aclose()
    [call] = [c for c in stub.snapshot("telegram") if c.address == "700100200"]
    body = dict(call.body)
    assert str(body.pop("chat_id")) == "700100200"
    assert body.pop("text") == MESSAGE.html
    # the button is part of the message: its label and the link the person opens
    button = body.pop("reply_markup")["inline_keyboard"][0][0]
    assert button == {"text": "Открыть", "web_app": {"url": MESSAGE.button.url}}  # type: ignore[union-attr]
    # what is left are the channel's constants: how to read the text, no link previews
    assert body == {"parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}


async def test_the_sms_provider_gets_the_number_and_the_short_text_only(stub: ProviderStub) -> None:
    channel = SmsChannel(stub.sms_url, SMS_KEY, sender="PoZapisi", timeout=2)
    try:
        await channel.send("+77017770001", MESSAGE)
    finally:
        await channel.aclose()
    [call] = [c for c in stub.snapshot("sms") if c.address == "+77017770001"]
    assert call.body == {"recipient": "+77017770001", "text": MESSAGE.sms, "sender": "PoZapisi"}


async def test_the_mail_server_gets_the_address_and_the_message_only(
    smtp: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp
    channel = EmailChannel(
        f"smtp://127.0.0.1:{port}", mail_from="PoZapisi <no-reply@pozapisi.kz>", timeout=5,
        tls=outbound_tls_context("1.3"),
    )  # fmt: skip
    await channel.send("only-this@example.kz", MESSAGE)
    await channel.send("only-this@example.kz", MESSAGE)
    [mail, again] = [m for r, m in mailbox.messages if r == ["only-this@example.kz"]]
    # headers: who sends, to whom, the subject, and the MIME structure — no X- headers carrying
    # a booking, business or account
    assert {name.lower() for name in mail} == {
        "from", "to", "subject", "message-id", "mime-version", "content-type",
    }  # fmt: skip
    assert parseaddr(str(mail["From"]))[1] == "no-reply@pozapisi.kz"
    assert str(mail["To"]) == "only-this@example.kz" and str(mail["Subject"]) == MESSAGE.subject
    # the message id is random (make_msgid): the same message twice gets two unrelated ids
    message_id = str(mail["Message-ID"])
    assert message_id.endswith("@pozapisi.kz>") and message_id != str(again["Message-ID"])
    assert "only-this" not in message_id
    parts = {p.get_content_type(): p.get_content() for p in mail.walk() if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert parts["text/plain"].strip() == MESSAGE.text
    assert "Вы записаны" in parts["text/html"]
