"""Privacy-policy versions: one file (``policy/versions.yml``) feeds the landing and the database."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


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
            )
        )
    return out
