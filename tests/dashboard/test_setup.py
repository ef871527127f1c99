"""The onboarding wizard (issue 13 item 2): it resumes at the first step still to do, read from
the business's own data; each step's link opens its page; the last page gives the public link,
the Telegram link and a QR code of them (SVG and PNG, of the right link); finishing is kept and
audited once; only the owner walks it (a master gets 403, an admin may print the QR code)."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
import segno
from PIL import Image
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, Business, Holiday, Service, Staff, WorkingHours
from app.routes.dashboard.setup import QR_BORDER, QR_ERROR, QR_SCALE, STEP_ROUTES
from app.settings import Settings
from tests.factories import new_business
from tests.support.dashboard import add_member, form, sign_in_as

STEP_LINK = re.compile(r'<a href="([^"]+)"[^>]*>')
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def step_path(app: Any, step: str) -> str:
    """Where a step's page is (the first of its routes that exists), as the wizard opens it."""
    from litestar.exceptions import NoRouteMatchFoundException

    for name, fragment in STEP_ROUTES[step]:
        try:
            return app.route_reverse(name) + "?setup=1" + fragment
        except NoRouteMatchFoundException:
            continue
    pytest.fail(f"no page for the step {step!r}")


async def owner_client(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, **kwargs: Any
) -> tuple[Any, str]:
    business = await new_business(owner_session, **kwargs)
    assert business.owner_account_id is not None
    await owner_session.execute(
        update(Account).where(Account.id == business.owner_account_id).values(locale="en")
    )
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    return business, csrf


async def resumes_at(client: httpx.AsyncClient) -> str:
    response = await client.get("/dashboard/setup", follow_redirects=False)
    assert response.status_code == 303
    return response.headers["location"]


async def test_the_wizard_resumes_at_the_first_step_still_to_do(
    app: Any, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, _ = await owner_client(client, owner_session, settings)
    # the factory's business has services, masters and hours, but no address or phone
    assert await resumes_at(client) == step_path(app, "profile")
    await owner_session.execute(
        update(Business).where(Business.id == business.id)
        .values(address="Абая 10, Алматы", phone="+77011234567")
    )  # fmt: skip
    await owner_session.commit()
    # every required step done: the last page (days off are optional)
    assert await resumes_at(client) == step_path(app, "done")

    # no hours for anyone: back to the hours
    await owner_session.execute(delete(WorkingHours).where(WorkingHours.business_id == business.id))
    await owner_session.commit()
    assert await resumes_at(client) == step_path(app, "hours")
    # hours of an archived master do not count, nor do archived masters and services
    await owner_session.execute(
        update(Service).where(Service.business_id == business.id).values(archived_at=text("now()"))
    )
    await owner_session.commit()
    assert await resumes_at(client) == step_path(app, "services")
    await owner_session.execute(
        update(Staff).where(Staff.business_id == business.id).values(archived_at=text("now()"))
    )
    await owner_session.commit()
    assert await resumes_at(client) == step_path(app, "services")
    await owner_session.execute(
        update(Service).where(Service.business_id == business.id).values(archived_at=None)
    )
    await owner_session.commit()
    assert await resumes_at(client) == step_path(app, "masters")


async def test_each_step_link_opens_its_page_and_the_bar_knows_what_is_done(
    app: Any, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, _ = await owner_client(client, owner_session, settings)
    done = await client.get("/dashboard/setup/done")
    assert done.status_code == 200
    bar = done.text.split('id="setup-steps"', 1)[1].split("</nav>", 1)[0]
    hrefs = [h.replace("&amp;", "&") for h in STEP_LINK.findall(bar)]
    # every step but the current one (the last page) is a link, in the wizard's order
    expected = [step_path(app, s) for s in ("profile", "services", "masters", "hours", "days_off")]
    assert hrefs[:5] == expected
    for href in hrefs[:5]:
        response = await client.get(href.split("#")[0])
        assert response.status_code == 200, href
        assert 'id="setup-steps"' in response.text, href  # each step shows the wizard's bar
    # the page says which steps are done: services, masters, hours (not the profile, no days off)
    assert bar.count("(done)") == 3
    assert 'aria-current="step"' in bar
    assert 'rel="prev"' in bar  # Back to days off

    # the bar a step's page fetches: the same steps with their state; Skip while not done
    fragment = await client.get("/dashboard/setup/steps?current=profile")
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert fragment.text.count("(done)") == 3
    assert "Skip" in fragment.text
    assert 'rel="prev"' not in fragment.text  # the first step has nothing before it
    owner_session.add(Holiday(business_id=business.id, on_date=_far_date(), name="x"))
    await owner_session.commit()
    fragment = await client.get("/dashboard/setup/steps?current=days_off")
    assert fragment.text.count("(done)") == 4
    assert re.search(r'class="button primary" href="[^"]*" rel="next">Next', fragment.text)

    # on a step's own page the bar is there when shown as a wizard step, and only then
    services = step_path(app, "services")
    with_bar = await client.get(services)
    assert 'id="setup-steps"' in with_bar.text
    assert 'hx-get="/dashboard/setup/steps?current=services"' in with_bar.text
    without = await client.get(services.split("?")[0])
    assert 'id="setup-steps"' not in without.text


def _far_date() -> Any:
    from datetime import date, timedelta

    return date.today() + timedelta(days=200)


async def test_the_last_page_gives_the_links_and_finishing_is_kept(
    app: Any, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await owner_client(client, owner_session, settings)
    web = f"{settings.public_base_url}/app/b/{business.slug}"
    telegram = f"https://t.me/{settings.telegram_bot_username}?startapp={business.slug}"
    page = await client.get("/dashboard/setup/done")
    assert page.status_code == 200
    assert f'value="{web}"' in page.text
    assert f'value="{telegram}"' in page.text
    assert "Clients cannot book yet" in page.text  # the profile is not filled in
    # the finish form carries the session's token (a plain form post, no script needed)
    assert f'name="csrf_token" value="{csrf}"' in page.text
    # the home page offers to continue (htmx fetches the card)
    home = await client.get("/dashboard/")
    assert 'hx-get="/dashboard/setup/prompt"' in home.text
    prompt = await client.get("/dashboard/setup/prompt")
    assert "Continue setup" in prompt.text
    assert "Profile" in prompt.text

    # finishing needs the session's token
    refused = await client.post("/dashboard/setup/done", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert await _finished_at(owner_session, business.id) is None
    finished = await client.post("/dashboard/setup/done", data=form(csrf), follow_redirects=False)
    assert finished.status_code == 303
    assert finished.headers["location"] == app.route_reverse("dashboard:home")
    first = await _finished_at(owner_session, business.id)
    assert first is not None
    again = await client.post("/dashboard/setup/done", data=form(csrf), follow_redirects=False)
    assert again.status_code == 303
    assert await _finished_at(owner_session, business.id) == first  # kept, not moved
    audited = (
        await owner_session.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE business_id = :b "
                "AND action = 'business.setup_done'"
            ),
            {"b": business.id},
        )
    ).scalar_one()
    assert audited == 1
    assert "Continue setup" not in (await client.get("/dashboard/setup/prompt")).text
    assert "Setup finished on" in (await client.get("/dashboard/setup/done")).text


async def _finished_at(session: AsyncSession, business_id: int) -> Any:
    await session.commit()  # a fresh snapshot
    return (
        await session.execute(select(Business.setup_done_at).where(Business.id == business_id))
    ).scalar_one()


def _modules(image: Image.Image, size: int) -> list[list[bool]]:
    """The dark modules of a QR code image drawn QR_SCALE px a module inside QR_BORDER."""
    pixels = image.convert("L")
    half = QR_SCALE // 2
    return [
        [
            pixels.getpixel(((QR_BORDER + x) * QR_SCALE + half, (QR_BORDER + y) * QR_SCALE + half))
            < 128
            for x in range(size)
        ]
        for y in range(size)
    ]


@pytest.mark.parametrize(("which", "suffix"), [(None, "telegram"), ("web", "web")])
async def test_qr_codes_are_valid_images_of_the_right_link(
    client: httpx.AsyncClient,
    owner_session: AsyncSession,
    settings: Settings,
    which: str | None,
    suffix: str,
) -> None:
    business, _ = await owner_client(client, owner_session, settings)
    link = {
        "telegram": f"https://t.me/{settings.telegram_bot_username}?startapp={business.slug}",
        "web": f"{settings.public_base_url}/app/b/{business.slug}",
    }[suffix]
    expected = segno.make(link, error=QR_ERROR, micro=False)
    query = f"?link={which}" if which else ""

    png = await client.get(f"/dashboard/qr.png{query}")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-disposition"] == (
        f'attachment; filename="pozapisi-{business.slug}-{suffix}.png"'
    )
    assert png.content.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(png.content))
    image.load()
    size = expected.symbol_size(scale=1, border=0)[0]
    assert image.size == ((size + 2 * QR_BORDER) * QR_SCALE,) * 2
    # the image's modules are those of the link's QR code, read back pixel by pixel
    assert _modules(image, size) == [[bool(m) for m in row] for row in expected.matrix]

    svg = await client.get(f"/dashboard/qr.svg{query}")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["content-disposition"] == (
        f'attachment; filename="pozapisi-{business.slug}-{suffix}.svg"'
    )
    root = ET.fromstring(svg.content)  # noqa: S314 - our own response, parsed to prove it is XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == str((size + 2 * QR_BORDER) * QR_SCALE)
    drawn = io.BytesIO()
    expected.save(drawn, kind="svg", scale=QR_SCALE, border=QR_BORDER)
    assert svg.content == drawn.getvalue()


async def test_only_the_owner_walks_the_wizard_and_an_admin_may_print_the_qr_code(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    master = await add_member(owner_session, business.id, "master", staff_id=business.staff_ids[0])
    csrf = await sign_in_as(client, owner_session, settings, master.account_id)
    for path in ("/dashboard/setup", "/dashboard/setup/done", "/dashboard/setup/steps",
                 "/dashboard/setup/prompt", "/dashboard/qr.svg", "/dashboard/qr.png"):  # fmt: skip
        assert (await client.get(path, follow_redirects=False)).status_code == 403, path
    refused = await client.post("/dashboard/setup/done", data=form(csrf), follow_redirects=False)
    assert refused.status_code == 403
    assert await _finished_at(owner_session, business.id) is None

    admin = await add_member(owner_session, business.id, "admin")
    client.cookies.clear()
    await sign_in_as(client, owner_session, settings, admin.account_id)
    assert (await client.get("/dashboard/setup", follow_redirects=False)).status_code == 403
    assert (await client.get("/dashboard/qr.png")).status_code == 200
    assert (await client.get("/dashboard/qr.svg?link=elsewhere")).status_code == 422
    # the nav offers Setup to the owner only
    assert "/dashboard/setup" not in (await client.get("/dashboard/")).text


async def test_the_telegram_link_opens_the_mini_app_on_the_business(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session)
    # Telegram opens the Mini App's main address with the link's start parameter
    opened = await client.get(f"/app/?tgWebAppStartParam={business.slug}", follow_redirects=False)
    assert opened.status_code in (302, 303)
    assert opened.headers["location"] == f"/app/b/{business.slug}"
    page = await client.get(opened.headers["location"])
    assert page.status_code == 200
    # anything that is no slug is ignored (the usual home page)
    other = await client.get("/app/?tgWebAppStartParam=../../etc", follow_redirects=False)
    assert other.headers.get("location") != "/app/b/../../etc"
