"""Privacy-policy versions: one file (``policy/versions.yml``) feeds the landing and the database.

``pozapisi db upgrade`` publishes what the file lists (``app.db.bootstrap``), under two rules
of policy 11.1 that :func:`check_publication` holds before anything is written:

* a published version never changes: its digests are what people consented to, its dates and
  summary what the notices told them. The database refuses it too (trigger
  ``policy_versions_published_immutable``); here the refusal names what differs and what to do;
* a new material version can still be announced 30 days ahead: it takes effect at least 30
  days after the day it reaches the database, whatever ``published_at`` says, since the
  notices start from that day (``app.domain.policy_notices``). A material version already in
  force is accepted only by a database with nobody to tell (a new installation).

"Today" for the policy is a Kazakh day (UTC+5), as on the landing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MATERIAL_NOTICE = timedelta(days=30)  # clause 11.1
# Kazakhstan has one time zone, UTC+5, since 2024-03-01 (landing_hooks/landing.py agrees)
KAZAKHSTAN = timedelta(hours=5)


def policy_today(now: datetime | None = None) -> date:
    """The day in Kazakhstan: the landing shows a version as in force from it."""
    return ((now or datetime.now(UTC)).astimezone(UTC) + KAZAKHSTAN).date()


def versions_file() -> Path:
    return Path(os.environ.get("POLICY_VERSIONS_FILE", REPO_ROOT / "policy" / "versions.yml"))


@dataclass(frozen=True, slots=True)
class PolicyFileVersion:
    version: str
    published_at: date
    effective_at: date
    material: bool
    purposes: list[str]
    digests: dict[str, str]
    summary: dict[str, str] = field(default_factory=dict)  # what changed, per language


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def read_versions(path: Path | None = None) -> list[PolicyFileVersion]:
    path = path or versions_file()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    base = path.parent.parent
    out = []
    for item in data["versions"]:
        digests = {
            lang: hashlib.sha256((base / rel).read_bytes()).hexdigest()
            for lang, rel in item["files"].items()
        }
        out.append(
            PolicyFileVersion(
                version=str(item["version"]),
                published_at=_as_date(item["published_at"]),
                effective_at=_as_date(item["effective_at"]),
                material=bool(item.get("material", False)),
                purposes=[str(p) for p in item["purposes"]],
                digests=digests,
                summary={str(k): str(v) for k, v in (item.get("summary") or {}).items()},
            )
        )
    return out


class PolicyVersionError(RuntimeError):
    """The versions file asks for what policy 11.1 forbids; the message says what to do."""


_COMPARED = ("digests", "purposes", "published_at", "effective_at", "material", "summary")


def _differences(stored: Mapping[str, Any], wanted: PolicyFileVersion) -> list[str]:
    changed = []
    for name in _COMPARED:
        old, new = stored[name], getattr(wanted, name)
        if name == "digests":
            changed += [f"the {lang} text" for lang in sorted(set(old) | set(new))
                        if old.get(lang) != new.get(lang)]  # fmt: skip
        elif (list(old) if name == "purposes" else old) != new:
            changed.append(name)
    return changed


def check_publication(
    stored: Mapping[str, Mapping[str, Any]],
    versions: Sequence[PolicyFileVersion],
    *,
    today: date,
    anyone_to_tell: bool,
) -> None:
    """Refuse a change to a published version and a material version announced too late.

    ``stored``: the rows already in the database by version (digests, purposes, published_at,
    effective_at, material, summary)."""
    for wanted in versions:
        row = stored.get(wanted.version)
        if row is not None:
            changed = _differences(row, wanted)
            if changed and row["published_at"] <= today:
                raise PolicyVersionError(
                    f"privacy policy version {wanted.version} was published on "
                    f"{row['published_at'].isoformat()} and cannot change "
                    f"({', '.join(changed)} differ from what was published): its digest is "
                    "what people consented to and its notice what they were told. Restore "
                    "its files and entry, and publish the change as a new version "
                    "(policy/README.md)"
                )
            continue
        if not wanted.material:
            continue
        earliest = max(wanted.published_at, today) + MATERIAL_NOTICE
        in_force = wanted.effective_at <= today
        if wanted.effective_at < earliest and (not in_force or anyone_to_tell):
            raise PolicyVersionError(
                f"privacy policy version {wanted.version} is a material change taking effect "
                f"on {wanted.effective_at.isoformat()}, but people must be told 30 days ahead "
                f"(policy 11.1) and the notice can start only now: set published_at to "
                f"{today.isoformat()} and effective_at (and the version) to "
                f"{earliest.isoformat()} or later"
            )
