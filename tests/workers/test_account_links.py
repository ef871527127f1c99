"""An account e-mail with a single-use link (app.domain.staff_accounts: verify the address,
reset the password, confirm a new address) delivered by the relay: to the address, in the
account's language, carrying the link — which the finished row then no longer keeps."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.workers.conftest import Mailbox, insert_rows, statuses
from workers.relay import Relay

LINK = "https://app.pozapisi.test/dashboard/reset/" + "R" * 43


@pytest.mark.parametrize(
    "event", ["account.verify_email", "account.change_email", "account.reset_password"]
)
async def test_the_link_goes_by_e_mail_and_is_not_kept(
    relay: Relay, wowner: AsyncEngine, smtp: tuple[Mailbox, int], event: str
) -> None:
    address = f"{event.split('.')[1]}@example.kz"
    ids = await insert_rows(
        wowner,
        [{"event": event, "address": address, "channel": "email", "locale": "kk",
          "payload": json.dumps({"link": LINK}), "idempotency_key": f"{event}:{address}"}],
    )  # fmt: skip
    assert await relay.drain() == Counter(sent=1)
    mailbox, _port = smtp
    [(recipients, mail)] = mailbox.messages
    assert recipients == [address]
    assert any(ch in str(mail["Subject"]) for ch in "әғқңөұүһі")  # in Kazakh
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert LINK in parts["text/plain"].get_payload(decode=True).decode()
    assert f'href="{LINK}"' in parts["text/html"].get_payload(decode=True).decode()
    [row] = (await statuses(wowner, ids)).values()
    assert row["status"] == "sent"
    assert "link" not in row["payload"]  # the secret does not linger in the outbox
