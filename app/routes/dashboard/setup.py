"""The onboarding wizard: a path through the dashboard's own pages, and its last page.

The steps are other parts' pages opened with ``?setup=1`` (profile, services, masters, hours,
days off); those pages include ``dashboard/_setup_steps.html``, the steps bar, which asks
:func:`steps_bar` (a Jinja global) for the steps' addresses. A step whose page does not exist
is shown without a link rather than failing the page. What is done is read from the business's
data (``app.domain.setup``), so ``/dashboard/setup`` resumes at the first step still to do.

The last page gives the business's public link, the Telegram link that opens the Mini App on
it, and a QR code of either to print (``/dashboard/qr.svg``, ``/dashboard/qr.png``)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import segno
from litestar import Request, Response, get, post
from litestar.exceptions import NoRouteMatchFoundException
from litestar.params import QueryParameter

from app import links
from app.domain import setup
from app.domain.setup import STEP_LABELS, STEPS, Progress
from app.i18n import gettext
from app.routes.dashboard.render import page, see_other
from app.routes.deps import DB, ActingMember, AppSettings, SignedInDashboard
from app.security.dashboard import NoBusiness, role, staff_actor
from app.settings import Settings

# each step's page, by route name; the first that exists is used (the profile may be its own
# page or a section of the settings page)
STEP_ROUTES: dict[str, tuple[tuple[str, str], ...]] = {
    "profile": (("dashboard:profile", ""), ("dashboard:settings", "#profile")),
    "services": (("dashboard:services", ""),),
    "masters": (("dashboard:masters", ""),),
    "hours": (("dashboard:schedules", ""),),
    "days_off": (("dashboard:closed-days", ""),),
    "done": (("dashboard:setup-done", ""),),
}
WIZARD_PARAM = "setup"  # ?setup=1: a page shown as a step of the wizard

# the QR code: medium error correction survives a smudged print; 10 px a module is about
# 3.5 cm for a business's link, sharp on an A6 card; the border is the standard's quiet zone
QR_ERROR = "m"
QR_SCALE = 10
QR_BORDER = 4
QrLink = Literal["telegram", "web"]


@dataclass(frozen=True, slots=True)
class StepLink:
    key: str
    label: str
    url: str | None  # None: that page does not exist (yet)
    current: bool
    done: bool | None  # None: not known on this page (the bar asks for it)


@dataclass(frozen=True, slots=True)
class StepsBar:
    steps: tuple[StepLink, ...]
    current: str | None
    back: str | None
    next: str | None
    current_done: bool | None
    refresh: str | None  # where the bar fetches the steps' state, when the page has not got it


def _step_path(request: Request[Any, Any, Any], step: str) -> tuple[str, str] | None:
    for name, fragment in STEP_ROUTES[step]:
        try:
            return request.app.route_reverse(name), fragment
        except NoRouteMatchFoundException:
            continue
    return None


def step_url(request: Request[Any, Any, Any], step: str) -> str | None:
    """A step's page opened as a wizard step, or None when that page does not exist."""
    found = _step_path(request, step)
    if found is None:
        return None
    path, fragment = found
    return f"{path}?{WIZARD_PARAM}=1{fragment}"


def steps_bar(
    request: Request[Any, Any, Any],
    progress: Progress | None = None,
    current: str | None = None,
) -> StepsBar | None:
    """The steps bar of a page (a Jinja global, ``setup_steps``): None unless the page is shown
    as a wizard step or the caller knows the progress. ``current`` defaults to the step whose
    page this is."""
    if progress is None and not request.query_params.get(WIZARD_PARAM):
        return None
    paths = {step: _step_path(request, step) for step in STEPS}
    if current is None:  # the step whose page this is, or one under it (a service's form)
        here = request.url.path
        current = next(
            (
                step
                for step, found in paths.items()
                if found and (here == found[0] or here.startswith(found[0].rstrip("/") + "/"))
            ),
            None,
        )
    urls = {step: step_url(request, step) for step in STEPS}
    steps = tuple(
        StepLink(
            key=step, label=gettext(STEP_LABELS[step]), url=urls[step], current=step == current,
            done=None if progress is None else step in progress.done,
        )
        for step in STEPS
    )  # fmt: skip
    back = forward = None
    if current is not None:
        index = STEPS.index(current)
        back = next((urls[s] for s in reversed(STEPS[:index]) if urls[s]), None)
        forward = next((urls[s] for s in STEPS[index + 1 :] if urls[s]), None)
    refresh = None
    if progress is None:
        refresh = request.app.route_reverse("dashboard:setup-steps") + (
            f"?current={current}" if current else ""
        )
    return StepsBar(
        steps=steps,
        current=current,
        back=back,
        next=forward,
        current_done=None if progress is None or current is None else current in progress.done,
        refresh=refresh,
    )


def public_links(settings: Settings, slug: str) -> dict[str, str]:
    """The business's links clients open: its page, and (with a bot) the Telegram link."""
    found = {"web": links.business_page(settings.public_base_url, slug)}
    if settings.telegram_bot_username:
        found["telegram"] = links.telegram_mini_app(settings.telegram_bot_username, slug)
    return found


def qr_code(link: str) -> segno.QRCode:
    return segno.make(link, error=QR_ERROR, micro=False)


@get("/setup", name="dashboard:setup", dependencies=role("owner"), include_in_schema=False)
async def setup_start(
    request: Request[Any, Any, Any], db: DB, member: ActingMember
) -> Response[Any]:
    """Resume the wizard: the first step still to do (or the last page)."""
    progress = await setup.progress(db, member)
    start = STEPS.index(progress.next_step)
    target = next(
        (url for url in (step_url(request, s) for s in STEPS[start:]) if url),
        request.app.route_reverse("dashboard:setup-done"),
    )
    return see_other(target)


@get(
    "/setup/done", name="dashboard:setup-done", dependencies=role("owner"), include_in_schema=False
)
async def setup_done(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    dashboard: SignedInDashboard,
    member: ActingMember,
) -> Response[Any]:
    progress = await setup.progress(db, member)
    return page(
        request, dashboard, "dashboard/setup/done.html",
        progress=progress, setup_bar=steps_bar(request, progress, "done"),
        links=public_links(settings, progress.slug),
        remaining=[(s, gettext(STEP_LABELS[s]), step_url(request, s)) for s in progress.remaining],
    )  # fmt: skip


@post(
    "/setup/done",
    name="dashboard:setup-finish",
    dependencies=role("owner"),
    include_in_schema=False,
    status_code=303,
)
async def setup_finish(
    request: Request[Any, Any, Any], db: DB, member: ActingMember
) -> Response[Any]:
    await setup.finish(db, member, staff_actor(request, member))
    return see_other(request.app.route_reverse("dashboard:home"))


@get(
    "/setup/steps",
    name="dashboard:setup-steps",
    dependencies=role("owner"),
    include_in_schema=False,
)
async def setup_steps(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    current: Annotated[str | None, QueryParameter(max_length=20)] = None,
) -> Response[Any]:
    """The steps bar with each step's state (htmx fetches it into the bar of a step's page)."""
    progress = await setup.progress(db, member)
    step = current if current in STEPS else None
    return page(
        request, dashboard, "dashboard/_setup_steps.html",
        setup_bar=steps_bar(request, progress, step),
    )  # fmt: skip


@get(
    "/setup/prompt",
    name="dashboard:setup-prompt",
    dependencies=role("owner"),
    include_in_schema=False,
)
async def setup_prompt(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    """The home page's "Continue set-up" card (htmx); empty once set-up is finished."""
    progress = await setup.progress(db, member)
    return page(
        request, dashboard, "dashboard/setup/_prompt.html",
        progress=progress,
        remaining=[gettext(STEP_LABELS[s]) for s in progress.remaining],
    )  # fmt: skip


def _qr_response(
    settings: Settings, dashboard: SignedInDashboard, which: QrLink | None, kind: str
) -> Response[bytes]:
    place = dashboard.workplace
    if place is None:  # the role guard lets no one through without a business
        raise NoBusiness()
    found = public_links(settings, place.slug)
    chosen = which or ("telegram" if "telegram" in found else "web")
    link = found.get(chosen) or found["web"]
    buffer = io.BytesIO()
    qr_code(link).save(buffer, kind=kind, scale=QR_SCALE, border=QR_BORDER)
    filename = f"pozapisi-{place.slug}-{chosen}.{kind}"
    return Response(
        buffer.getvalue(),
        media_type="image/svg+xml" if kind == "svg" else "image/png",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-cache",
        },
    )


@get("/qr.svg", name="dashboard:qr-svg", dependencies=role("admin"), include_in_schema=False)
async def qr_svg(
    settings: AppSettings,
    dashboard: SignedInDashboard,
    member: ActingMember,
    link: Annotated[QrLink | None, QueryParameter()] = None,
) -> Response[bytes]:
    """The QR code of the business's Telegram link (``?link=web``: its web page), to print."""
    return _qr_response(settings, dashboard, link, "svg")


@get("/qr.png", name="dashboard:qr-png", dependencies=role("admin"), include_in_schema=False)
async def qr_png(
    settings: AppSettings,
    dashboard: SignedInDashboard,
    member: ActingMember,
    link: Annotated[QrLink | None, QueryParameter()] = None,
) -> Response[bytes]:
    return _qr_response(settings, dashboard, link, "png")


ROUTES = [setup_start, setup_done, setup_finish, setup_steps, setup_prompt, qr_svg, qr_png]
