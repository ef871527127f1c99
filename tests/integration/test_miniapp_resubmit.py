"""The Mini App's booking form carries an idempotency key: sent twice (a retry after a 503, a
double tap, a connection dropped before the answer), it makes one booking."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from tests.factories import create_business, local_start
from tests.helpers import TelegramUser, grant_consent
from tests.integration.test_miniapp_security import sign_in

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


async def _form(
    client: Any, slug: str, service_id: int, staff_id: int, start: str
) -> dict[str, str]:
    page = await client.get(
        f"/app/b/{slug}/confirm", params={"service": service_id, "staff": staff_id, "start": start}
    )
    assert page.status_code == 200, page.text
    return dict(HIDDEN.findall(page.text))


async def test_the_same_form_sent_twice_makes_one_booking(client, owner_session) -> None:  # type: ignore[no-untyped-def]
    business = await create_business(owner_session)
    await owner_session.commit()
    user = TelegramUser()
    await grant_consent(client, user)
    await sign_in(client, user)
    start = local_start(business, 5).isoformat()
    form = await _form(client, business.slug, business.service_id, business.staff_ids[0], start)
    assert len(form.get("idempotency_key", "")) >= 16, form  # a fresh random key per page
    other = await _form(client, business.slug, business.service_id, business.staff_ids[0], start)
    assert other["idempotency_key"] != form["idempotency_key"]

    first = await client.post(f"/app/b/{business.slug}/book", data=form, follow_redirects=False)
    again = await client.post(f"/app/b/{business.slug}/book", data=form, follow_redirects=False)
    assert (first.status_code, again.status_code) == (303, 303), again.text
    assert again.headers["location"] == first.headers["location"]  # the booking made first
    count = await owner_session.scalar(
        text("SELECT count(*) FROM bookings WHERE business_id = :b"), {"b": business.id}
    )
    await owner_session.commit()
    assert count == 1

    # a new page is a new attempt: the time is taken now, and the form says so
    taken = await client.post(f"/app/b/{business.slug}/book", data=other, follow_redirects=False)
    assert taken.status_code == 409
