"""The development outbox: with no provider configured, messages are written to files.

``DATA_DIR/outbox/<id>-<event>.txt``, one file a message, readable by whoever runs the demo
(sign-in codes included: that is how a developer signs in without an SMS gateway). Nothing is
dropped and nothing is printed: the log line names the file, never the text. Never used in
production (``POZAPISI_ENV=production``), where an unreachable person is a visible failure.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

from workers.channels import Rendered

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class DevLetter:
    notification_id: int
    event: str
    intended: str  # "telegram:123…", "sms:+7…", "email:…", or "account 12 (no address)"


class DevOutbox:
    name = "dev"

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "outbox"

    def path_for(self, letter: DevLetter) -> Path:
        return self.folder / f"{letter.notification_id:09d}-{_UNSAFE.sub('_', letter.event)}.txt"

    async def deliver(self, letter: DevLetter, message: Rendered) -> str:
        return await asyncio.to_thread(self._write, letter, message)

    def _write(self, letter: DevLetter, message: Rendered) -> str:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.path_for(letter)
        body = (
            f"To: {letter.intended}\nEvent: {letter.event}\nSubject: {message.subject}\n"
            + (
                f"Button: {message.button.label} -> {message.button.url}\n"
                if message.button
                else ""
            )
            + f"\n{message.text}\n\n--- SMS ---\n{message.sms}\n"
        )
        tmp = path.with_suffix(".tmp")
        # written whole, then renamed: a reader never sees half a message
        with open(
            os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8"
        ) as f:
            f.write(body)
        tmp.replace(path)
        return path.name

    def read(self) -> list[tuple[str, str]]:
        """(file name, content) of every message, oldest first: what an operator reads."""
        if not self.folder.exists():
            return []
        return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(self.folder.glob("*.txt"))]
