"""Message texts: one Jinja template per event in ``app/templates/notifications/``, in ru, kk and en.

A template defines blocks: ``subject``, ``body`` (Telegram's HTML subset: ``<b>``, ``<i>``,
``<a>``; newlines kept), ``sms`` (short plain text; a Cyrillic SMS part holds 70 characters) and
optionally ``button`` (its label; the relay decides where it points). The same template renders
twice — escaped for HTML, raw for plain text — so wording lives in one place and the ``b`` and
``link`` filters decide what markup each shape gets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup

from app import i18n
from workers.billing import BILLING_EVENTS
from workers.channels import Button, Rendered

TEMPLATE_DIR = Path(i18n.__file__).resolve().parent.parent / "templates" / "notifications"

CLIENT_BOOKING_EVENTS = (
    "booking.created",
    "booking.confirmed",
    "booking.cancelled",
    "booking.rescheduled",
    "booking.reminder",
    "booking.expired",  # left unconfirmed past the business's time to confirm (cancelled)
)
STAFF_BOOKING_EVENTS = tuple(
    f"staff.{event}" for event in CLIENT_BOOKING_EVENTS if event != "booking.reminder"
)
# messages carrying a single-use link to the dashboard — e-mails of app.domain.staff_accounts,
# and a team invitation (app.domain.team) by e-mail or SMS: the link is in the payload as
# "link", handed to the template and scrubbed once the row is finished
ACCOUNT_LINK_EVENTS = ("account.verify_email", "account.change_email", "account.reset_password",
                       "team.invitation")  # fmt: skip
# the operator console's messages (app.domain.operators, workers.ops_reminders): an answer to a
# person's data request (the operator's words in the payload) and the operators' daily reminder
OPS_EVENTS = ("data_request.answered", "ops.requests_due")
# Why each message is sent: one of the purposes of the privacy policy's section 4 (4.1 creating
# and confirming bookings, 4.2 notifications about them, 4.3 billing of businesses, 4.4 support,
# 4.5 security), named as the published policy names them (``purposes`` in policy/versions.yml).
# This is the one list of what PoZapisi may send: an event without a purpose has no text the
# renderer will produce, so the relay never sends it. There is no marketing purpose: a message
# of that kind would need a separate consent the policy does not ask for (policy 4, 3.1).
PURPOSES = ("booking", "notifications", "billing", "support", "security")
EVENT_PURPOSES: Mapping[str, str] = MappingProxyType(
    {
        # 4.1: a booking is made and confirmed, told to the client and to the business
        "booking.created": "booking",
        "booking.confirmed": "booking",
        "staff.booking.created": "booking",
        "staff.booking.confirmed": "booking",
        # 4.2: what happens to a booking afterwards, and the correspondence about it
        "booking.cancelled": "notifications",
        "booking.rescheduled": "notifications",
        "booking.reminder": "notifications",
        "booking.expired": "notifications",
        "staff.booking.cancelled": "notifications",
        "staff.booking.rescheduled": "notifications",
        "staff.booking.expired": "notifications",
        "message.business": "notifications",
        "staff.message.client": "notifications",
        # the notice of a material change the policy itself promises (11.1)
        "policy.notice": "notifications",
        # 4.3: the business owner's invoices, grace period and read-only mode
        **dict.fromkeys(BILLING_EVENTS, "billing"),
        # 4.4: a data request answered, an erasure confirmed, the operators' requests falling
        # due; a master invited to the business's dashboard (setting the service up for it)
        "data_request.answered": "support",
        "account.deleted": "support",
        "ops.requests_due": "support",
        "team.invitation": "support",
        # 4.5: sign-in codes and the links that prove an address or reset a password
        "otp.code": "security",
        "account.verify_email": "security",
        "account.change_email": "security",
        "account.reset_password": "security",
    }
)
EVENTS = frozenset(EVENT_PURPOSES)

_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


class UnknownEvent(KeyError):
    """No template for this event: a programming error, never retried."""


def _bold(value: Any, *, html: bool) -> Any:
    return Markup("<b>%s</b>") % value if html else value


def _link(url: Any, *, html: bool) -> Any:
    return Markup('<a href="%s">%s</a>') % (url, url) if html else url


def _environment(*, html: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=html,  # noqa: S701 - the plain-text twin (SMS, e-mail text) is not HTML
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=StrictUndefined,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(b=partial(_bold, html=html), link=partial(_link, html=html))
    return env


def _tidy(text: str) -> str:
    return _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("\n", text)).strip()


def _blocks(
    template: Template, context: Mapping[str, Any], only: tuple[str, ...] | None = None
) -> dict[str, str]:
    ctx = template.new_context(dict(context))
    return {
        name: _tidy("".join(block(ctx)))
        for name, block in template.blocks.items()
        if only is None or name in only
    }


class Renderer:
    """Renders an event for one recipient; thread-safe, build one per process."""

    def __init__(self, *, contact_email: str) -> None:
        self._html = _environment(html=True)
        self._text = _environment(html=False)
        self._contact_email = contact_email

    def render(
        self,
        event: str,
        locale: str,
        context: Mapping[str, Any],
        *,
        button_url: str | None = None,
        web_app: bool = True,
    ) -> Rendered:
        if event not in EVENTS:
            raise UnknownEvent(event)
        name = f"{event}.txt"
        full = {**context, "locale": locale, "contact_email": self._contact_email}
        with i18n.use_locale(locale):
            html = _blocks(self._html.get_template(name), full, only=("body",))
            text = _blocks(self._text.get_template(name), full)
        label = text.get("button", "")
        button = Button(label, button_url, web_app) if button_url and label else None

        def render_email() -> str:
            body = Markup(html["body"].replace("\n", "<br>\n"))  # noqa: S704 - escaped above
            with i18n.use_locale(locale):
                return self._html.get_template("_email.html").render(
                    **full, subject=text["subject"], body=body, button=button
                )

        return Rendered(
            subject=text["subject"],
            text=text["body"] + (f"\n\n{button.label}: {button.url}" if button else ""),
            html=html["body"],
            sms=text.get("sms") or text["body"],
            button=button,
            render_email=render_email,
        )
