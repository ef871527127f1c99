"""Which errors mean "the database is out of reach" rather than "this request is wrong".

A restart, a stop, a full server (``too many connections``) or an exhausted pool are the
operator's trouble, not the caller's: they are answered 503 with ``Retry-After``
(``app/routes/errors.py``), and the connection that saw them is never used again. The same test
decides whether a statement may be sent again on a fresh connection (``app/db/session.py``).
"""

from __future__ import annotations

import asyncpg
import sqlalchemy.exc

# 08: connection exceptions; 57P01-57P03: admin/crash shutdown, cannot connect now (starting or
# stopping); 53300: too many connections; 53400: a configured limit (e.g. the role's)
_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "53400"})
# asyncpg raises InterfaceError for a connection it will not use any more, but also for a
# programming error (a wrong argument count): only these messages are about the connection
_DEAD_CONNECTION = (
    "connection is closed",
    "another operation is in progress",
    "pool is closing",
    "pool is closed",
    "connection was closed",
)
_CHAIN_DEPTH = 6


class DatabaseUnavailable(Exception):
    """No connection could be had in the time allowed (the pool is exhausted, the server is
    down or full). Raised by ``app.db.session`` where a driver gives a bare timeout."""


def _links(exc: BaseException) -> list[BaseException]:
    """The error, what SQLAlchemy wrapped (``orig``) and the causes behind them."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending and len(seen) < _CHAIN_DEPTH:
        item = pending.pop(0)
        if item is None or any(item is known for known in seen):
            continue
        seen.append(item)
        pending.extend([getattr(item, "orig", None), item.__cause__, item.__context__])
    return seen


def _one_is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseUnavailable | sqlalchemy.exc.TimeoutError):
        return True  # SQLAlchemy's pool had no connection to give in pool_timeout
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError):
        return True  # class 08, ConnectionDoesNotExistError among them
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and (sqlstate in _SQLSTATES or sqlstate.startswith("08")):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        message = str(exc)
        return any(part in message for part in _DEAD_CONNECTION)
    if _busy_after_a_break(exc):
        return True
    # refused, reset, aborted, a socket file that is gone (the server stopped), or a connect
    # that timed out: all raised while reaching the server, never by a statement's input
    return isinstance(exc, ConnectionError | FileNotFoundError | TimeoutError)


def _busy_after_a_break(exc: BaseException) -> bool:
    """asyncpg's protocol still busy with an operation the server cut off (seen right after a
    restart): "cannot switch to state 12; another operation (2) is in progress". Raised while
    switching state, before anything is written to the socket."""
    return isinstance(exc, asyncpg.InternalClientError) and "another operation" in str(exc)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (raised by asyncpg, or wrapped by SQLAlchemy) means the database cannot
    be used right now: a 503 to the caller, and a connection to throw away."""
    return any(_one_is_unavailable(link) for link in _links(exc))


def was_not_sent(exc: BaseException) -> bool:
    """Whether asyncpg refused the statement before sending it (the connection was already
    closed, or busy with a broken earlier operation): sending it again cannot do it twice."""
    return _busy_after_a_break(exc) or (
        isinstance(exc, asyncpg.InterfaceError)
        and any(
            part in str(exc)
            for part in ("connection is closed", "another operation is in progress")
        )
    )
