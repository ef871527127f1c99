"""Plans come from one file (issue 16 item 1): ``policy/plans.yml`` is read by the landing build
and written into the database by ``db upgrade``, so the price a visitor reads is the price the
app charges — this test builds the landing and compares its price cards, in every language,
with the app's own plans rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.bootstrap import DatabaseUrls
from app.db.plans import PlansFileError, parse_plans, read_plans, sync_plans
from app.domain.subscriptions import BusinessReadOnly
from tests.factories import new_business

REPO = Path(__file__).resolve().parents[2]
PLANS_FILE = REPO / "policy" / "plans.yml"
LANGS = ("en", "ru", "kk")
CARD = re.compile(r'<div class="plan[^"]*">\s*<h3[^>]*>([^<]+)</h3>(.*?)</div>', re.S)
AMOUNT = re.compile(r"([\d&nbsp;]+)&nbsp;₸")


def tiyn_of(shown: str) -> int:
    """4&nbsp;990 → 499 000 tiyn (the landing shows whole tenge)."""
    return int(shown.replace("&nbsp;", "")) * 100


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("plans-site") / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(REPO / "mkdocs.yml"), "--site-dir", str(site_dir)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return site_dir


def test_the_file_states_the_prices_the_issue_names() -> None:
    billing = read_plans(PLANS_FILE)
    month = {p.code: p.price_month_tiyn for p in billing.plans}
    assert month == {"free": 0, "pro": 499_000, "business": 1_299_000}
    assert {p.code: p.max_masters for p in billing.plans} == {"free": 1, "pro": 5, "business": None}
    assert billing.yearly_months == 10
    for plan in billing.plans:  # a year is ten months: two months free
        assert plan.price_year_tiyn == plan.price_month_tiyn * 10
    assert (billing.trial_plan, billing.trial_days, billing.grace_days) == ("pro", 14, 7)
    pro = billing.plan("pro")
    assert set(pro.features) == {"sms", "client_notes"}
    assert not billing.plan("free").features


def test_a_yearly_price_that_is_not_ten_months_is_refused() -> None:
    data = yaml.safe_load(PLANS_FILE.read_text(encoding="utf-8"))
    data["plans"][1]["price_year_tiyn"] = 4_000_000
    with pytest.raises(PlansFileError, match="price_year_tiyn must be"):
        parse_plans(data)


async def test_db_upgrade_wrote_the_files_plans(owner_session: AsyncSession) -> None:
    rows = (await owner_session.execute(text(
        "SELECT code, price_tiyn, price_year_tiyn, max_staff, features, trial_days, name "
        "FROM plans ORDER BY sort_order"))).all()  # fmt: skip
    wanted = read_plans(PLANS_FILE).plans
    assert [r.code for r in rows] == [p.code for p in wanted]
    for row, plan in zip(rows, wanted, strict=True):
        assert (row.price_tiyn, row.price_year_tiyn, row.max_staff) == (
            plan.price_month_tiyn, plan.price_year_tiyn, plan.max_masters)  # fmt: skip
        assert list(row.features) == list(plan.features)
        assert row.trial_days == plan.trial_days
        assert row.name == plan.name


@pytest.mark.parametrize("lang", LANGS)
async def test_the_landing_shows_the_prices_the_app_charges(
    site: Path, owner_session: AsyncSession, lang: str
) -> None:
    rows = {r.code: r for r in (await owner_session.execute(text(
        "SELECT code, name, price_tiyn, price_year_tiyn, trial_days FROM plans"))).all()}  # fmt: skip
    page = (site / lang / "index.html").read_text(encoding="utf-8")
    cards = {name.strip(): body for name, body in CARD.findall(page)}
    assert len(cards) == len(rows), cards.keys()
    for row in rows.values():
        body = cards[row.name[lang]]
        amounts = [tiyn_of(found) for found in AMOUNT.findall(body)]
        expected = [row.price_tiyn] + ([row.price_year_tiyn] if row.price_tiyn else [])
        assert amounts == expected, (lang, row.code, amounts)
    trial = next(row for row in rows.values() if row.trial_days)  # the trial a business gets
    notes = re.findall(r'<p class="note">([^<]*)</p>', page)
    assert any(str(trial.trial_days) in n and trial.name[lang] in n for n in notes), notes


def test_read_only_is_explained_with_the_way_to_pay() -> None:
    refusal = BusinessReadOnly()
    assert refusal.status == 403 and refusal.offers_upgrade
    assert "nothing has been deleted" in refusal.message


async def test_an_upgrade_starts_the_trial_of_a_business_from_before_billing(
    owner_session: AsyncSession, database: DatabaseUrls
) -> None:
    business = await new_business(owner_session)
    # as a business made before migration 0024: no subscription yet
    await owner_session.execute(
        text("DELETE FROM subscriptions WHERE business_id = :b"), {"b": business.id}
    )
    await owner_session.commit()
    assert await sync_plans(database.owner) == 3
    await owner_session.commit()
    status = await owner_session.scalar(
        text("SELECT status FROM subscriptions WHERE business_id = :b"), {"b": business.id}
    )
    assert status == "trial"
    logged = await owner_session.scalar(text(
        "SELECT count(*) FROM audit_log WHERE business_id = :b "
        "AND action = 'billing.trial_started'"), {"b": business.id})  # fmt: skip
    assert logged == 1
    assert await sync_plans(database.owner) == 3  # again: nothing more
    await owner_session.commit()
    assert (
        await owner_session.scalar(
            text("SELECT count(*) FROM audit_log WHERE business_id = :b"), {"b": business.id}
        )
        == 1
    )
