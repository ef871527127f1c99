"""A loopback HTTP server that speaks the Telegram Bot API and the SMS provider's API.

It records every request (what arrived, and what it answered), and fails on demand: a script of
answers for the next requests, a chat that has blocked the bot, a gate that holds requests
*after* recording them — the moment a real provider has accepted a message but the sender has
not heard back yet, which is where a killed worker can cause a duplicate.

Served by uvicorn in a thread (a bare ASGI app: no framework needed). The benchmark uses it too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn

BOT_BLOCKED = "Forbidden: bot was blocked by the user"


@dataclass
class Call:
    api: str  # "telegram" or "sms"
    address: str  # chat id or phone number
    text: str
    body: dict[str, Any]
    status: int = 0  # what the stub answered (0 while held at the gate)
    at: float = field(default_factory=time.monotonic)

    @property
    def accepted(self) -> bool:
        return self.status == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProviderStub:
    def __init__(self, *, bot_token: str, sms_key: str = "sms-test-key") -> None:
        self.bot_token = bot_token
        self.sms_key = sms_key
        self.port = _free_port()
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._script: dict[str, deque[tuple[int, dict[str, Any]]]] = {
            "telegram": deque(),
            "sms": deque(),
        }
        self._blocked_chats: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.delay_s = 0.0
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # ---- control -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def telegram_url(self) -> str:
        return self.url

    @property
    def sms_url(self) -> str:
        return f"{self.url}/sms"

    def fail_next(self, api: str, times: int, status: int = 500, **body: Any) -> None:
        """The next ``times`` requests to ``api`` get ``status`` (and this body)."""
        with self._lock:
            self._script[api].extend([(status, body)] * times)

    def block_chat(self, chat_id: int | str) -> None:
        with self._lock:
            self._blocked_chats.add(str(chat_id))

    def hold(self) -> None:
        """Requests are recorded, then held unanswered until ``release``."""
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            for script in self._script.values():
                script.clear()
            self._blocked_chats.clear()
        self.gate.set()
        self.delay_s = 0.0

    # ---- what happened -------------------------------------------------------------------
    def snapshot(self, api: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if api is None or c.api == api]

    def accepted(self, api: str | None = None) -> list[Call]:
        return [c for c in self.snapshot(api) if c.accepted]

    def accepted_count_by(self, key: str = "address", api: str | None = None) -> Counter[str]:
        return Counter(getattr(c, key) for c in self.accepted(api))

    # ---- server --------------------------------------------------------------------------
    def start(self) -> ProviderStub:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
            access_log=False, timeout_keep_alive=30,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="provider-stub", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("provider stub did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        path = scope["path"]
        if path == f"/bot{self.bot_token}/sendMessage":
            status, answer = await self._telegram(body)
        elif path.startswith("/bot"):
            status, answer = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        elif path == "/sms/send":
            status, answer = await self._sms(body, headers)
        else:
            status, answer = 404, {"error": "not_found"}
        payload = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
        # the gate is opened from the tests' thread and loop: poll it rather than share an Event
        while not self.gate.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)

    def _scripted(self, api: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            return self._script[api].popleft() if self._script[api] else None

    async def _telegram(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            body = json.loads(raw)
            chat_id = str(body["chat_id"])
            text = str(body["text"])
        except (ValueError, KeyError, TypeError):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request"}
        call = Call("telegram", chat_id, text, body)
        await self._record(call)
        scripted = self._scripted("telegram")
        if scripted is not None:
            status, extra = scripted
            answer = {"ok": False, "error_code": status, "description": "Internal Server Error"}
            answer.update(extra)
        elif chat_id in self._blocked_chats:
            status, answer = 403, {"ok": False, "error_code": 403, "description": BOT_BLOCKED}
        else:
            status = 200
            answer = {
                "ok": True,
                "result": {"message_id": next(self._ids), "chat": {"id": chat_id}, "text": text},
            }
        call.status = status
        return status, answer

    async def _sms(self, raw: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if headers.get("authorization") != f"Bearer {self.sms_key}":
            return 401, {"error": "unauthorized"}
        try:
            body = json.loads(raw)
            recipient = str(body["recipient"])
            text = str(body["text"])
        except (ValueError, KeyError, TypeError):
            return 400, {"error": "invalid_request"}
        call = Call("sms", recipient, text, body)
        await self._record(call)
        scripted = self._scripted("sms")
        if scripted is not None:
            status, extra = scripted
            answer = {"error": "internal", **extra}
        elif not (recipient.startswith("+7") and recipient[1:].isdigit() and len(recipient) == 12):
            status, answer = 400, {"error": "invalid_recipient"}
        else:
            status, answer = 200, {"id": f"sms-{next(self._ids)}", "status": "accepted"}
        call.status = status
        return status, answer
