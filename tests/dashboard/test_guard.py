"""The dashboard's guard (pinned in DESIGN.md "Dashboard contracts"): no session → 303 to the
sign-in page; every page carries the CSRF meta tag; an unsafe request without the session's
token → 403; a session works in one of the person's businesses and in no other."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.factories import new_business
from tests.support.dashboard import add_member, csrf_of, form, sign_in_as


async def test_without_a_session_pages_redirect_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dashboard/signin?next=%2Fdashboard")
    signin = await client.get("/dashboard/signin")
    assert signin.status_code == 200
    assert csrf_of(signin.text)
    assert 'name="csrf_token"' in signin.text


async def test_a_forged_or_foreign_cookie_is_no_session(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    client.cookies.set("__Host-pz_dash", "eyJhbGciOiJIUzI1NiJ9.e30.forged")
    response = await client.get("/dashboard/", follow_redirects=False)
    assert response.status_code == 303
    # a Mini App session's token is not a dashboard session (another audience)
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    from app.security import sessions
    from app.settings import secret_key_for

    token, _ = await sessions.issue(
        owner_session, account_id=business.owner_account_id, kind="miniapp",
        key=secret_key_for(settings), ip=None, user_agent="x",
    )  # fmt: skip
    await owner_session.commit()
    client.cookies.set("__Host-pz_dash", token)
    assert (await client.get("/dashboard/", follow_redirects=False)).status_code == 303


async def test_owner_sees_home_with_csrf_and_unsafe_requests_need_the_token(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    home = await client.get("/dashboard/")
    assert home.status_code == 200
    assert csrf_of(home.text) == csrf
    # sign out without the token: refused, the session stays
    refused = await client.post("/dashboard/signout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    wrong = await client.post("/dashboard/signout", data=form("not-it"), follow_redirects=False)
    assert wrong.status_code == 403
    assert (await client.get("/dashboard/")).status_code == 200
    # with it (as htmx sends it, in the header): signed out, and the session is gone
    done = await client.post(
        "/dashboard/signout", headers={"X-CSRF-Token": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    assert (await client.get("/dashboard/", follow_redirects=False)).status_code == 303


async def test_the_chosen_business_must_be_ones_own(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    mine = await new_business(owner_session)
    other = await new_business(owner_session)
    assert mine.owner_account_id is not None
    # a session whose chosen business is someone else's still works only in one's own
    await sign_in_as(client, owner_session, settings, mine.owner_account_id, business_id=other.id)
    home = await client.get("/dashboard/")
    assert home.status_code == 200
    names: dict[str, Any] = {"mine": f"Test {mine.slug}", "other": f"Test {other.slug}"}
    assert names["mine"] in home.text and names["other"] not in home.text
    csrf = csrf_of(home.text)
    await client.post("/dashboard/business", data=form(csrf, business_id=other.id))
    home = await client.get("/dashboard/")
    assert names["mine"] in home.text and names["other"] not in home.text


async def test_a_person_in_two_businesses_switches_between_them(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    first = await new_business(owner_session)
    second = await new_business(owner_session, with_owner=False)
    assert first.owner_account_id is not None
    from app.models import Membership

    owner_session.add(
        Membership(business_id=second.id, account_id=first.owner_account_id, role="master")
    )
    await owner_session.commit()
    await sign_in_as(client, owner_session, settings, first.owner_account_id)
    home = await client.get("/dashboard/")
    assert f"Test {first.slug}</h1>" in home.text  # owned businesses first
    await client.post("/dashboard/business", data=form(csrf_of(home.text), business_id=second.id))
    home = await client.get("/dashboard/")
    assert f"Test {second.slug}</h1>" in home.text


async def test_a_member_of_nothing_is_offered_a_business_of_their_own(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, with_owner=False)
    person = await add_member(owner_session, business.id, "master")
    from sqlalchemy import text

    await owner_session.execute(
        text("DELETE FROM memberships WHERE account_id = :a"), {"a": person.account_id}
    )
    await owner_session.commit()
    await sign_in_as(client, owner_session, settings, person.account_id)
    response = await client.get("/dashboard/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/new-business"
