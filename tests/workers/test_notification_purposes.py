"""Policy 4 (with 3.2): PoZapisi processes personal data for bookings, notifications, billing,
support and security, and for nothing else — no marketing messages. Every message the system
can send is declared once with its purpose (``EVENT_PURPOSES`` in workers/notification_texts.py,
beside the texts); these tests fail when a message has no purpose or one the published policy
does not name, and show that a message without a purpose is never sent."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.conftest import ROOT
from tests.workers.conftest import insert_rows, new_account, statuses
from tests.workers.provider_stub import ProviderStub
from workers.billing import BILLING_EVENTS
from workers.notification_texts import (
    ACCOUNT_LINK_EVENTS,
    CLIENT_BOOKING_EVENTS,
    EVENT_PURPOSES,
    EVENTS,
    OPS_EVENTS,
    PURPOSES,
    STAFF_BOOKING_EVENTS,
    TEMPLATE_DIR,
    Renderer,
    UnknownEvent,
)
from workers.relay import Relay

pytestmark = [pytest.mark.policy(clause) for clause in ("3.2", "4.1", "4.2", "4.3", "4.4", "4.5")]


def current_policy_purposes() -> list[str]:
    versions = yaml.safe_load((ROOT / "policy" / "versions.yml").read_text(encoding="utf-8"))
    current = next(v for v in versions["versions"] if v["version"] == versions["current"])
    return list(current["purposes"])


def test_the_purposes_are_the_published_policys() -> None:
    # what people consent to (the policy version's purposes) is what messages may serve
    assert sorted(PURPOSES) == sorted(current_policy_purposes())
    assert not {"marketing", "advertising", "promotions"} & set(current_policy_purposes())


def test_every_message_has_one_of_those_purposes() -> None:
    assert set(EVENT_PURPOSES) == EVENTS  # the renderer knows no other message
    outside = {event: why for event, why in EVENT_PURPOSES.items() if why not in PURPOSES}
    assert not outside, f"messages sent for a purpose the policy does not name: {outside}"


def test_every_message_text_and_event_list_is_declared_with_a_purpose() -> None:
    texts = {
        path.name.removesuffix(".txt")
        for path in Path(TEMPLATE_DIR).glob("*.txt")
        if not path.name.startswith("_")
    }
    listed = {*CLIENT_BOOKING_EVENTS, *STAFF_BOOKING_EVENTS, *ACCOUNT_LINK_EVENTS, *OPS_EVENTS,
              *BILLING_EVENTS}  # fmt: skip
    undeclared = sorted((texts | listed) - set(EVENT_PURPOSES))
    assert not undeclared, f"messages without a purpose in EVENT_PURPOSES: {undeclared}"
    assert sorted(set(EVENT_PURPOSES) - texts) == [], "a declared message without a text"


def test_a_message_without_a_purpose_cannot_be_rendered() -> None:
    renderer = Renderer(contact_email="info@pozapisi.kz")
    with pytest.raises(UnknownEvent):
        renderer.render("promo.discount", "ru", {"business_name": "Ақ Бота"})


async def test_a_queued_message_without_a_purpose_is_never_sent(
    relay: Relay, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    async with owner.begin():
        person = await new_account(owner, phone="+77015550101", email="p@example.kz")
    ids = await insert_rows(wowner, [
        {"event": "promo.discount", "account_id": person.id, "payload": '{"text": "-20%"}',
         "idempotency_key": f"promo:{uuid.uuid4()}"},
    ])  # fmt: skip

    assert await relay.run_once(datetime.now(UTC)) == Counter(failed=1)

    row = (await statuses(wowner, ids))[ids[0]]
    assert row["status"] == "failed" and row["last_error"].startswith("rejected")
    assert stub.snapshot() == []  # no provider heard of it, on any channel
    async with wowner.connect() as conn:
        sent = await conn.scalar(
            text("SELECT count(*) FROM notifications WHERE account_id = :a AND status = 'sent'"),
            {"a": person.id},
        )
    assert sent == 0
