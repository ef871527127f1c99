"""Print a DSN for a PostgreSQL server that answers on HOST PORT, or nothing.

`make test` uses it to run the suite on the machine's server when one is there.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg


async def _probe(host: str, port: int) -> str | None:
    for user in ("postgres", "root"):
        try:
            conn = await asyncpg.connect(
                host=host, port=port, user=user, database="postgres", timeout=3
            )
        except (TimeoutError, OSError, asyncpg.PostgresError):
            continue
        try:
            if await conn.fetchval("select rolsuper from pg_roles where rolname = current_user"):
                return f"postgresql://{user}@{host}:{port}/postgres"
        finally:
            await conn.close()
    return None


def main(argv: list[str]) -> int:
    host = argv[1] if len(argv) > 1 else "127.0.0.1"
    port = int(argv[2]) if len(argv) > 2 else 5432
    dsn = asyncio.run(_probe(host, port))
    if dsn:
        print(dsn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
