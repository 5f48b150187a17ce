"""Memory bench: bytes per session in each store, and Redis at a million sessions.

Run ``python bench/size.py`` (after ``./scripts/test``; needs ``redis-server`` on the
PATH and, for the PostgreSQL line, the server at ``--postgres``). It makes one real
session holding a user id through ``SessionMiddleware`` in process, then writes
``--sessions`` records of that shape (fresh keys) through each store's own ``create``,
in concurrent batches, and prints:

- SQLite: the database file (with its WAL) per session and per 100k sessions;
- PostgreSQL: ``pg_total_relation_size`` (table, TOAST and indexes) of a table of the
  run's own, dropped afterwards;
- Redis: ``MEMORY USAGE`` of the keys (mean of a sample) and the growth of
  ``used_memory``, in a redis-server the script starts on a spare port.

``--redis-million`` instead loads 1,000,000 sessions (``--million`` to change it) into
its own redis-server and reports ``used_memory`` growth and the latency of
``store.load`` (p50/p99 of one-at-a-time loads of random sessions) at that size.
Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402 - needs the path set just above

TTL = 30 * 60.0
BATCH = 2000  # creates in flight at once: enough for group commit and pipelines


async def sample_record() -> dict[str, str]:
    """The fields sessionware stores for a new session holding a user id, taken from a
    real request through the middleware (so the sizes follow the record format)."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from sessionware import SessionMiddleware
    from sessionware.stores import MemoryStore

    created: list[dict[str, str]] = []

    class Recording(MemoryStore):
        """A MemoryStore that keeps what ``create`` was given."""

        async def create(self, key: str, fields: Any, ttl: float) -> None:
            created.append(dict(fields))
            await super().create(key, fields, ttl)

    async def login(request: Request) -> PlainTextResponse:
        request.session["user_id"] = "42"
        return PlainTextResponse("in")

    app = Starlette(routes=[Route("/login", login)])
    store = Recording(development=True)
    secret = "bench-secret-" + "x" * 40  # a bench-only value, never a real secret
    app.add_middleware(
        SessionMiddleware, store=store, secrets=[secret], cookie_name="sid", secure=False
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        resp = await client.get("/login")
    if resp.status_code != 200 or len(created) != 1:
        raise SystemExit(f"the sample login failed: {resp.status_code}, {len(created)} creates")
    return created[0]


def new_keys(n: int) -> list[str]:
    """Store keys of fresh session ids, as the middleware derives them."""
    from sessionware.tokens import new_session_id, store_key

    return [store_key(new_session_id()) for _ in range(n)]


async def fill(
    create: Callable[[str, dict[str, str], float], Awaitable[None]], keys: list[str],
    fields: dict[str, str], label: str,
) -> float:  # fmt: skip
    """Create a record for every key, ``BATCH`` at a time; the seconds it took."""
    start = time.perf_counter()
    for i in range(0, len(keys), BATCH):
        await asyncio.gather(*(create(k, fields, TTL) for k in keys[i : i + BATCH]))
        if i and i % (20 * BATCH) == 0:
            print(f"  {label}: {i} sessions", flush=True)
    return time.perf_counter() - start


def files_size(path: str) -> int:
    """Bytes of a SQLite database and its -wal and -shm files."""
    return sum(os.path.getsize(p) for p in (path, path + "-wal", path + "-shm")
               if os.path.exists(p))  # fmt: skip


async def sqlite_size(n: int, fields: dict[str, str], tmp: str) -> list[str]:
    """One table row for SQLiteStore."""
    from sessionware.stores import SQLiteStore

    path = os.path.join(tmp, "size.sqlite3")
    store = SQLiteStore(path)
    await store.create(new_keys(1)[0], fields, TTL)  # the schema and first pages
    await store.close()
    before = files_size(path)
    store = SQLiteStore(path)
    took = await fill(store.create, new_keys(n), fields, "sqlite")
    await store.close()  # the last connection checkpoints the WAL into the file
    grown = files_size(path) - before
    return ["SQLiteStore", "file (+WAL)", f"{grown / n:.0f}", f"{grown / n * 1e5 / 1e6:.1f} MB",
            f"{n / took:.0f}"]  # fmt: skip


async def postgres_size(n: int, fields: dict[str, str], url: str) -> list[str]:
    """One table row for PostgresStore, on a table of this run's own (dropped after)."""
    import psycopg

    from sessionware.stores import PostgresStore

    table = f"bench_size_{secrets.token_hex(4)}"
    store = PostgresStore(url, table=table)
    query = "SELECT pg_total_relation_size(%s) + pg_total_relation_size(%s)"
    try:
        await store.create(new_keys(1)[0], fields, TTL)
        with psycopg.connect(url, autocommit=True) as conn:
            before = conn.execute(query, (table, f"{table}_users")).fetchone()[0]  # type: ignore[index]
            took = await fill(store.create, new_keys(n), fields, "postgres")
            conn.execute(f"VACUUM ANALYZE {table}")
            after = conn.execute(query, (table, f"{table}_users")).fetchone()[0]  # type: ignore[index]
    finally:
        await store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_users")
    grown = after - before
    return ["PostgresStore", "table+TOAST+indexes", f"{grown / n:.0f}",
            f"{grown / n * 1e5 / 1e6:.1f} MB", f"{n / took:.0f}"]  # fmt: skip


def used_memory(client: Any) -> int:
    """Redis ``used_memory`` in bytes."""
    return int(client.info("memory")["used_memory"])


async def redis_fill(url: str, n: int, fields: dict[str, str]) -> tuple[Any, list[str], int, float]:
    """(store, keys, used_memory growth, seconds): ``n`` sessions through RedisStore."""
    import redis

    from sessionware.stores import RedisStore

    client = redis.Redis.from_url(url)
    before = used_memory(client)
    store = RedisStore.from_url(url)
    keys = new_keys(n)
    took = await fill(store.create, keys, fields, "redis")
    grown = used_memory(client) - before
    client.close()
    return store, keys, grown, took


def memory_usage(url: str, sample: int) -> float:
    """Mean ``MEMORY USAGE`` of up to ``sample`` session keys (SCAN order)."""
    import redis

    client = redis.Redis.from_url(url)
    sizes = []
    for key in client.scan_iter(count=1000):
        if b"u{" not in key:  # the per-user index sets are not sessions
            sizes.append(int(client.memory_usage(key) or 0))  # type: ignore[arg-type]
        if len(sizes) >= sample:
            break
    client.close()
    return statistics.mean(sizes)


async def redis_size(n: int, fields: dict[str, str], tmp: str) -> list[str]:
    """One table row for RedisStore, in a redis-server of its own."""
    proc, url = c.start_redis(tmp)
    try:
        store, _, grown, took = await redis_fill(url, n, fields)
        await store.close()
        usage = memory_usage(url, 1000)
    finally:
        c.stop(proc)
    return ["RedisStore", f"MEMORY USAGE {usage:.0f}; used_memory", f"{grown / n:.0f}",
            f"{grown / n * 1e5 / 1e6:.1f} MB", f"{n / took:.0f}"]  # fmt: skip


async def redis_million(n: int, reads: int, fields: dict[str, str], tmp: str) -> None:
    """Load ``n`` sessions into a redis-server of our own; memory and load latency."""
    proc, url = c.start_redis(tmp)
    try:
        store, keys, grown, took = await redis_fill(url, n, fields)
        usage = memory_usage(url, 1000)
        # The run's own million key strings are not a server's garbage: keep the
        # collector from walking them in the middle of a timed load.
        gc.collect()
        gc.freeze()
        latencies = []
        for key in random.sample(keys, min(reads, len(keys))):
            start = time.perf_counter()
            got = await store.load(key)
            latencies.append((time.perf_counter() - start) * 1e6)
            if got is None:
                raise SystemExit("a session written a moment ago did not load")
        await store.close()
    finally:
        c.stop(proc)
    cuts = statistics.quantiles(latencies, n=100)
    print(f"\nRedisStore with {n} sessions (filled in {took:.0f} s, {n / took:.0f} creates/s)\n")
    print(c.table(["measure", "value"], [
        ["used_memory growth", f"{grown / 1e6:.1f} MB ({grown / n:.0f} bytes/session)"],
        ["MEMORY USAGE per key (mean of 1000)", f"{usage:.0f} bytes"],
        [f"store.load p50 ({len(latencies)} one at a time)", f"{cuts[49]:.0f} us"],
        ["store.load p99", f"{cuts[98]:.0f} us"],
    ], left=1))  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    fields = await sample_record()
    size = sum(len(k) + len(v) for k, v in fields.items())
    print(f"record of a session holding a user id: {len(fields)} fields, {size} bytes")
    with tempfile.TemporaryDirectory(prefix="sw-size-") as tmp:
        if args.redis_million:
            await redis_million(args.million, args.reads, fields, tmp)
            return
        rows = []
        for name in args.stores.split(","):
            print(f"{name}: {args.sessions} sessions", flush=True)
            if name == "sqlite":
                rows.append(await sqlite_size(args.sessions, fields, tmp))
            elif name == "postgres":
                rows.append(await postgres_size(args.sessions, fields, args.postgres))
            elif name == "redis":
                rows.append(await redis_size(args.sessions, fields, tmp))
            else:
                raise SystemExit(f"unknown store {name!r}: sqlite, postgres or redis")
    print(f"\n{args.sessions} sessions holding a user id, written through each store's create\n")
    head = ["store", "measured", "bytes/session", "per 100k", "creates/s"]
    print(c.table(head, rows, left=2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,postgres,redis")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="conninfo of a database where a scratch table may be made",
    )
    parser.add_argument(
        "--redis-million", action="store_true", help="load --million sessions into Redis"
    )
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=20_000, help="timed loads (--redis-million)")
    args = parser.parse_args()
    if args.sessions < 1 or args.million < 1 or args.reads < 100:
        raise SystemExit("--sessions and --million at least 1, --reads at least 100")
    if args.redis_million or "redis" in args.stores.split(","):
        c.need("redis-server")
    facts = c.machine_facts("stores in process; redis-server of the run's own", "none")
    print(facts, flush=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
