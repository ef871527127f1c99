"""The outbox relay: delivers ``notifications`` rows at least once, and no more than it must.

A row's life: ``pending`` → claimed (``sending``, committed) → sent to the provider →
``sent`` | ``pending`` again with a backed-off ``next_attempt_at`` | ``failed`` | ``cancelled``.

* **Two workers never send the same row**: claiming is ``FOR UPDATE SKIP LOCKED`` and commits
  ``sending`` before any provider is called.
* **A worker that dies mid-send loses nothing**: a claimed row holds a lease (for a ``sending``
  row, ``next_attempt_at`` is when its lease ends); past it, ``recover_stalled`` puts the row
  back to ``pending`` and counts a *possible duplicate* in ``payload.possible_duplicates`` —
  the provider may have accepted the message just before the worker died, and Telegram and
  most SMS APIs take no idempotency key. Each result is committed the moment the provider
  answers, row by row, to keep that window as small as it can be.
* **A slow worker never outlives its lease**: each send has a hard deadline (the provider
  timeout), and a row whose lease could run out before its answer is recorded is not sent but
  released — so a busy machine delays messages instead of repeating them.
* **Stale workers cannot overwrite newer truth**: ``attempts`` is the claim's fencing token; a
  result is written only if the row still carries the attempt number it was claimed with.
* **Provider trouble backs off** exponentially with jitter; a permanent refusal (bot blocked,
  no such number) fails the row at once, with its reason at the head of ``last_error``.
* **Withdrawn consent is checked after the claim** (policy 8.4): a row claimed just before the
  person withdrew is cancelled, not sent, unless it is already in the provider's hands.
* **Reminders are checked at send time**: never for a booking that has started or is no longer
  live, and after downtime only the latest due reminder of a booking is sent.

Every function takes ``now``, so tests drive the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from jinja2 import TemplateError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import links
from app.db.faults import is_unavailable
from app.i18n import N_, gettext, use_locale
from app.settings import Settings
from workers.billing import BILLING_EVENTS, billing_fields
from workers.channels import (
    BLOCKED,
    GAVE_UP,
    NETWORK,
    NO_CHANNEL,
    REJECTED,
    Channel,
    PermanentError,
    Rendered,
    TransientError,
)
from workers.channels.dev import DevLetter, DevOutbox
from workers.context import (
    BatchContext,
    BookingInfo,
    BusinessInfo,
    booking_fields,
    business_fields,
    excerpt,
    load_batch,
    message_id_of,
    policy_fields,
    shorten,
)
from workers.notification_texts import ACCOUNT_LINK_EVENTS, OPS_EVENTS, Renderer, UnknownEvent
from workers.routing import Route, candidates, choose

log = structlog.get_logger("pozapisi.relay")

REMINDER = "booking.reminder"
OTP = "otp.code"
ACCOUNT_DELETED = "account.deleted"
MESSAGE_EVENTS = ("message.business", "staff.message.client")  # correspondence, quoted
# provider requests in flight per channel and worker process. Telegram takes ~30 messages/s per
# bot; 8 at ~100 ms round trip is ~80/s. More only costs: httpx's pool work grows with its
# connections (measured on loopback: 4-8 in flight deliver more per second than 12-20).
MAX_IN_FLIGHT = 8
# how long a sign-in code is valid when its row does not say (payload "ttl_min");
# app.domain.otp issues codes for 5 minutes
DEFAULT_OTP_TTL = timedelta(minutes=5)
NO_NAME = N_("not given")
# writing an outcome that met a dead connection: first wait, doubling up to the cap, for as
# long as the row's lease allows (a database restart takes about half a second)
RECORD_RETRY_FIRST_S = 0.1
RECORD_RETRY_CAP_S = 2.0

_COLUMNS = (
    "n.id, n.business_id, n.booking_id, n.account_id, n.address, n.event, n.channel, n.locale, "
    "n.payload, n.attempts, n.scheduled_at, n.created_at"
)
_CLAIM = text(
    "WITH due AS (SELECT id FROM notifications WHERE status = 'pending' "
    "AND scheduled_at <= :now AND (next_attempt_at IS NULL OR next_attempt_at <= :now) "
    "ORDER BY scheduled_at LIMIT :limit FOR UPDATE SKIP LOCKED) "
    "UPDATE notifications n SET status = 'sending', attempts = n.attempts + 1, "
    "next_attempt_at = :lease_until FROM due WHERE n.id = due.id "
    f"RETURNING {_COLUMNS}"
)
_COUNT_DUE = text(
    "SELECT count(*) FROM (SELECT 1 FROM notifications WHERE status = 'pending' "
    "AND scheduled_at <= :now AND (next_attempt_at IS NULL OR next_attempt_at <= :now) "
    "LIMIT :limit) due"
)
_RECOVER = text(
    "WITH stalled AS (SELECT id FROM notifications WHERE status = 'sending' "
    "AND next_attempt_at <= :now FOR UPDATE SKIP LOCKED) "
    "UPDATE notifications n SET status = 'pending', next_attempt_at = NULL, last_error = :error, "
    "payload = n.payload || jsonb_build_object('possible_duplicates', "
    "COALESCE((n.payload ->> 'possible_duplicates')::int, 0) + 1) "
    "FROM stalled WHERE n.id = stalled.id RETURNING n.id"
)
# what a finished row must not keep: a sign-in code, an e-mail's single-use link, the address
# of a person who left
_SCRUB = (
    "payload = CASE WHEN event = 'otp.code' THEN payload - 'code' "
    f"WHEN event IN ({', '.join(repr(e) for e in ACCOUNT_LINK_EVENTS)}) THEN payload - 'link' "
    "ELSE payload END, "
    "address = CASE WHEN event = 'account.deleted' THEN NULL ELSE address END"
)
_MARK_SENT = text(
    "UPDATE notifications SET status = 'sent', sent_at = :now, delivered_channel = :channel, "
    f"provider_message_id = :provider_id, next_attempt_at = NULL, {_SCRUB} "
    "WHERE id = :id AND attempts = :attempts AND status IN ('sending', 'pending')"
)
_MARK_RETRY = text(
    "UPDATE notifications SET status = 'pending', next_attempt_at = :at, last_error = :error, "
    "payload = CASE WHEN :maybe_delivered THEN payload || jsonb_build_object("
    "'possible_duplicates', COALESCE((payload ->> 'possible_duplicates')::int, 0) + 1) "
    "ELSE payload END "
    "WHERE id = :id AND attempts = :attempts AND status = 'sending'"
)
_MARK_FINAL = text(
    "UPDATE notifications SET status = :status, next_attempt_at = NULL, last_error = :error, "
    f"{_SCRUB} WHERE id = :id AND attempts = :attempts AND status = 'sending'"
)
_RELEASE = text(
    "UPDATE notifications SET status = 'pending', next_attempt_at = NULL "
    "WHERE id = :id AND attempts = :attempts AND status = 'sending'"
)
# failed because the person blocked the bot: the next messages go by SMS or e-mail instead
_MARK_BLOCKED = text(
    "WITH failed AS (UPDATE notifications SET status = 'failed', next_attempt_at = NULL, "
    f"last_error = :error, {_SCRUB} WHERE id = :id AND attempts = :attempts "
    "AND status = 'sending' RETURNING account_id) "
    "UPDATE accounts SET allows_write_to_pm = false WHERE id IN (SELECT account_id FROM failed)"
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RelayConfig:
    batch_size: int = 20
    lease: timedelta = timedelta(seconds=60)
    send_timeout_s: float = 10.0  # the whole provider call, connection and answer included
    lease_margin_s: float = 1.0  # time to record the answer after it arrives
    retry_base_s: float = 5.0
    retry_cap_s: float = 1800.0
    max_attempts: int = 12  # ~1.7 h of retries at the default base
    otp_ttl: timedelta = DEFAULT_OTP_TTL

    @classmethod
    def from_settings(cls, settings: Settings) -> RelayConfig:
        return cls(
            lease=timedelta(seconds=settings.notify_lease_s),
            send_timeout_s=settings.notify_timeout_s,
            retry_base_s=settings.notify_retry_base_s,
        )

    @property
    def send_window_s(self) -> float:
        """How long after its claim a row may still be handed to a provider."""
        return self.lease.total_seconds() - self.send_timeout_s - self.lease_margin_s

    def backoff(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """Exponential, with "equal jitter": half fixed, half random, so retries spread out."""
        delay = min(self.retry_cap_s, self.retry_base_s * 2 ** max(0, attempts - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - not security
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_cap_s))
        return timedelta(seconds=delay)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    business_id: int | None
    booking_id: int | None
    account_id: int | None
    address: str | None
    event: str
    channel: str
    locale: str
    payload: dict[str, Any]
    attempts: int
    scheduled_at: datetime
    created_at: datetime
    claimed_mono: float = 0.0  # time.monotonic() at the claim: the lease is measured from it


@dataclass(frozen=True, slots=True)
class Sent:
    channel: str
    provider_id: str | None


@dataclass(frozen=True, slots=True)
class Retry:
    error: str
    at: datetime
    retry_after: float | None = None  # what the provider asked for (429 Retry-After)
    maybe_delivered: bool = False  # no answer came back: the retry may repeat the message


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    why: str


@dataclass(frozen=True, slots=True)
class Released:
    """Not sent: too little of the lease was left. Back to pending, for any worker."""


Outcome = Sent | Retry | Failed | Cancelled | Released


def _error(reason: str, detail: str) -> str:
    return f"{reason}: {detail}"[:500] if detail else reason


def withdrawal(row: Claimed, batch: BatchContext, now: datetime, otp_ttl: timedelta) -> str | None:
    """Why this row must not be sent any more, or None to send it."""
    account = batch.accounts.get(row.account_id) if row.account_id else None
    if account is not None and account.deleted and row.event != ACCOUNT_DELETED:
        return "account deleted"
    if row.id in batch.consent_withdrawn:
        return "consent withdrawn"
    if row.booking_id is not None:
        booking = batch.bookings.get(row.booking_id)
        if booking is None:
            return "booking not found"
        if row.event == REMINDER:
            if not booking.is_live:
                return f"booking {booking.status}"
            if booking.start_at <= now:
                return "booking already started"
            latest = batch.latest_due_reminder.get(row.booking_id)
            if latest is not None and latest > row.scheduled_at:
                return "superseded by a later reminder"
    if row.event == OTP:
        ttl = row.payload.get("ttl_min")
        lifetime = timedelta(minutes=ttl) if isinstance(ttl, int) else otp_ttl
        if now > row.created_at + lifetime:
            return "code expired before it could be sent"
    return None


class Deliverer:
    """Turns one claimed row into one message on one channel."""

    def __init__(
        self,
        settings: Settings,
        renderer: Renderer,
        channels: Mapping[str, Channel],
        dev: DevOutbox | None,
    ) -> None:
        self.send_timeout_s = settings.notify_timeout_s
        self._in_flight = {name: asyncio.Semaphore(MAX_IN_FLIGHT) for name in channels}
        self.settings = settings
        self.renderer = renderer
        self.channels = dict(channels)
        self.dev = dev

    def _context(
        self, row: Claimed, batch: BatchContext, locale: str
    ) -> tuple[dict[str, Any], str | None, bool]:
        """Template variables, the button's URL (if any) and whether it opens the Mini App."""
        base = self.settings.public_base_url
        booking: BookingInfo | None = batch.bookings.get(row.booking_id or 0)
        business: BusinessInfo | None = batch.businesses.get(
            booking.business_id if booking else (row.business_id or 0)
        )
        with use_locale(locale):
            no_name = gettext(NO_NAME)
        fields: dict[str, Any] = {}
        url: str | None = None
        if business is not None:
            fields.update(business_fields(business))
            url = links.business_page(base, business.slug)
        if booking is not None and business is not None:
            fields.update(booking_fields(booking, business, locale, no_name))
            if row.event in (
                "booking.created",
                "booking.confirmed",
                "booking.rescheduled",
                REMINDER,
            ):
                url = links.booking_page(base, booking.id)
        if row.event.startswith("staff."):
            url = None  # business people work in the dashboard, not the client's Mini App
        if row.event in MESSAGE_EVENTS:
            message = batch.messages.get(message_id_of(row.payload) or 0)
            name = (message.client_name if message else None) or no_name
            fields.update(
                excerpt=excerpt(message.body) if message else "",
                client=name,
                client_short=shorten(name),
            )
        if row.event == OTP:
            ttl = row.payload.get("ttl_min")
            minutes = ttl if isinstance(ttl, int) else int(DEFAULT_OTP_TTL.total_seconds() // 60)
            fields.update(code=str(row.payload.get("code", "")), minutes=minutes)
        if row.event in ACCOUNT_LINK_EVENTS:
            fields.update(link=str(row.payload.get("link", "")))
        if row.event in OPS_EVENTS:  # what the operator wrote; the requests due, by id
            fields.update(row.payload)
        if row.event in BILLING_EVENTS:  # to the owner: the way is the dashboard, no button
            fields.update(billing_fields(row.payload, locale))
            return fields, None, False
        if row.event == "policy.notice":
            fields.update(policy_fields(row.payload, locale, self.settings.landing_base_url))
            link = str(fields["version_url"])
            return fields, link if link.startswith(("https://", "http://")) else None, False
        # Telegram opens only https Mini Apps; on a plain-http dev server there is no button
        return fields, url if url and url.startswith("https://") else None, True

    def _route(self, row: Claimed, batch: BatchContext) -> tuple[Route | None, list[Route]]:
        account = batch.accounts.get(row.account_id) if row.account_id else None
        booking = batch.bookings.get(row.booking_id or 0)
        business = batch.businesses.get(booking.business_id if booking else (row.business_id or 0))
        routes = candidates(
            channel=row.channel, address=row.address, account=account, business=business
        )
        return choose(routes, self.channels), routes

    async def deliver(
        self, row: Claimed, batch: BatchContext, now: datetime, *, send_by: float = math.inf
    ) -> Outcome:
        """Render and send; ``send_by`` (monotonic) is the last moment the provider may be
        called without the lease running out before the answer is recorded."""
        account = batch.accounts.get(row.account_id) if row.account_id else None
        locale = account.locale if account is not None else row.locale
        route, routes = self._route(row, batch)
        if route is None and self.dev is None:
            wanted = ", ".join(r.channel for r in routes) or "none"
            return Failed(NO_CHANNEL, _error(NO_CHANNEL, f"reachable via: {wanted}"))
        try:
            fields, url, web_app = self._context(row, batch, locale)
            message = self.renderer.render(
                row.event, locale, fields, button_url=url, web_app=web_app
            )
        except UnknownEvent:
            return Failed(REJECTED, _error(REJECTED, f"no template for event {row.event!r}"))
        except (LookupError, ValueError, TemplateError) as exc:
            # a payload the template cannot use: retrying would fail the same way
            return Failed(REJECTED, _error(REJECTED, f"cannot render: {type(exc).__name__}"))
        if route is None:
            assert self.dev is not None
            return await self._to_dev(row, routes, message)
        try:
            async with self._in_flight[route.channel]:  # waiting here costs no attempt
                if time.monotonic() > send_by:
                    return Released()
                async with asyncio.timeout(self.send_timeout_s):
                    provider_id = await self.channels[route.channel].send(route.address, message)
        except TimeoutError:
            return Retry(_error(NETWORK, "no answer in time"), now, maybe_delivered=True)
        except PermanentError as exc:
            return Failed(exc.reason, _error(exc.reason, exc.detail))
        except TransientError as exc:
            return Retry(_error(exc.reason, exc.detail), now, exc.retry_after, exc.maybe_delivered)
        return Sent(route.channel, provider_id[:100] if provider_id else None)

    async def _to_dev(self, row: Claimed, routes: list[Route], message: Rendered) -> Outcome:
        assert self.dev is not None
        intended = (
            f"{routes[0].channel}:{routes[0].address}"
            if routes
            else f"account {row.account_id} (no address)"
        )
        name = await self.dev.deliver(DevLetter(row.id, row.event, intended), message)
        log.info("notification.dev_outbox", notification_id=row.id, kind=row.event, file=name)
        return Sent("dev", None)


class _Recorder:
    """Writes outcomes, one statement each (autocommit), over one connection in turn.

    The provider has already acted when an outcome is written, so losing the write would send
    the message again once the lease runs out. A write that meets a dead connection (the
    database restarted or blinked) is therefore tried again on a fresh one, backing off, for as
    long as the row's lease leaves time; each write is fenced by the claim's attempt number
    and does nothing a second time, so repeating it is safe."""

    def __init__(self, engine: AsyncEngine, config: RelayConfig) -> None:
        self._engine = engine
        self._config = config
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # already broken: nothing left to release
                await conn.close()

    async def _execute(self, row: Claimed, statement: Any, params: dict[str, Any]) -> None:
        # stop while the lease still holds: past it another worker may claim the row anew
        claimed = row.claimed_mono or time.monotonic()
        until = claimed + self._config.lease.total_seconds() - self._config.lease_margin_s
        delay = RECORD_RETRY_FIRST_S
        while True:
            try:
                if self._conn is None:
                    self._conn = await self._engine.connect()
                await self._conn.execute(statement, params)
                return
            except Exception as error:
                if not is_unavailable(error):
                    raise
                await self.close()
                if time.monotonic() + delay > until:
                    raise
                log.warning(
                    "notification.record_retry",
                    notification_id=row.id,
                    error=type(error).__name__,
                    in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECORD_RETRY_CAP_S)

    async def record(self, row: Claimed, outcome: Outcome, now: datetime) -> None:
        fence: dict[str, Any] = {"id": row.id, "attempts": row.attempts}
        params: dict[str, Any]
        if isinstance(outcome, Sent):
            statement = _MARK_SENT
            params = {
                **fence,
                "now": now,
                "channel": outcome.channel,
                "provider_id": outcome.provider_id,
            }
        elif isinstance(outcome, Retry):
            statement = _MARK_RETRY
            params = {
                **fence,
                "at": outcome.at,
                "error": outcome.error,
                "maybe_delivered": outcome.maybe_delivered,
            }
        elif isinstance(outcome, Failed):
            blocked = outcome.reason == BLOCKED and row.account_id is not None
            statement = _MARK_BLOCKED if blocked else _MARK_FINAL
            params = {**fence, "error": outcome.error}
            if not blocked:
                params["status"] = "failed"
        elif isinstance(outcome, Released):
            statement, params = _RELEASE, {**fence}
        else:
            statement, params = _MARK_FINAL, {**fence, "status": "cancelled", "error": outcome.why}
        async with self._lock:
            await self._execute(row, statement, params)
        _log(row, outcome)


def _log(row: Claimed, outcome: Outcome) -> None:
    common = {"notification_id": row.id, "kind": row.event, "attempt": row.attempts}
    if isinstance(outcome, Sent):
        log.debug("notification.sent", channel=outcome.channel, **common)
    elif isinstance(outcome, Retry):
        log.info("notification.retry", error=outcome.error, at=outcome.at.isoformat(), **common)
    elif isinstance(outcome, Failed):
        log.warning("notification.failed", error=outcome.error, **common)
    elif isinstance(outcome, Released):
        log.info("notification.released", **common)
    else:
        log.info("notification.cancelled", why=outcome.why, **common)


class Relay:
    """Claims due rows, hands them to the Deliverer, records each outcome at once."""

    def __init__(
        self,
        engine: AsyncEngine,
        deliverer: Deliverer,
        config: RelayConfig | None = None,
    ) -> None:
        self.engine = engine
        # each outcome is one statement, committed on its own: no BEGIN/COMMIT round trips
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.deliverer = deliverer
        self.config = config or RelayConfig()

    async def count_due(self, now: datetime, limit: int) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(_COUNT_DUE, {"now": now, "limit": limit})).scalar_one())

    async def recover_stalled(self, now: datetime) -> int:
        """Rows whose worker died mid-send go back to ``pending``, counted as possible repeats."""
        error = "lease_expired: the worker stopped while sending; the message may repeat"
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(_RECOVER, {"now": now, "error": error})).scalars())
        if ids:
            log.warning("notification.lease_expired", count=len(ids), ids=ids[:20])
        return len(ids)

    async def claim(self, now: datetime, limit: int | None = None) -> list[Claimed]:
        params = {
            "now": now,
            "limit": limit or self.config.batch_size,
            "lease_until": now + self.config.lease,
        }
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_CLAIM, params)).all()
        claimed = time.monotonic()  # after the commit: the lease can only be longer than this
        return [Claimed(**row._mapping, claimed_mono=claimed) for row in rows]

    async def _load(self, rows: list[Claimed], now: datetime) -> BatchContext:
        async with self.engine.connect() as conn:
            return await load_batch(
                conn,
                account_ids=(r.account_id for r in rows),
                business_ids=(r.business_id for r in rows),
                booking_ids=(r.booking_id for r in rows),
                message_ids=(message_id_of(r.payload) for r in rows),
                reminder_booking_ids=(r.booking_id for r in rows if r.event == REMINDER),
                now=now,
                notification_ids=(r.id for r in rows),
            )

    async def process(self, rows: list[Claimed], now: datetime) -> Counter[str]:
        """Deliver a claimed batch concurrently; returns outcome counts (sent, retry, …)."""
        if not rows:
            return Counter()
        batch = await self._load(rows, now)
        # one connection records the whole batch, an outcome the moment it is known: a batch
        # costs the database two connections however many messages are in flight
        recorder = _Recorder(self._autocommit, self.config)
        try:
            outcomes = await asyncio.gather(*(self._one(row, batch, now, recorder) for row in rows))
        finally:
            await recorder.close()
        return Counter(outcomes)

    async def _one(
        self, row: Claimed, batch: BatchContext, now: datetime, recorder: _Recorder
    ) -> str:
        try:
            outcome = await self._decide(row, batch, now)
        except Exception as exc:  # one bad row must not sink its batch
            log.exception("notification.internal_error", notification_id=row.id, kind=row.event)
            outcome = Retry(_error("internal", type(exc).__name__), now)
        if isinstance(outcome, Retry):
            outcome = self._retry_or_give_up(row, outcome)
        await recorder.record(row, outcome, now)
        return type(outcome).__name__.lower()

    async def _decide(self, row: Claimed, batch: BatchContext, now: datetime) -> Outcome:
        if row.attempts > self.config.max_attempts:
            return Failed(GAVE_UP, _error(GAVE_UP, f"{row.attempts - 1} attempts"))
        why = withdrawal(row, batch, now, self.config.otp_ttl)
        if why is not None:
            return Cancelled(why)
        send_by = row.claimed_mono + self.config.send_window_s
        return await self.deliverer.deliver(row, batch, now, send_by=send_by)

    def _retry_or_give_up(self, row: Claimed, retry: Retry) -> Outcome:
        if row.attempts >= self.config.max_attempts:
            return Failed(GAVE_UP, _error(GAVE_UP, retry.error))
        return Retry(
            retry.error,
            retry.at + self.config.backoff(row.attempts, retry.retry_after),
            maybe_delivered=retry.maybe_delivered,
        )

    async def record(self, row: Claimed, outcome: Outcome, now: datetime) -> None:
        """Record one outcome on a connection of its own (a batch shares one instead)."""
        recorder = _Recorder(self._autocommit, self.config)
        try:
            await recorder.record(row, outcome, now)
        finally:
            await recorder.close()

    async def run_once(self, now: datetime | None = None) -> Counter[str]:
        """Claim one batch and deliver it."""
        now = now or utcnow()
        return await self.process(await self.claim(now), now)

    async def drain(
        self,
        *,
        clock: Callable[[], datetime] = utcnow,
        budget_s: float = 20.0,
        heartbeat: Callable[[], Awaitable[Any]] | None = None,
    ) -> Counter[str]:
        """Deliver batches until nothing is due or ``budget_s`` has passed."""
        deadline = time.monotonic() + budget_s
        total: Counter[str] = Counter()
        while time.monotonic() < deadline:
            now = clock()
            rows = await self.claim(now)
            if not rows:
                break
            total += await self.process(rows, now)
            if heartbeat is not None:
                await heartbeat()
        return total
