"""Channel adapters against loopback providers: error types, TLS, what leaves PoZapisi."""

from __future__ import annotations

import ssl

import pytest

from app.integrations.tls import outbound_tls_context
from tests.conftest import BOT_TOKEN, make_settings
from tests.workers.conftest import SMS_KEY, Mailbox
from tests.workers.provider_stub import ProviderStub
from workers.channels import (
    Button,
    ChannelConfigError,
    PermanentError,
    Rendered,
    TransientError,
    require_encrypted,
)
from workers.channels.email import EmailChannel
from workers.channels.sms import SmsChannel
from workers.channels.telegram import TelegramChannel
from workers.jobs import build_channels

MESSAGE = Rendered(
    subject="Тема", text="Текст", html="<b>Текст</b>", sms="Коротко",
    button=Button("Открыть", "https://app.pozapisi.test/app/b/x"),
)  # fmt: skip


@pytest.fixture
async def telegram(stub: ProviderStub) -> TelegramChannel:
    return TelegramChannel(stub.telegram_url, BOT_TOKEN, timeout=2)


@pytest.fixture
async def sms(stub: ProviderStub) -> SmsChannel:
    return SmsChannel(stub.sms_url, SMS_KEY, sender="PoZapisi", timeout=2)


async def test_telegram_sends_html_with_a_mini_app_button(
    telegram: TelegramChannel, stub: ProviderStub
) -> None:
    provider_id = await telegram.send("123456789", MESSAGE)
    assert provider_id
    [call] = stub.snapshot()
    assert call.body["parse_mode"] == "HTML" and call.text == "<b>Текст</b>"
    assert call.body["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Открыть", "web_app": {"url": "https://app.pozapisi.test/app/b/x"}}]
        ]
    }


@pytest.mark.parametrize(
    ("status", "extra", "error", "reason"),
    [
        (500, {}, TransientError, "provider_unavailable"),
        (429, {"parameters": {"retry_after": 7}}, TransientError, "rate_limited"),
        (403, {"description": "Forbidden: bot was blocked by the user"}, PermanentError, "blocked"),
        (403, {"description": "Forbidden: user is deactivated"}, PermanentError, "blocked"),
        (400, {"description": "Bad Request: chat not found"}, PermanentError, "invalid_address"),
        (400, {"description": "Bad Request: can't parse entities"}, PermanentError, "rejected"),
        (401, {"description": "Unauthorized"}, TransientError, "misconfigured"),
    ],
)
async def test_telegram_errors_are_typed(
    telegram: TelegramChannel,
    stub: ProviderStub,
    status: int,
    extra: dict[str, object],
    error: type[Exception],
    reason: str,
) -> None:
    stub.fail_next("telegram", 1, status, **extra)
    with pytest.raises(error) as caught:
        await telegram.send("123456789", MESSAGE)
    assert caught.value.reason == reason  # type: ignore[attr-defined]
    assert BOT_TOKEN not in str(caught.value)
    if status == 429:
        assert caught.value.retry_after == 7  # type: ignore[attr-defined]


async def test_unreachable_provider_is_transient_and_never_shows_the_token() -> None:
    channel = TelegramChannel("http://127.0.0.1:9", BOT_TOKEN, timeout=1)
    with pytest.raises(TransientError) as caught:
        await channel.send("1", MESSAGE)
    assert caught.value.reason == "network" and BOT_TOKEN not in str(caught.value)
    assert not caught.value.maybe_delivered  # it never connected: certainly not sent


async def test_sms_protocol(sms: SmsChannel, stub: ProviderStub) -> None:
    assert (await sms.send("+77011234567", MESSAGE) or "").startswith("sms-")
    [call] = stub.snapshot("sms")
    assert call.body == {"recipient": "+77011234567", "text": "Коротко", "sender": "PoZapisi"}

    with pytest.raises(PermanentError) as refused:
        await sms.send("+15550001111", MESSAGE)  # the provider: invalid_recipient
    assert refused.value.reason == "invalid_address"
    stub.fail_next("sms", 1, 503)
    with pytest.raises(TransientError):
        await sms.send("+77011234567", MESSAGE)
    stub.fail_next("sms", 1, 402, error="insufficient_balance")
    with pytest.raises(TransientError) as balance:
        await sms.send("+77011234567", MESSAGE)
    assert balance.value.reason == "misconfigured"


async def test_sms_with_a_wrong_key_keeps_the_message_for_later(stub: ProviderStub) -> None:
    channel = SmsChannel(stub.sms_url, "wrong-key", sender="PoZapisi", timeout=2)
    with pytest.raises(TransientError) as caught:
        await channel.send("+77011234567", MESSAGE)
    assert caught.value.reason == "misconfigured" and "wrong-key" not in str(caught.value)


async def test_email_is_multipart_and_reaches_a_real_smtp_server(
    smtp: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp
    channel = EmailChannel(
        f"smtp://127.0.0.1:{port}", mail_from="PoZapisi <no-reply@pozapisi.kz>", timeout=5,
        tls=outbound_tls_context("1.3"),
    )  # fmt: skip
    assert await channel.send("person@example.kz", MESSAGE)
    [(rcpt, mail)] = mailbox.messages
    assert rcpt == ["person@example.kz"] and mail["Subject"] == "Тема"
    assert mail.is_multipart()
    assert sorted(p.get_content_type() for p in mail.walk() if not p.is_multipart()) == [
        "text/html",
        "text/plain",
    ]
    with pytest.raises(PermanentError):
        await channel.send("not an address", MESSAGE)


@pytest.mark.policy("10.1")
def test_starttls_is_required_except_on_loopback() -> None:
    tls = outbound_tls_context("1.3")
    remote = EmailChannel("smtp://u:p@mail.example.kz", mail_from="a@b.kz", timeout=5, tls=tls)
    local = EmailChannel("smtp://127.0.0.1:2525", mail_from="a@b.kz", timeout=5, tls=tls)
    implicit = EmailChannel("smtps://mail.example.kz", mail_from="a@b.kz", timeout=5, tls=tls)
    assert (remote._start_tls, remote._port) == (True, 587)
    assert local._start_tls is None  # used when offered
    assert (implicit._implicit_tls, implicit._port) == (True, 465)


@pytest.mark.policy("10.1")
def test_outbound_tls_verifies_and_requires_tls_1_3_by_default() -> None:
    context = outbound_tls_context(make_settings().outbound_tls_min)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert outbound_tls_context("1.2").minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.policy("10.1")
def test_production_refuses_plain_http_to_a_remote_provider() -> None:
    require_encrypted("SMS_API_URL", "http://127.0.0.1:9000", production=True)  # loopback: fine
    require_encrypted("SMS_API_URL", "http://sms.example.kz", production=False)
    with pytest.raises(ChannelConfigError):
        require_encrypted("SMS_API_URL", "http://sms.example.kz", production=True)
    settings = make_settings(
        POZAPISI_ENV="production", SECRET_KEY="x" * 40, SMS_API_URL="http://sms.example.kz"
    )
    with pytest.raises(ChannelConfigError):
        build_channels(settings)
