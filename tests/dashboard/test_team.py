"""The team (issue 13, item 5): the owner invites by e-mail or phone with a single-use link that
expires, changes roles, links masters to their staff records, removes members and hands the
business over; the invitee joins through the link. Only the owner manages the team."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, set_context
from app.domain import team
from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, create_booking_in
from app.models import Business
from app.settings import Settings
from tests.factories import BusinessFixture, local_start, new_business
from tests.support.dashboard import add_member, csrf_of, form, sign_in_as

NEW_PASSWORD = "tulip-river-42"
LINK = re.compile(r"/dashboard/invite/([A-Za-z0-9_-]+)$")
FORM_TOKEN = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


def form_token(html: str) -> str:
    """The token the page's forms carry (what a browser without script sends)."""
    tokens = set(FORM_TOKEN.findall(html))
    assert len(tokens) == 1, tokens
    return tokens.pop()


class Browser:
    """Another person at the same in-process client (the app's pool lives on its event loop,
    so a second test client cannot share it): their own cookies, swapped in per request."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.cookies = httpx.Cookies()

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self._as_me(self.client.get, url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self._as_me(self.client.post, url, **kwargs)

    async def sign_in(self, session: AsyncSession, settings: Settings, account_id: int) -> str:
        return str(await self._as_me(sign_in_as, session, settings, account_id))

    async def _as_me(self, send: Any, *args: Any, **kwargs: Any) -> Any:
        theirs = self.client.cookies
        self.client.cookies = self.cookies
        try:
            if send is sign_in_as:
                return await send(self.client, *args, **kwargs)
            return await send(*args, **kwargs)
        finally:
            self.cookies = self.client.cookies
            self.client.cookies = theirs


@pytest.fixture
def invitee(client: httpx.AsyncClient) -> Browser:
    """A second browser: the person who receives the link."""
    return Browser(client)


async def owner_signed_in(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> tuple[BusinessFixture, str]:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    csrf = await sign_in_as(
        client, owner_session, settings, business.owner_account_id, business_id=business.id
    )
    return business, csrf


async def invite(
    client: httpx.AsyncClient, csrf: str, contact: str, role: str = "admin", staff_id: Any = ""
) -> httpx.Response:
    return await client.post(
        "/dashboard/team/invitations",
        data=form(csrf, contact=contact, role=role, staff_id=staff_id),
        follow_redirects=False,
    )


async def sent_link(owner_session: AsyncSession, business_id: int, address: str) -> str:
    """The link the outbox holds for ``address`` (the newest message), as the invitee gets it."""
    row = (
        await owner_session.execute(
            text(
                "SELECT payload ->> 'link' AS link, channel, status FROM notifications "
                "WHERE business_id = :b AND event = 'team.invitation' AND address = :a "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"b": business_id, "a": address},
        )
    ).one()
    assert row.status == "pending"
    assert row.channel == ("email" if "@" in address else "sms")
    return str(row.link)


def path_of(link: str) -> str:
    found = LINK.search(link)
    assert found, link
    return found.group(0)


async def scalar(session: AsyncSession, sql: str, **params: Any) -> Any:
    result = (await session.execute(text(sql), params)).scalar()
    await session.commit()
    return result


async def join_as_new(
    invitee: Browser, path: str, *, name: str = "Dana", password: str = NEW_PASSWORD
) -> httpx.Response:
    page = await invitee.get(path)
    assert page.status_code == 200, page.text
    return await invitee.post(
        path,
        data=form(form_token(page.text), name=name, password=password),
        follow_redirects=False,
    )


async def test_invite_by_email_and_accept_as_a_new_person(
    client: httpx.AsyncClient,
    invitee: Browser,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    email = f"dana-{uuid4().hex[:8]}@example.com"
    assert (await client.get("/dashboard/team")).status_code == 200
    sent = await invite(client, csrf, email.upper(), "admin")
    assert sent.status_code == 303, sent.text
    team = await client.get("/dashboard/team")
    assert email in team.text  # pending, normalised to lower case
    assert form_token(team.text) == csrf  # every form carries the session's token

    link = await sent_link(owner_session, business.id, email)
    assert link.startswith(settings.public_base_url)
    token = LINK.search(link).group(1)  # type: ignore[union-attr]
    assert len(token) >= 43  # 32 random bytes
    stored = await scalar(
        owner_session, "SELECT token_hash FROM invitations WHERE business_id = :b", b=business.id
    )
    assert stored == hashlib.sha256(token.encode()).hexdigest()  # only the digest is kept

    page = await invitee.get(path_of(link))
    assert page.status_code == 200
    assert f"Test {business.slug}" in page.text and email in page.text
    joined = await join_as_new(invitee, path_of(link))
    assert joined.status_code == 303, joined.text
    assert "__Host-pz_dash=" in joined.headers.get("set-cookie", "")
    home = await invitee.get("/dashboard/")
    assert home.status_code == 200 and f"Test {business.slug}" in home.text

    row = (
        await owner_session.execute(
            text(
                "SELECT m.role, a.email, a.email_verified_at, a.password_hash, a.name, "
                "i.accepted_at, i.accepted_by = a.id AS by_them FROM memberships m "
                "JOIN accounts a ON a.id = m.account_id JOIN invitations i ON i.business_id = "
                "m.business_id WHERE m.business_id = :b AND m.role = 'admin'"
            ),
            {"b": business.id},
        )
    ).one()
    await owner_session.commit()
    assert (row.role, row.email, row.name) == ("admin", email, "Dana")
    assert row.email_verified_at is not None and row.password_hash.startswith("$2")
    assert row.accepted_at is not None and row.by_them
    # as an admin they may not manage the team
    assert (await invitee.get("/dashboard/team")).status_code == 403
    actions = await scalar(
        owner_session,
        "SELECT string_agg(action, ',' ORDER BY seq) FROM audit_log WHERE business_id = :b "
        "AND action LIKE 'team.%'",
        b=business.id,
    )
    assert actions == "team.invitation.created,team.invitation.accepted"


async def test_a_link_works_once(
    client: httpx.AsyncClient,
    invitee: Browser,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    email = f"once-{uuid4().hex[:8]}@example.com"
    await invite(client, csrf, email)
    path = path_of(await sent_link(owner_session, business.id, email))
    page = await invitee.get(path)
    first = await invitee.post(
        path, data=form(csrf_of(page.text), name="A", password="tulip-river-42")
    )
    assert first.status_code in (200, 303)
    third = Browser(client)
    assert (await third.get(path)).status_code == 410
    again = await third.post(
        path, data=form(csrf_of(page.text), name="B", password="tulip-river-43")
    )
    assert again.status_code == 410
    members = await scalar(
        owner_session, "SELECT count(*) FROM memberships WHERE business_id = :b", b=business.id
    )
    assert members == 2  # the owner and the first to follow the link


async def test_expired_revoked_and_unknown_links_are_refused_with_nothing_written(
    client: httpx.AsyncClient,
    invitee: Browser,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    late, withdrawn = (f"{w}-{uuid4().hex[:8]}@example.com" for w in ("late", "gone"))
    await invite(client, csrf, late)
    await invite(client, csrf, withdrawn)
    late_path = path_of(await sent_link(owner_session, business.id, late))
    gone_path = path_of(await sent_link(owner_session, business.id, withdrawn))
    csrf_pre = csrf_of((await invitee.get(late_path)).text)
    await owner_session.execute(
        text("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE email = :e"),
        {"e": late},
    )
    await owner_session.commit()
    gone_id = await scalar(
        owner_session, "SELECT id FROM invitations WHERE email = :e", e=withdrawn
    )
    revoked = await client.post(
        f"/dashboard/team/invitations/{gone_id}/revoke", data=form(csrf), follow_redirects=False
    )
    assert revoked.status_code == 303
    # the revoked invitation's unsent message is withdrawn with it
    assert (
        await scalar(
            owner_session,
            "SELECT status FROM notifications WHERE address = :a AND event = 'team.invitation'",
            a=withdrawn,
        )
        == "cancelled"
    )
    for path in (late_path, gone_path):
        page = await invitee.get(path + "?lang=en")
        assert page.status_code == 410
        assert "can no longer be used" in page.text
        post = await invitee.post(path, data=form(csrf_pre, name="X", password="tulip-river-42"))
        assert post.status_code == 410
    unknown = "/dashboard/invite/" + "A" * 43
    assert (await invitee.get(unknown)).status_code == 404
    assert (
        await invitee.post(unknown, data=form(csrf_pre, name="X", password="tulip-river-42"))
    ).status_code == 404
    counted = await scalar(
        owner_session,
        "SELECT count(*) FROM accounts WHERE email IN (:a, :b)",
        a=late,
        b=withdrawn,
    )
    assert counted == 0
    assert (
        await scalar(
            owner_session, "SELECT count(*) FROM memberships WHERE business_id = :b", b=business.id
        )
        == 1
    )


async def test_a_new_account_needs_a_name_and_a_good_password(
    client: httpx.AsyncClient,
    invitee: Browser,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    email = f"pw-{uuid4().hex[:8]}@example.com"
    await invite(client, csrf, email)
    path = path_of(await sent_link(owner_session, business.id, email))
    refused = await join_as_new(invitee, path + "?lang=ru", name=" ", password="password")
    assert refused.status_code == 422
    assert "Введите" in refused.text and 'aria-invalid="true"' in refused.text
    assert "__Host-pz_dash" not in refused.headers.get("set-cookie", "")
    # the link still works after a refusal
    assert (await join_as_new(invitee, path)).status_code == 303


async def test_someone_with_an_account_signs_in_and_joins(
    client: httpx.AsyncClient,
    invitee: Browser,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    other = await new_business(owner_session, with_owner=False)
    person = await add_member(owner_session, other.id, "admin")
    await invite(client, csrf, person.email, "master")
    path = path_of(await sent_link(owner_session, business.id, person.email))
    # not signed in: making a new account for an address that has one is refused
    taken = await join_as_new(invitee, path)
    assert taken.status_code == 422
    assert "/dashboard/signin?next=" in taken.text
    # signed in: one button
    await invitee.sign_in(owner_session, settings, person.account_id)
    page = await invitee.get(path)
    assert page.status_code == 200 and "/join" in page.text
    joined = await invitee.post(
        path + "/join", data=form(csrf_of(page.text)), follow_redirects=False
    )
    assert joined.status_code == 303
    home = await invitee.get("/dashboard/")
    assert f"Test {business.slug}</h1>" in home.text  # now working in the new business
    role = await scalar(
        owner_session,
        "SELECT role FROM memberships WHERE business_id = :b AND account_id = :a",
        b=business.id,
        a=person.account_id,
    )
    assert role == "master"
    # without the session's CSRF token, nothing
    assert (await invitee.post(path + "/join", data=form("nope"))).status_code == 403


async def test_bad_invitations_are_refused_beside_their_fields(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    other = await new_business(owner_session)
    bad = await client.post(
        "/dashboard/team/invitations?lang=ru",
        data=form(csrf, contact="+7 495 123 45 67", role="owner", staff_id=other.staff_ids[0]),
    )
    assert bad.status_code == 422
    assert (
        "Введите казахстанский мобильный номер" in bad.text
    )  # beside the field, in the user's language
    assert bad.text.count('role="alert"') >= 2  # the contact and the role
    foreign_staff = await invite(client, csrf, "x@example.com", "master", other.staff_ids[0])
    assert foreign_staff.status_code == 422  # another business's master is no choice
    ok = await invite(client, csrf, "+7 701 123 45 67", "master", business.staff_ids[0])
    assert ok.status_code == 303
    twice = await invite(client, csrf, "87011234567", "master")
    assert twice.status_code == 422 and "resend" in twice.text
    count = await scalar(
        owner_session, "SELECT count(*) FROM invitations WHERE business_id = :b", b=business.id
    )
    assert count == 1


async def test_phone_invitation_links_the_master_who_then_hears_of_bookings(
    client: httpx.AsyncClient,
    invitee: Browser,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    phone = "+7701" + str(uuid4().int)[:7]
    staff_id = business.staff_ids[1]
    assert (await invite(client, csrf, phone, "master", staff_id)).status_code == 303
    path = path_of(await sent_link(owner_session, business.id, phone))
    page = await invitee.get(path)
    assert "Master 1" in page.text and 'name="password"' not in page.text  # signs in by SMS
    joined = await invitee.post(
        path, data=form(csrf_of(page.text), name="Асель"), follow_redirects=False
    )
    assert joined.status_code == 303, joined.text
    row = (
        await owner_session.execute(
            text(
                "SELECT a.id, a.phone_verified_at, a.password_hash, m.staff_id, s.account_id "
                "AS staff_account FROM accounts a JOIN memberships m ON m.account_id = a.id "
                "JOIN staff s ON s.id = :s WHERE a.phone = :p AND m.business_id = :b"
            ),
            {"p": phone, "b": business.id, "s": staff_id},
        )
    ).one()
    await owner_session.commit()
    assert row.phone_verified_at is not None and row.password_hash is None
    assert row.staff_id == staff_id and row.staff_account == row.id

    # a booking with their staff record tells them
    await set_context(owner_session, business_id=business.id)
    biz = await owner_session.get_one(Business, business.id)
    booking, _ = await create_booking_in(
        owner_session, biz,
        BookingRequest(service_id=business.service_id, staff_id=staff_id,
                       start=local_start(business, 3)),
        account=None, actor=Actor(kind="staff"),
    )  # fmt: skip
    await owner_session.commit()
    told = await scalar(
        owner_session,
        "SELECT count(*) FROM notifications WHERE booking_id = :k AND account_id = :a "
        "AND event = 'staff.booking.created'",
        k=booking.id,
        a=row.id,
    )
    assert told == 1


async def test_admins_and_masters_may_not_manage_the_team(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    for role in ("admin", "master"):
        person = await add_member(owner_session, business.id, role)
        csrf = await sign_in_as(client, owner_session, settings, person.account_id)
        assert (await client.get("/dashboard/team")).status_code == 403
        assert (await invite(client, csrf, f"{role}@example.com")).status_code == 403
        home = await client.get("/dashboard/")
        assert 'href="/dashboard/team"' not in home.text  # no menu entry either
    assert (
        await scalar(
            owner_session, "SELECT count(*) FROM invitations WHERE business_id = :b", b=business.id
        )
        == 0
    )


async def test_another_businesss_invitation_and_member_ids_are_not_found(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    theirs, their_csrf = await owner_signed_in(client, owner_session, settings)
    await invite(client, their_csrf, "theirs@example.com")
    invitation_id = await scalar(
        owner_session, "SELECT id FROM invitations WHERE business_id = :b", b=theirs.id
    )
    member = await add_member(owner_session, theirs.id, "master")
    member_id = await scalar(
        owner_session, "SELECT id FROM memberships WHERE account_id = :a", a=member.account_id
    )
    _, csrf = await owner_signed_in(client, owner_session, settings)
    for action in ("resend", "revoke"):
        response = await client.post(
            f"/dashboard/team/invitations/{invitation_id}/{action}", data=form(csrf)
        )
        assert response.status_code == 404
    for action, fields in (
        ("role", {"role": "admin"}), ("staff", {"staff_id": ""}),
        ("remove", {"confirm": "yes"}), ("owner", {"confirm": "yes"}),
    ):  # fmt: skip
        response = await client.post(
            f"/dashboard/team/members/{member_id}/{action}", data=form(csrf, **fields)
        )
        assert response.status_code == 404, action
    state = (
        await owner_session.execute(
            text(
                "SELECT i.revoked_at, m.role FROM invitations i, memberships m "
                "WHERE i.id = :i AND m.id = :m"
            ),
            {"i": invitation_id, "m": member_id},
        )
    ).one()
    await owner_session.commit()
    assert state.revoked_at is None and state.role == "master"


async def test_removing_a_member_ends_their_access_at_once(
    client: httpx.AsyncClient,
    invitee: Browser,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    person = await add_member(owner_session, business.id, "admin", staff_id=business.staff_ids[0])
    await owner_session.execute(
        text("UPDATE staff SET account_id = :a WHERE id = :s"),
        {"a": person.account_id, "s": business.staff_ids[0]},
    )
    await owner_session.commit()
    await invitee.sign_in(owner_session, settings, person.account_id)
    assert (await invitee.get("/dashboard/")).status_code == 200
    member_id = await scalar(
        owner_session, "SELECT id FROM memberships WHERE account_id = :a", a=person.account_id
    )
    unconfirmed = await client.post(f"/dashboard/team/members/{member_id}/remove", data=form(csrf))
    assert unconfirmed.status_code == 422
    assert (await invitee.get("/dashboard/")).status_code == 200
    removed = await client.post(
        f"/dashboard/team/members/{member_id}/remove",
        data=form(csrf, confirm="yes"),
        follow_redirects=False,
    )
    assert removed.status_code == 303
    # the same session, the very next request: no longer a member of anything
    gone = await invitee.get("/dashboard/")
    assert gone.status_code in (200, 403) and f"Test {business.slug}" not in gone.text
    assert (
        await scalar(
            owner_session,
            "SELECT account_id FROM staff WHERE id = :s",
            s=business.staff_ids[0],
        )
        is None
    )
    # the owner cannot remove themselves
    own_id = await scalar(
        owner_session,
        "SELECT id FROM memberships WHERE business_id = :b AND role = 'owner'",
        b=business.id,
    )
    refused = await client.post(
        f"/dashboard/team/members/{own_id}/remove", data=form(csrf, confirm="yes")
    )
    assert refused.status_code == 422
    demoted = await client.post(
        f"/dashboard/team/members/{own_id}/role", data=form(csrf, role="admin")
    )
    assert demoted.status_code == 422
    assert (
        await scalar(owner_session, "SELECT role FROM memberships WHERE id = :m", m=own_id)
        == "owner"
    )


async def test_roles_change_and_masters_are_linked_and_unlinked(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    person = await add_member(owner_session, business.id, "master")
    member_id = await scalar(
        owner_session, "SELECT id FROM memberships WHERE account_id = :a", a=person.account_id
    )
    staff_id = business.staff_ids[0]
    url = f"/dashboard/team/members/{member_id}"
    assert (await client.post(f"{url}/role", data=form(csrf, role="admin"))).status_code == 200
    assert (await client.post(f"{url}/role", data=form(csrf, role="owner"))).status_code == 422
    assert (await client.post(f"{url}/staff", data=form(csrf, staff_id=staff_id))).is_success
    row = (
        await owner_session.execute(
            text(
                "SELECT m.role, m.staff_id, s.account_id FROM memberships m JOIN staff s "
                "ON s.id = :s WHERE m.id = :m"
            ),
            {"m": member_id, "s": staff_id},
        )
    ).one()
    await owner_session.commit()
    assert (row.role, row.staff_id, row.account_id) == ("admin", staff_id, person.account_id)
    # one master record, one member: the owner may not link it to themselves too
    own_id = await scalar(
        owner_session,
        "SELECT id FROM memberships WHERE business_id = :b AND role = 'owner'",
        b=business.id,
    )
    taken = await client.post(
        f"/dashboard/team/members/{own_id}/staff", data=form(csrf, staff_id=staff_id)
    )
    assert taken.status_code == 422
    assert (await client.post(f"{url}/staff", data=form(csrf, staff_id=""))).is_success
    assert (
        await scalar(owner_session, "SELECT account_id FROM staff WHERE id = :s", s=staff_id)
        is None
    )
    audited = await scalar(
        owner_session,
        "SELECT count(*) FROM audit_log WHERE business_id = :b AND action IN "
        "('team.member.role_changed', 'team.member.staff_linked')",
        b=business.id,
    )
    assert audited == 3


async def test_ownership_is_handed_over_and_there_is_one_owner(
    client: httpx.AsyncClient,
    invitee: Browser,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    person = await add_member(owner_session, business.id, "master")
    member_id = await scalar(
        owner_session, "SELECT id FROM memberships WHERE account_id = :a", a=person.account_id
    )
    url = f"/dashboard/team/members/{member_id}/owner"
    assert (await client.post(url, data=form(csrf))).status_code == 422  # not confirmed
    handed = await client.post(url, data=form(csrf, confirm="yes"), follow_redirects=False)
    assert handed.status_code == 303
    roles = (
        await owner_session.execute(
            text("SELECT account_id, role FROM memberships WHERE business_id = :b"),
            {"b": business.id},
        )
    ).all()
    await owner_session.commit()
    assert dict(roles) == {business.owner_account_id: "admin", person.account_id: "owner"}
    # the old owner is an admin now: the team is no longer theirs to manage
    assert (await client.get("/dashboard/team")).status_code == 403
    assert (await client.post(url, data=form(csrf, confirm="yes"))).status_code == 403
    await invitee.sign_in(owner_session, settings, person.account_id)
    assert (await invitee.get("/dashboard/team")).status_code == 200
    assert (
        await scalar(
            owner_session,
            "SELECT count(*) FROM audit_log WHERE business_id = :b "
            "AND action = 'team.ownership.transferred'",
            b=business.id,
        )
        == 1
    )


async def test_resend_gives_a_new_link_and_the_old_one_stops_working(
    client: httpx.AsyncClient,
    invitee: Browser,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    business, csrf = await owner_signed_in(client, owner_session, settings)
    email = f"again-{uuid4().hex[:8]}@example.com"
    await invite(client, csrf, email)
    old = path_of(await sent_link(owner_session, business.id, email))
    invitation_id = await scalar(
        owner_session, "SELECT id FROM invitations WHERE email = :e", e=email
    )
    await owner_session.execute(
        text("UPDATE invitations SET expires_at = now() - interval '1 day' WHERE id = :i"),
        {"i": invitation_id},
    )
    await owner_session.commit()
    assert "Expired" in (await client.get("/dashboard/team?lang=en")).text
    resent = await client.post(
        f"/dashboard/team/invitations/{invitation_id}/resend",
        data=form(csrf),
        follow_redirects=False,
    )
    assert resent.status_code == 303
    new = path_of(await sent_link(owner_session, business.id, email))
    assert new != old
    assert (await invitee.get(old)).status_code == 404
    assert (await invitee.get(new)).status_code == 200
    expires = await scalar(
        owner_session, "SELECT expires_at FROM invitations WHERE id = :i", i=invitation_id
    )
    assert expires > datetime.now(UTC) + timedelta(days=6)


async def test_two_clicks_at_once_make_one_member(
    db: Database, owner_session: AsyncSession
) -> None:
    """The link is locked while it is used: of two acceptances racing, one joins, the other is
    told the link is used, and one account and one membership exist."""
    business = await new_business(owner_session)
    token, digest = team.new_secret()
    phone = "+7702" + str(uuid4().int)[:7]
    await owner_session.execute(
        text(
            "INSERT INTO invitations (business_id, role, phone, token_hash, expires_at) "
            "VALUES (:b, 'master', :p, :h, now() + interval '1 day')"
        ),
        {"b": business.id, "p": phone, "h": digest},
    )
    await owner_session.commit()
    results = await asyncio.gather(
        *(
            team.accept_invitation(db, token, Actor(kind="staff"), name=f"Racer {i}")
            for i in range(2)
        ),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["InvitationGone", "Joined"]
    assert (
        await scalar(owner_session, "SELECT count(*) FROM accounts WHERE phone = :p", p=phone) == 1
    )
    assert (
        await scalar(
            owner_session,
            "SELECT count(*) FROM memberships WHERE business_id = :b AND role = 'master'",
            b=business.id,
        )
        == 1
    )


async def test_the_team_functions_give_nothing_away(
    db: Database, owner_session: AsyncSession
) -> None:
    """pz_team_members answers the business's owner only, for their own business;
    pz_invitation_accept joins the signed-in person as themselves, never someone else."""
    business = await new_business(owner_session)
    other = await new_business(owner_session)
    owner = business.owner_account_id
    assert owner is not None
    master = await add_member(owner_session, business.id, "master")
    members = text("SELECT count(*) FROM pz_team_members(:b)")
    async with db.transaction(business_id=business.id, account_id=owner) as session:
        assert (await session.execute(members, {"b": business.id})).scalar() == 2
        assert (await session.execute(members, {"b": other.id})).scalar() == 0
    async with db.transaction(business_id=business.id, account_id=master.account_id) as session:
        assert (await session.execute(members, {"b": business.id})).scalar() == 0
    _, digest = team.new_secret()
    await owner_session.execute(
        text(
            "INSERT INTO invitations (business_id, role, email, token_hash, expires_at) "
            "VALUES (:b, 'admin', 'someone@example.com', :h, now() + interval '1 day')"
        ),
        {"b": other.id, "h": digest},
    )
    await owner_session.commit()
    accept = text("SELECT * FROM pz_invitation_accept(:h, :a, NULL, NULL, 'ru')")
    with pytest.raises(DBAPIError, match="only the signed-in person"):
        async with db.transaction(account_id=master.account_id) as session:
            await session.execute(accept, {"h": digest, "a": owner})
    assert (
        await scalar(
            owner_session, "SELECT accepted_at FROM invitations WHERE token_hash = :h", h=digest
        )
        is None
    )


async def test_an_invitation_that_could_not_be_delivered_says_why(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    _, csrf = await owner_signed_in(client, owner_session, settings)
    phone = "+7705" + str(uuid4().int)[:7]
    await invite(client, csrf, phone, "master")
    page = await client.get("/dashboard/team?lang=en")
    assert phone in page.text and "Not delivered" not in page.text
    # the relay gave up: the business had switched SMS off, say
    await owner_session.execute(
        text(
            "UPDATE notifications SET status = 'failed', last_error = 'no_channel: sms off' "
            "WHERE event = 'team.invitation' AND address = :p"
        ),
        {"p": phone},
    )
    await owner_session.commit()
    page = await client.get("/dashboard/team?lang=en")
    assert "Not delivered: There is no way to reach this person" in page.text
