"""The Redis store's sync driver under threads and forks, as WSGI servers use it.

The driver keeps its own stack of idle connections (no pool lock per call): these
tests prove that many threads at once never read each other's replies, that a forked
worker never shares its parent's sockets, and that ``close()`` closes what it made.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from sessionware.stores.redis import RedisStore
from sessionware.tokens import new_session_id, store_key
from tests.test_auth_support import REDIS_URL


@pytest.fixture
def named() -> Iterator[tuple[RedisStore, str]]:
    """A RedisStore whose connections carry a client name of their own, and that name."""
    name = "swtest-" + uuid.uuid4().hex[:12]
    prefix = f"swts{uuid.uuid4().hex[:8]}:"
    store = RedisStore.from_url(REDIS_URL, prefix=prefix, client_name=name)
    try:
        yield store, name
    finally:
        store.sync.close()
        raw = redis.Redis.from_url(REDIS_URL)
        try:
            for key in raw.scan_iter(match=prefix + "*", count=1000):  # type: ignore[attr-defined]
                raw.delete(key)
        finally:
            raw.close()


def connections(name: str) -> int:
    """How many connections Redis has open under the client name ``name``."""
    raw = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(1 for c in raw.client_list() if c.get("name") == name)
    finally:
        raw.close()


def new_key() -> str:
    return store_key(new_session_id())


def test_parallel_threads_each_read_their_own_record(named: tuple[RedisStore, str]) -> None:
    """32 threads loading and changing 32 records at once each get their own record's
    values back, every time (no reply read by the wrong thread)."""
    store, name = named
    face = store.sync
    keys = [new_key() for _ in range(32)]
    for i, key in enumerate(keys):
        face.create(key, {".v": str(i), "c": "1", "a": "1"}, 60)
    start = threading.Barrier(32)

    def work(i: int) -> list[str]:
        start.wait()
        wrong = []
        for n in range(60):
            assert face.apply(keys[i], {".n": str(n)}, [], 60)
            got = face.load(keys[i])
            if got is None or got.get(".v") != str(i) or got.get(".n") != str(n):
                wrong.append(f"thread {i} read {got!r}")
        return wrong

    with ThreadPoolExecutor(32) as pool:
        wrong = [w for ws in pool.map(work, range(32)) for w in ws]
    assert wrong == []
    # Connections are reused: at most one per thread that was ever sending at once.
    assert 1 <= connections(name) <= 32


def test_close_closes_the_connections_and_a_later_call_reconnects(
    named: tuple[RedisStore, str],
) -> None:
    """store.sync.close() leaves no connection of the store open; the next call works."""
    store, name = named
    key = new_key()
    store.sync.create(key, {".v": "1", "c": "1", "a": "1"}, 60)
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: store.sync.load(key), range(40)))[-1] == {
            ".v": "1",
            "c": "1",
            "a": "1",
        }
    assert connections(name) >= 1
    store.sync.close()
    assert connections(name) == 0
    assert store.sync.load(key) == {".v": "1", "c": "1", "a": "1"}
    assert connections(name) == 1


@pytest.mark.skipif(os.environ.get("CI") != "true" and not hasattr(os, "fork"), reason="needs fork")
# Python 3.12+ warns about fork() in a process with threads (earlier tests may leave
# some); the child here only talks to Redis and exits.
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_worker_never_shares_its_parents_connection(
    named: tuple[RedisStore, str],
) -> None:
    """A process forked after the parent used the store (gunicorn --preload) opens its own
    connection: parent and child reading at the same time both get their own records."""
    store, name = named
    face = store.sync
    mine, theirs = new_key(), new_key()
    face.create(mine, {".who": "parent", "c": "1", "a": "1"}, 60)
    face.create(theirs, {".who": "child", "c": "1", "a": "1"}, 60)
    assert connections(name) == 1  # the parent's, idle, inherited by the child below
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        ok = True
        try:
            os.close(ready_r)
            os.write(ready_w, b"x")
            for _ in range(300):
                got = face.load(theirs)
                ok = ok and got is not None and got.get(".who") == "child"
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    wrong = 0
    for _ in range(300):
        got = face.load(mine)
        wrong += got is None or got.get(".who") != "parent"
    _, status = os.waitpid(pid, 0)
    assert wrong == 0
    assert os.waitstatus_to_exitcode(status) == 0


def test_several_loads_go_in_one_round_trip_and_read_as_loads_one_by_one(
    named: tuple[RedisStore, str],
) -> None:
    """A login lists every session of its user (one load each): on the sync face the
    loads go as one pipeline, and each answers as its own ``load`` would, a missing or
    foreign key (not a hash) included."""
    from sessionware.stores.base import Call, call

    store, _ = named
    face = store.sync
    keys = [new_key() for _ in range(12)]
    for i, key in enumerate(keys):
        face.create(key, {"c": "1", "a": "1", ".n": str(i)}, 60)
    missing, foreign = new_key(), new_key()
    raw = redis.Redis.from_url(REDIS_URL)
    try:
        raw.set(store.record_key(foreign), "not a hash")
    finally:
        raw.close()
    wanted = [*keys, missing, foreign]
    one_by_one = [face.load(key) for key in wanted]
    assert one_by_one[:12] == [{"c": "1", "a": "1", ".n": str(i)} for i in range(12)]
    assert one_by_one[12:] == [None, None]

    sender = store._sender
    assert sender is not None
    sent = []
    pipeline = sender._pipeline

    def counted(commands: list[tuple[object, ...]]) -> list[object]:
        sent.append(len(commands))
        return pipeline(commands)

    sender._pipeline = counted  # type: ignore[method-assign]
    try:
        assert call(face, [Call("load", (key,)) for key in wanted]) == one_by_one
    finally:
        sender._pipeline = pipeline  # type: ignore[method-assign]
    assert sent == [len(wanted)]
