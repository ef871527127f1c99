"""The SAQ jobs and the runtime they share within one worker process.

* ``outbox_tick`` (cron, every 2 s) and each worker's LISTEN wake-up start ``relay_outbox``
  jobs when rows are due: up to ``RELAY_SLOTS`` per kicking worker (SAQ job keys
  ``relay_outbox:<worker id>:<slot>``, so a dead worker's stuck keys never block the living),
  each draining batches for up to ``RELAY_BUDGET_S`` seconds. Relays running side by side —
  in one process or many — never share a row (SKIP LOCKED).
* ``recover_stalled`` hands rows of a dead worker back after their lease.
* ``reminders_sweep`` and ``purge_expired`` keep reminders and expired secrets in order.
* ``enforce_retention`` (daily) removes what the privacy policy keeps only for a time (7.2, 7.3).
* ``expire_pending`` (every minute) cancels the bookings a manual-confirm business left
  unconfirmed past its time to live, and tells the client (``booking.expired``).
* ``announce_policy`` (every 5 minutes) queues the notice of a material policy change to
  everyone not yet told, from its publication until it takes effect (policy 11.1;
  ``app.domain.policy_notices``).
* ``backup_daily`` (daily, when BACKUP_DIR and BACKUP_KEY are set) makes an encrypted backup
  and removes those past BACKUP_KEEP_DAYS (policy 6.2, 10.5; ``app.domain.backups``).

Jobs use the worker role's DSN only (``DATABASE_WORKER_URL`` or derived): never the owner —
except ``backup_daily``: ``pg_dump`` must read every row past row-level security, which only
the owner (a superuser or BYPASSRLS role, ``DATABASE_URL``) may; it writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from saq import Queue
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.session import Pools, make_engine
from app.domain import backups, bookings, policy_notices
from app.integrations.tls import outbound_tls_context
from app.settings import Settings
from workers import maintenance, ops_reminders, reminders, retention
from workers.channels import Channel, require_encrypted
from workers.channels.dev import DevOutbox
from workers.channels.email import EmailChannel
from workers.channels.sms import SmsChannel
from workers.channels.telegram import TelegramChannel
from workers.notification_texts import Renderer
from workers.relay import Deliverer, Relay, RelayConfig, utcnow
from workers.wake import OutboxWake

RELAY_SLOTS = 4
RELAY_BUDGET_S = 20.0
RELAY_TIMEOUT_S = 120  # SAQ's own limit; the budget plus a slow last batch fits well inside

log = structlog.get_logger("pozapisi.jobs")


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The configured providers; a channel with nothing configured is simply absent."""
    tls = outbound_tls_context(settings.outbound_tls_min)
    production = settings.is_production
    timeout = settings.notify_timeout_s
    channels: dict[str, Channel] = {}
    if settings.telegram_bot_token:
        require_encrypted("TELEGRAM_API_URL", settings.telegram_api_url, production=production)
        channels["telegram"] = TelegramChannel(
            settings.telegram_api_url, settings.telegram_bot_token, timeout=timeout, tls=tls
        )
    if settings.sms_api_url:
        require_encrypted("SMS_API_URL", settings.sms_api_url, production=production)
        channels["sms"] = SmsChannel(
            settings.sms_api_url,
            settings.sms_api_key,
            sender=settings.sms_sender,
            timeout=timeout,
            tls=tls,
        )
    if settings.smtp_url:
        channels["email"] = EmailChannel(
            settings.smtp_url, mail_from=settings.mail_from, timeout=timeout, tls=tls
        )
    return channels


def build_relay(
    settings: Settings,
    engine: AsyncEngine,
    channels: Mapping[str, Channel],
    *,
    data_dir: Path | None = None,
) -> Relay:
    """The relay as every worker runs it (tests build it the same way, with their own clock)."""
    dev = None if settings.is_production else DevOutbox(data_dir or settings.data_dir)
    renderer = Renderer(contact_email=settings.contact_email_info)
    deliverer = Deliverer(settings, renderer, channels, dev)
    return Relay(engine, deliverer, RelayConfig.from_settings(settings))


@dataclass
class Runtime:
    """Everything a job needs, opened once per worker process."""

    settings: Settings
    engine: AsyncEngine
    channels: dict[str, Channel]
    relay: Relay
    queue: Queue
    worker_id: str
    wake: OutboxWake | None = None

    @classmethod
    def open(cls, settings: Settings, worker_url: str, queue: Queue, worker_id: str) -> Runtime:
        # a relay job holds two connections (claim/load, record); a few cron jobs beside them.
        # Its own role and pool: the workers keep sending while the app's pools are busy
        pools = Pools.of_worker(settings)
        engine = make_engine(
            worker_url,
            pool_size=pools.size,
            max_overflow=pools.overflow,
            pool_timeout_s=pools.timeout_s,
            connect_timeout_s=pools.connect_timeout_s,
            transaction_pooler=pools.transaction_pooler,
        )
        channels = build_channels(settings)
        relay = build_relay(settings, engine, channels)
        runtime = cls(settings, engine, channels, relay, queue, worker_id)
        # LISTEN holds a session: never through a transaction pooler (DATABASE_LISTEN_URL)
        runtime.wake = OutboxWake(settings.database_listen_url or worker_url, runtime.kick)
        return runtime

    async def kick(self) -> int:
        """Start relay jobs for what is due now: one per batch, at most ``RELAY_SLOTS``."""
        batch = self.relay.config.batch_size
        due = await self.relay.count_due(utcnow(), limit=RELAY_SLOTS * batch)
        wanted = min(RELAY_SLOTS, math.ceil(due / batch))
        started = 0
        for slot in range(RELAY_SLOTS):
            if started >= wanted:
                break
            job = await self.queue.enqueue(
                "relay_outbox",
                key=f"relay_outbox:{self.worker_id}:{slot}",
                slot=slot,
                timeout=RELAY_TIMEOUT_S,
                # a relay touches its job after every batch, and a batch takes at most about
                # one provider timeout: silent for longer means its worker died
                heartbeat=int(self.settings.notify_timeout_s * 2 + 5),
                retries=1,
                ttl=-1,  # forget finished relays at once, so their key is free again
            )
            started += job is not None  # None: that slot is already queued or running
        return started

    async def close(self) -> None:
        if self.wake is not None:
            await self.wake.stop()
        for channel in self.channels.values():
            await channel.aclose()
        await self.engine.dispose()


def _runtime(ctx: Mapping[str, Any]) -> Runtime:
    runtime: Runtime = ctx["runtime"]
    return runtime


async def relay_outbox(ctx: dict[str, Any], *, slot: int = 0) -> dict[str, int]:
    """Drain due notifications (one of up to RELAY_SLOTS running side by side)."""
    job = ctx.get("job")
    counts = await _runtime(ctx).relay.drain(
        budget_s=RELAY_BUDGET_S, heartbeat=job.update if job is not None else None
    )
    if counts:
        log.info("relay.drained", slot=slot, **counts)
    return dict(counts)


async def outbox_tick(ctx: dict[str, Any]) -> int:
    return await _runtime(ctx).kick()


async def recover_stalled(ctx: dict[str, Any]) -> int:
    runtime = _runtime(ctx)
    recovered = await runtime.relay.recover_stalled(utcnow())
    if recovered:
        await runtime.kick()
    return recovered


async def reminders_sweep(ctx: dict[str, Any]) -> dict[str, int]:
    result = await reminders.sweep(_runtime(ctx).engine, utcnow())
    if result.scheduled or result.withdrawn:
        log.info("reminders.sweep", **asdict(result))
    return asdict(result)


async def ops_requests_due(ctx: dict[str, Any]) -> int:
    """Remind operators of the data-subject requests due within 2 business days (8.6)."""
    runtime = _runtime(ctx)
    queued = await ops_reminders.remind(runtime.engine, utcnow())
    if queued:
        log.info("ops.requests_due", operators=queued)
        await runtime.kick()
    return queued


async def purge_expired(ctx: dict[str, Any]) -> dict[str, int]:
    result = await maintenance.purge_expired(_runtime(ctx).engine, utcnow())
    return asdict(result)


async def enforce_retention(ctx: dict[str, Any]) -> dict[str, int]:
    result = await retention.enforce(_runtime(ctx).engine, utcnow())
    if any(asdict(result).values()):
        log.info("retention.enforced", **asdict(result))
    return asdict(result)


async def announce_policy(ctx: dict[str, Any]) -> dict[str, int]:
    """Notices of material policy changes to everyone not yet told (policy 11.1)."""
    runtime = _runtime(ctx)
    announced = await policy_notices.fan_out(runtime.engine, utcnow())
    if announced.total:
        log.info("policy.announced", **announced.queued)
        await runtime.kick()  # the notices are due now
    return announced.queued


async def backup_daily(ctx: dict[str, Any]) -> dict[str, Any]:
    """An encrypted backup, then rotation; a failure is logged and shown in /healthz details."""
    settings = _runtime(ctx).settings
    if settings.database_url is None:
        log.error("backup.failed", error="no owner DSN (DATABASE_URL) in this worker")
        return {"error": "no DATABASE_URL"}
    config = backups.BackupConfig.from_settings(settings)
    outcome = await backups.run_scheduled(config, settings.database_url, now=utcnow())
    removed = [path.name for path in outcome.removed]
    if outcome.error is not None:
        log.error("backup.failed", error=outcome.error, removed=removed)
    if outcome.backup is not None:
        log.info("backup.done", file=outcome.backup.path.name, size=outcome.backup.size,
                 removed=removed)  # fmt: skip
    return {"error": outcome.error, "size": outcome.backup.size if outcome.backup else None,
            "removed": removed}  # fmt: skip


EXPIRY_BATCH = 100  # bookings per transaction; the job goes on until none is overdue


async def expire_bookings(engine: AsyncEngine, now: datetime) -> int:
    """Cancel every overdue pending booking, a batch per transaction (a bad row stops only its
    batch; the next minute tries again)."""
    total = 0
    while True:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            done = await bookings.expire_pending(session, now=now, limit=EXPIRY_BATCH)
        total += len(done)
        if len(done) < EXPIRY_BATCH:
            return total


async def expire_pending(ctx: dict[str, Any]) -> int:
    runtime = _runtime(ctx)
    expired = await expire_bookings(runtime.engine, utcnow())
    if expired:
        log.info("bookings.expired", count=expired)
        await runtime.kick()  # the clients' messages are due now
    return expired
