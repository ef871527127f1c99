"""A team invitation (app.domain.team) delivered by the relay: by e-mail or SMS to the address
the owner typed, as a message of the business, carrying the link — which the finished row then
no longer keeps (it opens the team until used)."""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.factories import create_business
from tests.workers.conftest import Mailbox, insert_rows, statuses
from tests.workers.provider_stub import ProviderStub
from workers.relay import Relay

LINK = "https://app.pozapisi.test/dashboard/invite/" + "T" * 43


def invitation(business_id: int, address: str, channel: str, key: str) -> dict[str, object]:
    """The row app.domain.team.invite queues."""
    return {
        "event": "team.invitation", "business_id": business_id, "address": address,
        "channel": channel, "payload": json.dumps({"link": LINK, "role": "admin",
                                                   "invitation_id": 1}),
        "idempotency_key": key,
    }  # fmt: skip


async def test_the_invitation_goes_by_sms_or_e_mail_and_its_link_is_not_kept(
    relay: Relay,
    wowner: AsyncEngine,
    owner: AsyncSession,
    stub: ProviderStub,
    smtp: tuple[Mailbox, int],
) -> None:
    async with owner.begin():
        business = await create_business(owner, with_owner=False)
    ids = await insert_rows(
        wowner,
        [
            invitation(business.id, "+77011119001", "sms", f"team.invitation:{business.id}:sms"),
            invitation(business.id, "dana@example.kz", "email", f"team.invitation:{business.id}:e"),
        ],
    )
    assert await relay.drain() == Counter(sent=2)
    [sms] = stub.snapshot("sms")
    assert sms.address == "+77011119001"
    assert LINK in sms.text and f"Test {business.slug}"[:20] in sms.text
    mailbox, _port = smtp
    [(recipients, mail)] = mailbox.messages
    assert recipients == ["dana@example.kz"]
    assert f"Test {business.slug}" in str(mail["Subject"])
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert LINK in parts["text/plain"].get_payload(decode=True).decode()
    assert f'href="{LINK}"' in parts["text/html"].get_payload(decode=True).decode()
    for row in (await statuses(wowner, ids)).values():
        assert row["status"] == "sent"
        assert "link" not in row["payload"]  # the secret does not linger in the outbox
