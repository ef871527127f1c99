"""Plans and prices: one file (``policy/plans.yml``) feeds the landing and the database.

The landing build prints each plan's card from it (``landing_hooks/landing.py``), and ``pozapisi
db upgrade`` writes one ``plans`` row per plan (:func:`sync_plans`), so the price a visitor
reads is the price the app bills and the limits it enforces. Amounts are tiyn; a year costs
``yearly_months`` months, and the loader refuses a yearly price that says otherwise.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from app.db.urls import to_libpq

REPO_ROOT = Path(__file__).resolve().parents[2]
LANGS = ("en", "ru", "kk")
FEATURES = frozenset({"sms", "client_notes", "locations", "priority"})


class PlansFileError(ValueError):
    """The plans file says something the app cannot bill by; the message says what."""


@dataclass(frozen=True, slots=True)
class PlanSpec:
    code: str
    price_month_tiyn: int
    price_year_tiyn: int
    max_masters: int | None
    features: tuple[str, ...]
    name: dict[str, str]
    tagline: dict[str, str]
    points: dict[str, tuple[str, ...]]
    sort_order: int
    trial_days: int


@dataclass(frozen=True, slots=True)
class BillingTerms:
    """The whole file: the plans in their order and the rules around them."""

    currency: str
    yearly_months: int
    trial_plan: str
    trial_days: int
    grace_days: int
    plans: tuple[PlanSpec, ...]

    def plan(self, code: str) -> PlanSpec:
        return next(p for p in self.plans if p.code == code)


def plans_file() -> Path:
    return Path(os.environ.get("PLANS_FILE", REPO_ROOT / "policy" / "plans.yml"))


def _per_language(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != set(LANGS):
        raise PlansFileError(f"{where} must give exactly {', '.join(LANGS)}")
    return dict(value)


def parse_plans(data: Any) -> BillingTerms:
    """Check the file's content and return it; a mistake raises :class:`PlansFileError`."""
    if not isinstance(data, dict):
        raise PlansFileError("plans.yml must be a mapping")
    yearly = data.get("yearly_months")
    trial = data.get("trial") or {}
    grace = data.get("grace_days")
    if not isinstance(yearly, int) or not 1 <= yearly <= 12:
        raise PlansFileError("yearly_months must be a whole number of months from 1 to 12")
    if not isinstance(grace, int) or grace < 0:
        raise PlansFileError("grace_days must be a whole number of days")
    specs: list[PlanSpec] = []
    for place, item in enumerate(data.get("plans") or []):
        code = str(item.get("code", ""))
        where = f"plans.yml: plan {code or place!r}"
        month, year = item.get("price_month_tiyn"), item.get("price_year_tiyn")
        if not isinstance(month, int) or not isinstance(year, int) or month < 0:
            raise PlansFileError(f"{where}: prices are whole tiyn")
        if year != month * yearly:
            raise PlansFileError(
                f"{where}: price_year_tiyn must be price_month_tiyn × {yearly} = {month * yearly}"
            )
        masters = item.get("max_masters")
        if masters is not None and (not isinstance(masters, int) or masters < 1):
            raise PlansFileError(f"{where}: max_masters is a number from 1, or null")
        features = tuple(item.get("features") or ())
        if not set(features) <= FEATURES:
            raise PlansFileError(f"{where}: unknown features {sorted(set(features) - FEATURES)}")
        points = _per_language(item.get("points"), f"{where}: points")
        specs.append(
            PlanSpec(
                code=code,
                price_month_tiyn=month,
                price_year_tiyn=year,
                max_masters=masters,
                features=features,
                name=_per_language(item.get("name"), f"{where}: name"),
                tagline=_per_language(item.get("tagline"), f"{where}: tagline"),
                points={lang: tuple(str(p) for p in points[lang]) for lang in LANGS},
                sort_order=place,
                trial_days=int(trial.get("days", 0)) if code == trial.get("plan") else 0,
            )
        )
    codes = [s.code for s in specs]
    if not specs or len(set(codes)) != len(codes):
        raise PlansFileError("plans.yml: plans must be listed, each code once")
    if specs[0].price_month_tiyn != 0:
        raise PlansFileError("plans.yml: the first plan is the free one (a trial ends on it)")
    if trial and trial.get("plan") not in codes:
        raise PlansFileError(f"plans.yml: the trial plan {trial.get('plan')!r} is not listed")
    return BillingTerms(
        currency=str(data.get("currency", "KZT")),
        yearly_months=yearly,
        trial_plan=str(trial.get("plan", "")),
        trial_days=int(trial.get("days", 0)),
        grace_days=grace,
        plans=tuple(specs),
    )


def read_plans(path: Path | None = None) -> BillingTerms:
    path = path or plans_file()
    return parse_plans(yaml.safe_load(path.read_text(encoding="utf-8")))


@functools.cache
def terms() -> BillingTerms:
    """The file as this process read it first (the app and workers bill by it)."""
    return read_plans()


_UPSERT = (
    "INSERT INTO plans (code, name, price_tiyn, price_year_tiyn, max_staff, features, "
    "sort_order, trial_days) VALUES ($1, $2::jsonb, $3, $4, $5, $6::jsonb, $7, $8) "
    "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, price_tiyn = EXCLUDED.price_tiyn, "
    "price_year_tiyn = EXCLUDED.price_year_tiyn, max_staff = EXCLUDED.max_staff, "
    "features = EXCLUDED.features, sort_order = EXCLUDED.sort_order, "
    "trial_days = EXCLUDED.trial_days"
)
# businesses created before billing existed start their trial on the first upgrade with plans,
# each entered on its own audit chain (the owner may append to any); two statements, as the
# second must see the rows the first inserts
_TRIALS = (
    "SELECT array_agg(t.id) FROM (SELECT pz_start_trial(b.id) AS id FROM businesses b "
    "WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.business_id = b.id)) t "
    "WHERE t.id IS NOT NULL"
)
_TRIALS_AUDITED = (
    "SELECT count(audit_append(s.business_id, NULL, 'system', 'billing.trial_started', "
    "'subscription', s.id, NULL, jsonb_build_object('plan', p.code, 'ends_on', "
    "s.current_period_end), NULL, NULL, NULL)) "
    "FROM subscriptions s JOIN plans p ON p.id = s.plan_id WHERE s.id = ANY($1::bigint[])"
)


async def sync_plans(owner_url: str) -> int:
    """Write the plans file into ``plans`` (by code; a plan the file no longer lists stays, as
    subscriptions may still refer to it). Returns how many plans the file has."""
    path = plans_file()
    if not path.exists():
        return 0
    billing = read_plans(path)
    conn = await asyncpg.connect(to_libpq(owner_url))
    try:
        async with conn.transaction():
            for spec in billing.plans:
                await conn.execute(
                    _UPSERT,
                    spec.code,
                    json.dumps(spec.name, ensure_ascii=False, sort_keys=True),
                    spec.price_month_tiyn,
                    spec.price_year_tiyn,
                    spec.max_masters,
                    json.dumps(list(spec.features)),
                    spec.sort_order,
                    spec.trial_days,
                )
            started = await conn.fetchval(_TRIALS)
            if started:
                await conn.fetchval(_TRIALS_AUDITED, started)
    finally:
        await conn.close()
    return len(billing.plans)
