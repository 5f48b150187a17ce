"""SQLiteStore: the store contract, plus WAL, reopening, purging, and two processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from sessionware.exceptions import SessionCollisionError, StoreError, StoreUnavailableError
from sessionware.stores import SQLiteStore
from sessionware.stores.base import Store
from sessionware.testing import ManualClock, StoreContract, new_key

ROOT = Path(__file__).resolve().parents[2]


class TestSQLiteStore(StoreContract):
    """The contract, on a SQLite file in tmp_path driven by a hand-moved clock."""

    uses_clock = True

    @pytest.fixture
    async def backend(self, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Store]:
        """A fresh SQLiteStore in its own file."""
        s = SQLiteStore(tmp_path / "sessions.db", clock=clock)
        yield s
        await s.close()


class TestSQLiteStoreReadModifyWrite(TestSQLiteStore):
    """The contract again on the path a SQLite without ``json_patch`` takes for
    ``apply`` (read the row, merge in Python, write it back), concurrent applies and
    writes racing a delete included."""

    @pytest.fixture(autouse=True)
    def _without_json_patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from sessionware.stores import sqlite as module

        monkeypatch.setattr(module, "_JSON_PATCH", False)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """A SQLiteStore on the real clock, closed afterwards."""
    s = SQLiteStore(tmp_path / "s.db")
    yield s
    await s.close()


def _put_raw_row(path: Path, key: str, row: str | bytes) -> None:
    """Write a row as another tool (or damage) would, live for ten minutes."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO sessionware_sessions (key, fields, expires) VALUES (?, ?, ?)",
            (key, row, time.time() + 600),
        )


@pytest.mark.anyio
async def test_file_is_in_wal_mode(sqlite_store: SQLiteStore) -> None:
    """The database file uses the write-ahead log, so readers never wait for the writer."""
    await sqlite_store.create(new_key(), {".a": "1"}, 60)
    with sqlite3.connect(sqlite_store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.anyio
async def test_sessions_survive_reopening_the_file(tmp_path: Path) -> None:
    """A record written by one store object is loaded by a new one on the same file."""
    key = new_key()
    first = SQLiteStore(tmp_path / "s.db")
    await first.create(key, {".user": '"ada"'}, 3600)
    await first.close()
    second = SQLiteStore(tmp_path / "s.db")
    try:
        assert dict(await second.load(key) or {}) == {".user": '"ada"'}
    finally:
        await second.close()


@pytest.mark.anyio
async def test_purge_expired_deletes_dead_rows_and_index(tmp_path: Path) -> None:
    """purge_expired deletes expired rows and their per-user index rows, keeping live ones."""
    clock = ManualClock()
    store = SQLiteStore(tmp_path / "s.db", clock=clock)
    try:
        live, dead = new_key(), new_key()
        await store.create(live, {".a": "1"}, 3600)
        await store.create(dead, {".a": "1"}, 1)
        await store.link("u1", dead)
        await store.link("u1", live)
        clock.advance(2)
        assert await store.purge_expired() == 1
        with sqlite3.connect(store.path) as conn:
            keys = {r[0] for r in conn.execute("SELECT key FROM sessionware_sessions")}
            index = {r[0] for r in conn.execute("SELECT key FROM sessionware_user_sessions")}
        assert keys == {live}
        assert index == {live}
    finally:
        await store.close()


@pytest.mark.anyio
async def test_purge_uses_the_expiry_index(sqlite_store: SQLiteStore) -> None:
    """The purge query is planned through the sessionware_sessions_expires index, not a scan."""
    await sqlite_store.create(new_key(), {".a": "1"}, 60)
    with sqlite3.connect(sqlite_store.path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN DELETE FROM sessionware_sessions WHERE expires <= ?", (0.0,)
        ).fetchall()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "sessionware_sessions_expires" in detail


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from sessionware.stores import SQLiteStore

    async def main() -> None:
        store = SQLiteStore(sys.argv[1])
        key = sys.argv[2]
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(100):
            assert await store.apply(key, {f".p{i}": str(i)}, [], 3600)
            await store.incr(sys.argv[3], "n", 1, 3600)
        await store.close()

    asyncio.run(main())
    """
)

_SYNC_WRITER = textwrap.dedent(
    """
    import sys
    from sessionware.stores import SQLiteStore

    store = SQLiteStore(sys.argv[1])
    key = sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(100):
        assert store.sync.apply(key, {f".p{i}": str(i)}, [], 3600)
        store.sync.incr(sys.argv[3], "n", 1, 3600)
    store.sync.close()
    """
)


@pytest.mark.anyio
@pytest.mark.parametrize("script", [_WRITER, _SYNC_WRITER], ids=["async", "sync"])
async def test_two_processes_writing_one_file_both_land(tmp_path: Path, script: str) -> None:
    """A second process writing the same file at the same time, through either face,
    loses none of either's writes."""
    path = tmp_path / "shared.db"
    store = SQLiteStore(path)
    key, counter = new_key(), new_key("th:")
    try:
        await store.create(key, {"c": "0"}, 3600)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        with subprocess.Popen(
            [sys.executable, "-c", script, str(path), key, counter],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        ) as proc:
            assert proc.stdout is not None and proc.stdin is not None
            assert proc.stdout.readline().strip() == "ready"
            proc.stdin.write("go\n")
            proc.stdin.flush()
            for i in range(100):
                assert await store.apply(key, {f".q{i}": str(i)}, [], 3600)
                await store.incr(counter, "n", 1, 3600)
            rc = await anyio.to_thread.run_sync(proc.wait, 60)
        assert rc == 0
        fields = dict(await store.load(key) or {})
        assert {f".p{i}" for i in range(100)} <= fields.keys()
        assert {f".q{i}" for i in range(100)} <= fields.keys()
        assert dict(await store.load(counter) or {}) == {"n": "200"}
    finally:
        await store.close()


@pytest.mark.anyio
async def test_file_holds_only_hashes_of_ids(tmp_path: Path) -> None:
    """Reading the SQLite file byte for byte finds the SHA-256 store key, never the raw id."""
    from sessionware.tokens import new_session_id, store_key

    sid = new_session_id()
    store = SQLiteStore(tmp_path / "s.db")
    await store.create(store_key(sid), {".user": '"ada"'}, 3600)
    await store.link("u1", store_key(sid))
    await store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert store_key(sid).encode() in raw
    assert sid.encode() not in raw


@pytest.mark.anyio
async def test_corrupt_file_raises_store_unavailable(tmp_path: Path) -> None:
    """A file that is not a database surfaces as StoreUnavailableError, never sqlite3's own."""
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    key = new_key()
    await store.create(key, {".a": "1"}, 60)
    await store.close()
    for p in tmp_path.iterdir():
        p.write_bytes(b"this is not a database, just text " * 200)
    with pytest.raises(StoreUnavailableError):
        SQLiteStore(path)


def test_refuses_in_memory_paths_and_missing_folders(tmp_path: Path) -> None:
    """":memory:" and a path in a missing folder are refused with a message saying what to do."""
    with pytest.raises(ValueError, match="MemoryStore"):
        SQLiteStore(":memory:")
    with pytest.raises(ValueError, match="does not exist"):
        SQLiteStore(tmp_path / "nope" / "s.db")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.anyio
async def test_new_file_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    """A new database and its -wal and -shm files are 0600, even under a permissive umask."""
    old = os.umask(0o002)
    try:
        store = SQLiteStore(tmp_path / "s.db")
        await store.create(new_key(), {".a": "1"}, 60)
        assert await store.load(new_key()) is None  # a reader connection too
        paths = [tmp_path / n for n in ("s.db", "s.db-wal", "s.db-shm")]
        assert all(p.exists() for p in paths)
        assert [_mode(p) for p in paths] == [0o600] * 3
        await store.close()
    finally:
        os.umask(old)


@pytest.mark.anyio
async def test_file_mode_none_leaves_the_mode_to_the_umask(tmp_path: Path) -> None:
    """file_mode=None creates the file as the umask says (for a group-shared file)."""
    old = os.umask(0o027)
    try:
        store = SQLiteStore(tmp_path / "s.db", file_mode=None)
        await store.create(new_key(), {".a": "1"}, 60)
        await store.close()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "s.db") == 0o640


@pytest.mark.anyio
async def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    """Opening an existing database never changes the mode its operator chose."""
    path = tmp_path / "s.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o640)
    store = SQLiteStore(path)
    await store.create(new_key(), {".a": "1"}, 60)
    await store.close()
    assert _mode(path) == 0o640


# -- the sync face ------------------------------------------------------------------


def _in_threads(n: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``n`` threads released together; re-raise the first failure."""
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


def test_sync_incr_from_eight_threads_counts_every_call(tmp_path: Path) -> None:
    """Eight threads incrementing one counter through store.sync at once lose no call:
    each thread writes on its own connection in an immediate transaction."""
    store = SQLiteStore(tmp_path / "s.db")
    key = new_key("th:")
    seen: list[int] = []
    try:

        def work(i: int) -> None:
            for _ in range(50):
                seen.append(store.sync.incr(key, "n", 1, 60))

        _in_threads(8, work)
        assert store.sync.load(key) == {"n": "400"}
        assert sorted(seen) == list(range(1, 401))
    finally:
        store.sync.close()


def test_sync_apply_of_different_fields_from_eight_threads_all_land(
    tmp_path: Path, apply_path: bool
) -> None:
    """Eight threads applying their own fields to one record at once: every field lands,
    whichever way ``apply`` merges."""
    store = SQLiteStore(tmp_path / "s.db")
    key = new_key()
    store.sync.create(key, {"c": "0"}, 60)
    try:

        def work(i: int) -> None:
            for j in range(25):
                assert store.sync.apply(key, {f".t{i}-{j}": str(j)}, [], 60)

        _in_threads(8, work)
        fields = store.sync.load(key) or {}
        assert fields == {"c": "0", **{f".t{i}-{j}": str(j) for i in range(8) for j in range(25)}}
    finally:
        store.sync.close()


@pytest.mark.anyio
async def test_sync_and_async_faces_see_each_others_writes(tmp_path: Path) -> None:
    """A write through either face is read by the other (different threads, connections)."""
    store = SQLiteStore(tmp_path / "s.db")
    key = new_key()
    try:
        await anyio.to_thread.run_sync(store.sync.create, key, {".a": "1"}, 60)
        assert await store.load(key) == {".a": "1"}
        assert await store.apply(key, {".b": "2"}, [".a"], 60)
        assert await anyio.to_thread.run_sync(store.sync.load, key) == {".b": "2"}
        store.sync.link("u1", key)
        assert await store.keys_of("u1") == [key]
        await store.delete(key)
        assert store.sync.load(key) is None
        assert store.sync.keys_of("u1") == []
    finally:
        await store.close()


def test_sync_face_has_the_extras(tmp_path: Path) -> None:
    """purge_expired(limit), count_expired, count and user_ids are plain calls on store.sync."""
    clock = ManualClock()
    store = SQLiteStore(tmp_path / "s.db", clock=clock)
    try:
        live = new_key()
        store.sync.create(live, {".a": "1"}, 3600)
        for _ in range(3):
            store.sync.create(new_key(), {".a": "1"}, 1)
        store.sync.link("u2", live)
        store.sync.link("u1", live)
        clock.advance(2)
        assert (store.sync.count(), store.sync.count_expired()) == (1, 3)
        assert store.sync.purge_expired(limit=2) == 2
        assert store.sync.count_expired() == 1
        assert store.sync.purge_expired() == 1
        assert store.sync.user_ids() == ["u1", "u2"]
    finally:
        store.sync.close()


def test_sync_close_closes_every_threads_connection(tmp_path: Path) -> None:
    """store.sync.close() closes the connections of threads still alive, not only its
    own: once the last connection closes, SQLite folds the -wal file back and deletes it."""
    store = SQLiteStore(tmp_path / "s.db")
    wal = tmp_path / "s.db-wal"
    key = new_key()
    store.sync.create(key, {".a": "1"}, 60)
    used, done = threading.Barrier(5), threading.Event()

    def reader() -> None:
        assert store.sync.load(key) == {".a": "1"}
        used.wait()
        done.wait(60)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        used.wait(60)
        assert wal.exists()
        store.sync.close()
        assert not wal.exists()
    finally:
        done.set()
        for t in threads:
            t.join(60)


@pytest.mark.anyio
async def test_async_close_closes_the_loop_and_writer_connections(tmp_path: Path) -> None:
    """close() on the async face closes the reader on the loop and the writer thread's
    connection, and stops the writer thread."""
    before = set(threading.enumerate())
    store = SQLiteStore(tmp_path / "s.db")
    key = new_key()
    await store.create(key, {".a": "1"}, 60)
    assert await store.load(key) == {".a": "1"}
    assert (tmp_path / "s.db-wal").exists()
    # A write that finds the lock held goes to the writer thread: make one do so.
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    pending = asyncio.ensure_future(store.apply(key, {".a": "2"}, [], 60))
    await asyncio.sleep(0.05)
    other.execute("COMMIT")
    other.close()
    assert await pending is True
    started = [t for t in set(threading.enumerate()) - before if t.name.startswith("sessionware")]
    assert len(started) == 1
    await store.close()
    assert not (tmp_path / "s.db-wal").exists()
    assert not started[0].is_alive()


@pytest.mark.anyio
async def test_close_is_safe_twice_from_either_face_and_later_calls_reopen(
    tmp_path: Path,
) -> None:
    """Closing twice, from both faces in any order, raises nothing; a call made after
    closing opens a new connection (a forked worker can go on using the store)."""
    store = SQLiteStore(tmp_path / "s.db")
    key = new_key()
    await store.create(key, {".a": "1"}, 60)
    store.sync.close()
    store.sync.close()
    await store.close()
    await store.close()
    store.sync.close()
    assert store.sync.load(key) == {".a": "1"}
    assert await store.apply(key, {".b": "2"}, [], 60)
    assert store.sync.incr(key, ".n", 1, 60) == 1
    await store.close()
    assert dict(await store.load(key) or {}) == {".a": "1", ".b": "2", ".n": "1"}
    await store.close()


@pytest.mark.anyio
async def test_sync_face_maps_a_corrupt_file_to_store_unavailable(tmp_path: Path) -> None:
    """A file that turned to garbage under a running store raises StoreUnavailableError
    on the sync face too, never sqlite3's own error."""
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    store.sync.create(new_key(), {".a": "1"}, 60)
    store.sync.close()
    for p in tmp_path.iterdir():
        p.write_bytes(b"this is not a database, just text " * 200)
    try:
        with pytest.raises(StoreUnavailableError):
            store.sync.load(new_key())
        with pytest.raises(StoreUnavailableError):
            store.sync.create(new_key(), {".a": "1"}, 60)
    finally:
        await store.close()


def test_every_500th_create_purges_expired_rows(tmp_path: Path) -> None:
    """Creates purge expired rows now and then by themselves, so a file that nobody
    runs ``sessionware purge`` on stays bounded."""
    from sessionware.stores.sqlite import _PURGE_EVERY

    clock = ManualClock()
    store = SQLiteStore(tmp_path / "s.db", clock=clock)
    try:
        store.sync.create(new_key(), {".a": "1"}, 1)
        clock.advance(2)
        for _ in range(_PURGE_EVERY - 2):
            store.sync.create(new_key(), {".a": "1"}, 60)
        assert store.sync.count_expired() == 1
        store.sync.create(new_key(), {".a": "1"}, 60)
        assert store.sync.count_expired() == 0
        assert store.sync.count() == _PURGE_EVERY - 1
    finally:
        store.sync.close()


# -- group commit ---------------------------------------------------------------------


def _commits(store: SQLiteStore) -> list[int]:
    """Count the COMMITs the store's connections run, through SQLite's commit hook."""
    seen: list[int] = []
    original = store._connect

    def connect(**kwargs: Any) -> Any:
        conn = original(**kwargs)
        conn.set_trace_callback(lambda sql: seen.append(1) if sql == "COMMIT" else None)
        return conn

    store._connect = connect  # type: ignore[method-assign]
    return seen


@pytest.mark.anyio
async def test_writes_of_one_loop_turn_commit_together_and_all_land(tmp_path: Path) -> None:
    """200 concurrent writes (different keys and different fields of one key) all land,
    in far fewer transactions than writes: the writer groups what queued meanwhile."""
    store = SQLiteStore(tmp_path / "s.db")
    commits = _commits(store)
    now = int(time.time())
    await store.create("shared", {"c": str(now), "a": str(now)}, 600)
    creates = [store.create(f"k{i}", {".v": str(i)}, 600) for i in range(100)]
    applies = [store.apply("shared", {f".f{i}": str(i)}, [], 600) for i in range(100)]
    commits.clear()
    results = await asyncio.gather(*creates, *applies)
    assert results[100:] == [True] * 100
    for i in range(100):
        assert await store.load(f"k{i}") == {".v": str(i)}
    shared = await store.load("shared")
    assert shared is not None
    assert {k: v for k, v in shared.items() if k.startswith(".f")} == {
        f".f{i}": str(i) for i in range(100)
    }
    assert 1 <= len(commits) < 20
    await store.close()


@pytest.mark.anyio
async def test_one_failing_write_in_a_group_fails_alone(tmp_path: Path) -> None:
    """A write the database refuses fails with its own error; the others of its group land."""
    store = SQLiteStore(tmp_path / "s.db")
    good = [store.create(f"ok{i}", {".v": "1"}, 600) for i in range(5)]
    bad = store.create("bad", {".v": "\ud800"}, 600)  # a lone surrogate: no UTF-8 form
    results = await asyncio.gather(*good[:3], bad, *good[3:], return_exceptions=True)
    assert isinstance(results[3], StoreError)
    assert "not valid Unicode" in str(results[3])
    assert [r for i, r in enumerate(results) if i != 3] == [None] * 5
    for i in range(5):
        assert await store.load(f"ok{i}") == {".v": "1"}
    assert await store.load("bad") is None
    await store.close()


@pytest.mark.anyio
async def test_a_create_collision_in_a_group_leaves_the_others_alone(tmp_path: Path) -> None:
    """Two creates of one key in one group: exactly one wins, the rest of the group lands."""
    store = SQLiteStore(tmp_path / "s.db")
    calls = [store.create("same", {".v": str(i)}, 600) for i in range(2)]
    calls += [store.create(f"other{i}", {".v": "x"}, 600) for i in range(3)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, SessionCollisionError) for r in results[:2]) == 1
    assert results[2:] == [None] * 3
    for i in range(3):
        assert await store.load(f"other{i}") == {".v": "x"}
    await store.close()


@pytest.mark.anyio
async def test_writes_commit_on_the_loop_when_the_lock_is_free(tmp_path: Path) -> None:
    """With nobody else writing, a group commits on the event loop's own connection: no
    writer thread is started at all."""
    before = set(threading.enumerate())
    store = SQLiteStore(tmp_path / "s.db")
    await asyncio.gather(*(store.create(f"k{i}", {".v": str(i)}, 600) for i in range(50)))
    assert await store.load("k7") == {".v": "7"}
    started = [t for t in set(threading.enumerate()) - before if t.name.startswith("sessionware")]
    assert started == []
    await store.close()


@pytest.mark.anyio
async def test_a_held_lock_never_blocks_the_loop_and_the_write_lands(tmp_path: Path) -> None:
    """Another process's write transaction holds the lock for 0.3 s: our write waits on
    the writer thread, not on the loop (a timer on the loop keeps ticking), and lands."""
    store = SQLiteStore(tmp_path / "s.db")
    await store.create("k", {".v": "1"}, 600)
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    write = asyncio.ensure_future(store.apply("k", {".v": "2"}, [], 600))
    ticks = 0
    for _ in range(30):  # 0.3 s of 10 ms ticks while the lock is held
        await asyncio.sleep(0.01)
        ticks += 1
    assert not write.done()
    other.execute("COMMIT")
    other.close()
    assert await write is True
    assert ticks == 30
    assert await store.load("k") == {".v": "2"}
    await store.close()


@pytest.mark.anyio
async def test_checkpoints_keep_the_wal_bounded_under_loop_writes(tmp_path: Path) -> None:
    """Loop-side commits leave checkpoints to the writer thread (every few hundred
    groups, a backstop on the connection beyond that), so the WAL file stays bounded."""
    store = SQLiteStore(tmp_path / "s.db")
    await store.create("k", {".v": "0"}, 600)
    for round_ in range(6):
        for i in range(400):
            await store.apply("k", {".v": f"{round_}-{i}" + "x" * 500}, [], 600)
        await asyncio.sleep(0.05)
    # 2400 writes append about 4800 pages (19 MB) to the WAL; checkpoints let it start
    # over from the top, so the file stays under the 2000-page backstop and then some.
    assert (tmp_path / "s.db-wal").stat().st_size < 9_000_000
    await store.close()


def test_workers_starting_together_on_a_new_file_all_open_it(tmp_path: Path) -> None:
    """Eight processes open one brand-new file at the same instant (gunicorn workers
    booting): the switch to WAL and the schema are retried while another process holds
    the lock, so every one of them starts and writes."""
    path = tmp_path / "new.db"
    start = time.time() + 1.0
    code = textwrap.dedent(
        f"""
        import sys, time
        from sessionware.stores import SQLiteStore
        while time.time() < {start!r}:
            time.sleep(0.001)
        store = SQLiteStore({str(path)!r})
        store.sync.create("k" + sys.argv[1], {{".v": sys.argv[1]}}, 60)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(i)], stderr=subprocess.PIPE)
        for i in range(8)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    store = SQLiteStore(path)
    assert [store.sync.load(f"k{i}") for i in range(8)] == [{".v": str(i)} for i in range(8)]
    store.sync.close()


def test_when_unlocked_retries_only_lock_errors_within_the_busy_timeout() -> None:
    """SQLite's immediate "database is locked" (no busy wait, as when two processes
    switch a new file to WAL at once) is retried until the busy timeout; any other
    error, or one that lasts past the timeout, is raised."""
    from sessionware.stores.sqlite import _when_unlocked

    calls: list[int] = []

    def locked_twice() -> str:
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        return "ok"

    assert _when_unlocked(1000, locked_twice) == "ok"
    assert len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: x")

    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        _when_unlocked(1000, broken)
    assert len(calls) == 1

    def always_locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    began = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _when_unlocked(100, always_locked)
    assert time.monotonic() - began >= 0.09  # it kept trying until the timeout


@pytest.mark.anyio
@pytest.mark.parametrize(
    "row",
    ["{bad", "[1, 2]", '"x"', '{"c": null}', '{"\\ud800": "1"}', b"\xff\xfe"],
    ids=["not-json", "a-list", "a-string", "not-text", "lone-surrogate", "a-blob"],
)
async def test_a_row_this_store_cannot_have_written_loads_as_no_record(
    sqlite_store: SQLiteStore, tmp_path: Path, row: str | bytes
) -> None:
    """A damaged or foreign row reads as missing, never as an exception that fails every
    request presenting its cookie (found by record fuzzing: each of these answered 500)."""
    key = new_key()
    _put_raw_row(tmp_path / "s.db", key, row)
    assert await sqlite_store.load(key) is None
    assert sqlite_store.sync.load(key) is None


@pytest.mark.anyio
async def test_a_row_with_whitespace_around_it_still_loads(
    sqlite_store: SQLiteStore, tmp_path: Path
) -> None:
    """A record written by another tool with spaces around its JSON is still a record."""
    key = new_key()
    _put_raw_row(tmp_path / "s.db", key, ' {"c": "1", ".x": "\\u00e9"} ')
    assert await sqlite_store.load(key) == {"c": "1", ".x": "é"}


@pytest.fixture(params=[True, False], ids=["json_patch", "read-modify-write"])
def apply_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways ``apply`` merges a request's changes: in SQL where SQLite has
    ``json_patch`` (3.38 and later), else in Python."""
    from sessionware.stores import sqlite as module

    if request.param and not module._JSON_PATCH:
        pytest.fail("this SQLite has no json_patch: the SQL path cannot be tested here")
    monkeypatch.setattr(module, "_JSON_PATCH", request.param)
    return bool(request.param)


@pytest.mark.anyio
async def test_apply_merges_sets_and_deletes_in_order_either_way(
    sqlite_store: SQLiteStore, apply_path: bool
) -> None:
    """Both paths leave the same record: texts replaced in place, deleted names gone, new
    names last, non-ASCII and escapes kept exactly."""
    key = new_key()
    odd = '"é\\u2028😀\\"\\\\"'
    await sqlite_store.create(key, {"c": "1", "a": "1", ".x": '"one"', ".y": odd}, 600)
    assert await sqlite_store.apply(key, {".z": "[1,{}]", ".x": '"two"'}, [".y"], 600)
    record = await sqlite_store.load(key)
    assert record == {"c": "1", "a": "1", ".x": '"two"', ".z": "[1,{}]"}
    assert list(record) == ["c", "a", ".x", ".z"]
    assert await sqlite_store.apply(key, {".y": odd}, [".x", ".absent"], 600)
    record = await sqlite_store.load(key)
    assert list(record.items()) == [("c", "1"), ("a", "1"), (".z", "[1,{}]"), (".y", odd)]
    assert sqlite_store.sync.apply(key, {"a": "2"}, [], 600)
    assert sqlite_store.sync.load(key) == {**record, "a": "2"}


@pytest.mark.anyio
@pytest.mark.parametrize("row", ["{bad", "[1, 2]", '"x"'], ids=["not-json", "a-list", "a-string"])
async def test_apply_to_a_damaged_row_answers_gone_and_leaves_it(
    sqlite_store: SQLiteStore, tmp_path: Path, row: str, apply_path: bool
) -> None:
    """A write to a row that is not a JSON object refuses (the session is gone, as a
    load says) instead of failing with a 500 or turning the row into a session."""
    key = new_key()
    _put_raw_row(tmp_path / "s.db", key, row)
    assert await sqlite_store.apply(key, {".x": '"y"'}, [], 600) is False
    with sqlite3.connect(tmp_path / "s.db") as conn:
        stored = conn.execute(
            "SELECT fields FROM sessionware_sessions WHERE key = ?", (key,)
        ).fetchone()
    assert stored == (row,)


@pytest.mark.anyio
async def test_apply_to_a_row_with_whitespace_around_it_merges(
    sqlite_store: SQLiteStore, tmp_path: Path, apply_path: bool
) -> None:
    """A record another tool wrote with spaces around its JSON loads, so it takes writes too."""
    key = new_key()
    _put_raw_row(tmp_path / "s.db", key, ' {"c": "1", ".x": "\\u00e9"} ')
    assert await sqlite_store.apply(key, {".y": "2"}, [".x"], 600)
    assert await sqlite_store.load(key) == {"c": "1", ".y": "2"}
