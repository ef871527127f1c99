"""Policy 3.3: analytics rest on legitimate interest only because they are aggregate and
anonymous. The business's analytics report (``app.domain.analytics.report``) and its page hold
counts and sums, per day, hour and master — never a client: no name, phone, client, account or
booking id, no booking code. (No third-party analytics either: the page loads nothing from
another origin, tests/browser/test_analytics_browser.py; the landing, tests/landing.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import analytics
from app.settings import Settings
from tests.dashboard.test_analytics import PERIOD, _owner, arranged
from tests.support.dashboard import sign_in_as

pytestmark = pytest.mark.policy("3.3")

# what would name or single out a client, as a field of anything the report holds
PERSONAL_FIELDS = {"client", "client_id", "client_name", "account_id", "booking_id", "phone",
                   "email", "telegram_id", "public_code", "comment", "notes"}  # fmt: skip


def leaves(value: Any, path: str = "report") -> Iterator[tuple[str, Any]]:
    """Every field path and leaf value of the report (dataclasses, lists, tuples, dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from leaves(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}[{key!r}]")
    else:
        yield path, value


async def _clients_of(session: AsyncSession, business_id: int) -> dict[str, list[Any]]:
    """The arranged clients, given phones, and their bookings' codes: what must not show."""
    await session.execute(
        text("UPDATE clients SET phone = '+7701' || lpad(id::text, 7, '0') WHERE business_id = :b"),
        {"b": business_id},
    )
    clients = (await session.execute(text(
        "SELECT id, name, phone FROM clients WHERE business_id = :b"), {"b": business_id})).all()  # fmt: skip
    codes = (await session.execute(text(
        "SELECT public_code FROM bookings WHERE business_id = :b"), {"b": business_id})).scalars()  # fmt: skip
    await session.commit()
    return {"names": [c.name for c in clients], "phones": [c.phone for c in clients],
            "codes": list(codes)}  # fmt: skip


async def test_the_report_holds_figures_and_no_client(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await arranged(owner_session)
    personal = await _clients_of(owner_session, business.id)
    assert len(personal["names"]) == 5 and len(personal["codes"]) == 12

    shown = await analytics.report(db, _owner(business), analytics.parse_query(PERIOD))

    assert shown.figures.clients == 5  # the clients are counted …
    found = list(leaves(shown))
    fields = {path.rsplit(".", 1)[-1].split("[", 1)[0] for path, _ in found}
    assert not fields & PERSONAL_FIELDS, fields & PERSONAL_FIELDS
    texts = [value for _, value in found if isinstance(value, str)]
    for secret in (*personal["names"], *personal["phones"], *personal["codes"]):
        # … but none of them is named, called or pointed at
        assert not [t for t in texts if secret in t], secret
        assert secret not in repr(shown)


async def test_the_page_names_no_client(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await arranged(owner_session)
    personal = await _clients_of(owner_session, business.id)
    assert business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, business.owner_account_id,
                     business_id=business.id)  # fmt: skip

    page = await client.get("/dashboard/analytics", params=PERIOD)

    assert page.status_code == 200, page.text
    for secret in (*personal["names"], *personal["phones"], *personal["codes"]):
        assert secret not in page.text, secret
    assert "/dashboard/clients/" not in page.text  # no link to a client's card either
