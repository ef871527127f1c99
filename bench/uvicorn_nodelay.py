"""``python -m uvicorn``, unchanged but for one bug: ``--workers N`` leaves Nagle on.

uvicorn (0.54 here; Kludex/uvicorn#3149, open) binds the listening socket for ``--workers N``
with ``socket.socket(family=…)``, i.e. ``proto == 0``. Accepted sockets inherit it, and asyncio
only sets ``TCP_NODELAY`` when ``proto == IPPROTO_TCP``. With Nagle on, a response written in
two parts (headers, then body — what uvicorn's h11 protocol does) waits for the client's delayed
ACK: about 40 ms per keep-alive request on Linux, which caps every endpoint at
connections / 44 ms (~1,100 req/s at 50 connections) and hides what the app itself costs.

This launcher re-labels the bound socket as TCP before the workers get it (the fix proposed
upstream) and then runs uvicorn's own command line with the same arguments. The benchmark uses
it unless ``BENCH_SERVER=uvicorn``; it also measures the plain-text baseline once under stock
``python -m uvicorn`` so the bug's cost stays visible in every run.
"""

from __future__ import annotations

import socket

from uvicorn.config import Config
from uvicorn.main import main

_bind_socket = Config.bind_socket


def _bind_tcp_socket(self: Config) -> socket.socket:
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    return sock


Config.bind_socket = _bind_tcp_socket  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
