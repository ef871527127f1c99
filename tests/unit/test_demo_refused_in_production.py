"""The demo business (and the owner's known password the dashboard will give it) exists for
development: production refuses to load it."""

from __future__ import annotations

import pytest

from app import cli


def test_pozapisi_demo_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POZAPISI_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "production-secret-key-0123456789-abcdef")
    # never reached: the refusal comes before any connection
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert cli.main(["demo"]) == 2
    assert "refused when POZAPISI_ENV=production" in capsys.readouterr().err
