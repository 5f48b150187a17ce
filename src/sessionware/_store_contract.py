"""The store contract: what every ``Store`` must do, as a pytest suite to subclass.

Exported as :class:`sessionware.testing.StoreContract`, so a store written outside
sessionware (MongoDB, DynamoDB, MySQL...) is held to the same tests as ours. Subclass
it in a test module (the way Django's session tests mix one ``SessionTestsMixin`` into
each backend's test case) and provide one fixture, ``backend``, that yields a fresh,
empty store and closes it::

    from sessionware.testing import StoreContract

    class TestRedisStore(StoreContract):
        @pytest.fixture
        async def backend(self) -> AsyncIterator[Store]:
            s = RedisStore.from_url("redis://127.0.0.1:6379/0", prefix=f"t{uuid4().hex}:")
            yield s
            ...  # delete this run's keys
            await s.close()

Every test runs twice: on the store's async face, and on its sync face
(``store.sync``) called from worker threads, so the concurrency tests also race
real threads against one sync client.

Expiry is checked with real, short ttls and a bounded wait, so it works for stores
that keep their own time (Redis). A store that takes a ``clock=`` should build it
with the ``clock`` fixture and set ``uses_clock = True``: then time moves by
``clock.advance`` and nothing sleeps.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Literal, overload

import anyio

from sessionware._extras import requires

with requires("testing"):
    import pytest

from sessionware.exceptions import SessionCollisionError, StoreError
from sessionware.stores.base import Fields, Store, SyncStore

__all__ = ["ManualClock", "StoreContract", "SyncFaceInThreads", "new_key"]

# Leave a wide margin over a ttl before calling a record "still there" wrong: the
# wait polls and stops as soon as the record is gone, so a fast store costs little.
_EXPIRY_DEADLINE = 10.0


class ManualClock:
    """A clock tests move by hand (``clock=`` of MemoryStore, SQLiteStore, SessionConfig)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


def new_key(prefix: str = "") -> str:
    """A fresh store key shaped like a session key (64 hex characters)."""
    return prefix + secrets.token_hex(32)


class SyncFaceInThreads:
    """A store's sync face seen through coroutines: each call runs in a worker thread.

    Lets the one contract suite drive the sync face, with real threads racing in the
    concurrency tests. Only the calls are moved to threads; nothing is faked.
    """

    def __init__(self, face: SyncStore) -> None:
        self.face = face

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def load(self, key: str) -> Fields | None:
        return await self._call(self.face.load, key)  # type: ignore[no-any-return]

    async def create(self, key: str, fields: Fields, ttl: float) -> None:
        await self._call(self.face.create, key, fields, ttl)

    async def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool:
        return await self._call(self.face.apply, key, sets, dels, ttl)  # type: ignore[no-any-return]

    async def delete(self, key: str) -> None:
        await self._call(self.face.delete, key)

    @overload
    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: Literal[True] = ...
    ) -> int: ...

    @overload
    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool
    ) -> int | None: ...

    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool = True
    ) -> int | None:
        return await self._call(  # type: ignore[no-any-return]
            self.face.incr, key, field, amount, ttl, create=create
        )

    async def link(self, user_id: str, key: str) -> None:
        await self._call(self.face.link, user_id, key)

    async def unlink(self, user_id: str, key: str) -> None:
        await self._call(self.face.unlink, user_id, key)

    async def keys_of(self, user_id: str) -> list[str]:
        return await self._call(self.face.keys_of, user_id)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self._call(self.face.close)

    def __getattr__(self, name: str) -> Any:
        extra = getattr(self.face, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._call(extra, *args, **kwargs)

        return call


class StoreContract:
    """Behaviour every store must show; subclasses provide the ``backend`` fixture."""

    #: True when the ``backend`` fixture builds the store with the ``clock`` fixture.
    uses_clock: bool = False

    @pytest.fixture(params=["async", "sync"])
    def store(self, backend: Store, request: pytest.FixtureRequest) -> Store:
        """The backend through one of its two faces."""
        if request.param == "async":
            return backend
        assert isinstance(backend.sync, SyncStore)  # type: ignore[attr-defined]
        return SyncFaceInThreads(backend.sync)  # type: ignore[attr-defined]

    @pytest.fixture
    def clock(self) -> ManualClock:
        """The hand-moved clock for stores that accept ``clock=``."""
        return ManualClock()

    async def pass_time(self, clock: ManualClock, seconds: float) -> None:
        """Let ``seconds`` of store time pass (for stores that take no clock: really wait)."""
        if self.uses_clock:
            clock.advance(seconds)
        else:
            await anyio.sleep(seconds)

    async def wait_gone(self, store: Store, key: str, clock: ManualClock, ttl: float) -> bool:
        """Let the ``ttl`` run out and say whether ``key`` then loads nothing.

        With a manual clock: step just past ``ttl``. Otherwise poll until the record is
        gone or a generous deadline passes (never a tight timing threshold).
        """
        if self.uses_clock:
            clock.advance(ttl + 0.01)
            return await store.load(key) is None
        deadline = time.monotonic() + ttl + _EXPIRY_DEADLINE
        await anyio.sleep(ttl)
        while time.monotonic() < deadline:
            if await store.load(key) is None:
                return True
            await anyio.sleep(0.05)
        return False

    # -- load / create ----------------------------------------------------------

    @pytest.mark.anyio
    async def test_load_missing_returns_none(self, store: Store) -> None:
        """Loading a key that was never stored gives None."""
        assert await store.load(new_key()) is None

    @pytest.mark.anyio
    async def test_create_then_load_returns_the_fields(self, store: Store) -> None:
        """A created record loads back with exactly the fields it was given."""
        key = new_key()
        fields = {".user": '"ada"', "c": "1700000000", "a": "1700000000", "u": "42"}
        await store.create(key, fields, 60)
        assert dict(await store.load(key) or {}) == fields

    @pytest.mark.anyio
    async def test_create_on_live_key_raises_collision_and_keeps_record(self, store: Store) -> None:
        """Creating over a live key raises SessionCollisionError and leaves the record as it was."""
        key = new_key()
        await store.create(key, {".x": "1"}, 60)
        with pytest.raises(SessionCollisionError):
            await store.create(key, {".x": "2"}, 60)
        assert dict(await store.load(key) or {}) == {".x": "1"}

    @pytest.mark.anyio
    async def test_create_over_expired_key_succeeds(self, store: Store, clock: ManualClock) -> None:
        """An expired record does not block a new record under the same key."""
        key = new_key()
        await store.create(key, {".x": "1"}, 1)
        assert await self.wait_gone(store, key, clock, 1)
        await store.create(key, {".x": "2"}, 60)
        assert dict(await store.load(key) or {}) == {".x": "2"}

    # -- apply --------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_apply_sets_and_deletes_fields_and_returns_true(self, store: Store) -> None:
        """apply sets the given fields, removes the deleted ones, keeps the rest, and says True."""
        key = new_key()
        await store.create(key, {".a": "1", ".b": "2", ".c": "3"}, 60)
        assert await store.apply(key, {".a": "10", ".d": "4"}, [".b", ".missing"], 60) is True
        assert dict(await store.load(key) or {}) == {".a": "10", ".c": "3", ".d": "4"}

    @pytest.mark.anyio
    async def test_apply_on_missing_record_returns_false_and_creates_nothing(
        self, store: Store
    ) -> None:
        """apply on a key that was never stored refuses and does not create the record."""
        key = new_key()
        assert await store.apply(key, {".a": "1"}, [], 60) is False
        assert await store.load(key) is None

    @pytest.mark.anyio
    async def test_apply_on_deleted_record_returns_false_and_does_not_resurrect(
        self, store: Store
    ) -> None:
        """apply after delete refuses, so a slow request cannot bring a session back."""
        key = new_key()
        await store.create(key, {".a": "1"}, 60)
        await store.delete(key)
        assert await store.apply(key, {".b": "2"}, [], 60) is False
        assert await store.load(key) is None

    @pytest.mark.anyio
    async def test_apply_on_expired_record_returns_false_and_does_not_resurrect(
        self, store: Store, clock: ManualClock
    ) -> None:
        """apply after the record expired refuses and leaves nothing behind."""
        key = new_key()
        await store.create(key, {".a": "1"}, 1)
        assert await self.wait_gone(store, key, clock, 1)
        assert await store.apply(key, {".b": "2"}, [], 60) is False
        assert await store.load(key) is None

    @pytest.mark.anyio
    async def test_apply_resets_lifetime_to_its_ttl(self, store: Store, clock: ManualClock) -> None:
        """apply gives the record the new ttl, so it outlives its first one."""
        key = new_key()
        await store.create(key, {".a": "1"}, 1)
        assert await store.apply(key, {"a": "2"}, [], 60)
        await self.pass_time(clock, 1.5)
        assert dict(await store.load(key) or {}) == {".a": "1", "a": "2"}

    @pytest.mark.anyio
    async def test_concurrent_applies_of_different_fields_all_land(self, store: Store) -> None:
        """Fifty concurrent apply calls, each setting its own field, all persist."""
        key = new_key()
        await store.create(key, {"c": "0"}, 60)
        results: list[bool] = []

        async def one(i: int) -> None:
            results.append(await store.apply(key, {f".f{i}": str(i)}, [], 60))

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
        assert results == [True] * 50
        loaded = dict(await store.load(key) or {})
        assert loaded == {"c": "0", **{f".f{i}": str(i) for i in range(50)}}

    # -- expiry and delete ---------------------------------------------------------

    @pytest.mark.anyio
    async def test_record_expires_after_its_ttl(self, store: Store, clock: ManualClock) -> None:
        """A record is no longer loaded once its ttl has run out."""
        key = new_key()
        await store.create(key, {".a": "1"}, 1)
        assert await store.load(key) is not None
        assert await self.wait_gone(store, key, clock, 1)

    @pytest.mark.anyio
    async def test_delete_removes_record_and_missing_key_is_fine(self, store: Store) -> None:
        """delete removes the record, and deleting a missing key raises nothing."""
        key, other = new_key(), new_key()
        await store.create(key, {".a": "1"}, 60)
        await store.create(other, {".b": "2"}, 60)
        await store.delete(key)
        await store.delete(new_key())
        assert await store.load(key) is None
        assert dict(await store.load(other) or {}) == {".b": "2"}

    # -- incr -------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_incr_creates_then_increments(self, store: Store) -> None:
        """incr starts a missing counter at the amount, then adds to it."""
        key = new_key("th:")
        assert await store.incr(key, "n", 1, 60) == 1
        assert await store.incr(key, "n", 1, 60) == 2
        assert await store.incr(key, "n", 5, 60) == 7
        assert dict(await store.load(key) or {}) == {"n": "7"}

    @pytest.mark.anyio
    async def test_incr_keeps_the_first_expiry(self, store: Store, clock: ManualClock) -> None:
        """A later incr with a long ttl does not extend the counter's first expiry."""
        key = new_key("th:")
        assert await store.incr(key, "n", 1, 1) == 1
        assert await store.incr(key, "n", 1, 3600) == 2
        assert await self.wait_gone(store, key, clock, 1)
        assert await store.incr(key, "n", 1, 60) == 1

    @pytest.mark.anyio
    async def test_concurrent_incr_counts_every_call(self, store: Store) -> None:
        """Thirty concurrent increments of one counter add up exactly."""
        key = new_key("th:")

        async def one() -> None:
            await store.incr(key, "n", 1, 60)

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(one)
        assert dict(await store.load(key) or {}) == {"n": "30"}

    @pytest.mark.anyio
    async def test_incr_without_create_on_destroyed_record_returns_none(
        self, store: Store
    ) -> None:
        """incr(create=False) after delete returns None and does not resurrect the record."""
        key = new_key()
        await store.create(key, {".a": "1", ".n": "4"}, 60)
        await store.delete(key)
        assert await store.incr(key, ".n", 1, 60, create=False) is None
        assert await store.load(key) is None

    @pytest.mark.anyio
    async def test_incr_without_create_on_missing_or_expired_record_returns_none(
        self, store: Store, clock: ManualClock
    ) -> None:
        """incr(create=False) creates nothing for a key never stored or already expired."""
        never, expired = new_key(), new_key()
        await store.create(expired, {".n": "1"}, 1)
        assert await self.wait_gone(store, expired, clock, 1)
        for key in (never, expired):
            assert await store.incr(key, ".n", 1, 60, create=False) is None
            assert await store.load(key) is None

    @pytest.mark.anyio
    async def test_incr_without_create_adds_to_a_live_record_and_keeps_its_expiry(
        self, store: Store, clock: ManualClock
    ) -> None:
        """incr(create=False) adds to a live record's field, keeps its other fields and expiry."""
        key = new_key()
        await store.create(key, {".a": "1", ".n": "4"}, 1)
        assert await store.incr(key, ".n", 3, 3600, create=False) == 7
        assert await store.incr(key, ".m", 2, 3600, create=False) == 2
        assert dict(await store.load(key) or {}) == {".a": "1", ".n": "7", ".m": "2"}
        assert await self.wait_gone(store, key, clock, 1)

    @pytest.mark.anyio
    async def test_concurrent_incr_without_create_racing_delete_leaves_no_record(
        self, store: Store
    ) -> None:
        """Parallel incr(create=False) calls racing one delete never bring the record back,
        and those that landed before the delete each saw their own value."""
        for round_ in range(4):
            key = new_key()
            await store.create(key, {".a": "1", ".n": "0"}, 60)
            results = await self._incr_racing_delete(store, key, calls=40, at=10 * round_ + 5)
            assert await store.load(key) is None
            counted = sorted(r for r in results if r is not None)
            assert len(results) == 40
            assert counted == list(range(1, len(counted) + 1))

    @staticmethod
    async def _incr_racing_delete(
        store: Store, key: str, *, calls: int, at: int
    ) -> list[int | None]:
        """Start ``calls`` parallel incr(create=False) with one delete among them."""
        results: list[int | None] = []

        async def bump() -> None:
            results.append(await store.incr(key, ".n", 1, 60, create=False))

        async with anyio.create_task_group() as tg:
            for i in range(calls):
                if i == at:
                    tg.start_soon(store.delete, key)
                tg.start_soon(bump)
        return results

    # -- the per-user index ------------------------------------------------------------

    @pytest.mark.anyio
    async def test_link_keys_of_unlink(self, store: Store) -> None:
        """keys_of lists a user's linked live keys, and unlink removes one."""
        user = "user-" + secrets.token_hex(4)
        k1, k2 = new_key(), new_key()
        for k in (k1, k2):
            await store.create(k, {".a": "1"}, 60)
            await store.link(user, k)
        await store.link(user, k1)  # linking twice is harmless
        assert sorted(await store.keys_of(user)) == sorted([k1, k2])
        await store.unlink(user, k1)
        await store.unlink(user, new_key())  # unlinking an unknown key is harmless
        assert await store.keys_of(user) == [k2]
        assert await store.keys_of("nobody-" + secrets.token_hex(4)) == []

    @pytest.mark.anyio
    async def test_keys_of_drops_deleted_and_expired_members(
        self, store: Store, clock: ManualClock
    ) -> None:
        """keys_of leaves out keys whose records were deleted or have expired."""
        user = "user-" + secrets.token_hex(4)
        live, deleted, expiring = new_key(), new_key(), new_key()
        await store.create(live, {".a": "1"}, 3600)
        await store.create(deleted, {".a": "1"}, 3600)
        await store.create(expiring, {".a": "1"}, 1)
        for k in (live, deleted, expiring):
            await store.link(user, k)
        await store.delete(deleted)
        assert await self.wait_gone(store, expiring, clock, 1)
        assert await store.keys_of(user) == [live]

    @pytest.mark.anyio
    async def test_users_indexes_are_separate(self, store: Store) -> None:
        """One user's keys never show up under another user."""
        alice, bob = "alice-" + secrets.token_hex(4), "bob-" + secrets.token_hex(4)
        ka, kb = new_key(), new_key()
        for user, k in ((alice, ka), (bob, kb)):
            await store.create(k, {".a": "1"}, 60)
            await store.link(user, k)
        assert await store.keys_of(alice) == [ka]
        assert await store.keys_of(bob) == [kb]

    # -- keys and values -----------------------------------------------------------------

    @pytest.mark.anyio
    async def test_prefixed_keys_work(self, store: Store) -> None:
        """Keys with prefixes such as "rm:" and "th:" are stored, applied and deleted alike."""
        rm, th = new_key("rm:"), "th:login:" + secrets.token_hex(8)
        await store.create(rm, {"u": "7"}, 60)
        assert await store.apply(rm, {"v": "x"}, [], 60)
        assert await store.incr(th, "n", 2, 60) == 2
        assert dict(await store.load(rm) or {}) == {"u": "7", "v": "x"}
        assert dict(await store.load(th) or {}) == {"n": "2"}
        await store.delete(rm)
        assert await store.load(rm) is None

    @pytest.mark.anyio
    async def test_unicode_fields_and_values_round_trip(self, store: Store) -> None:
        """Field names and values outside ASCII (and quotes, backslashes) come back unchanged."""
        key = new_key()
        fields = {
            ".naïve": '"héllo wörld ✓ 𝄞 日本語"',
            ".quote": '"say \\"hi\\" \\\\ back"',
            ".emoji🔑": '{"k":"🙂","n":[1,2]}',
        }
        await store.create(key, fields, 60)
        assert await store.apply(key, {".ünï": '"ça va"'}, [], 60)
        assert dict(await store.load(key) or {}) == {**fields, ".ünï": '"ça va"'}

    @pytest.mark.anyio
    async def test_nul_in_names_values_and_user_ids_round_trips(self, store: Store) -> None:
        """Text holding NUL is kept as given in field names, values, increments and user ids,
        on every store alike (PostgreSQL, which refuses NUL, stores it escaped)."""
        key, user = new_key(), "user\x00" + secrets.token_hex(4)
        fields = {".a\x00b": '"x"', "ua": "Mozilla\x00/5.0", ".plain": "1"}
        await store.create(key, fields, 60)
        assert await store.apply(key, {".c\x00": "\x00", ".d": "\x00\x00"}, [".a\x00b"], 60)
        assert await store.incr(key, ".n\x00", 2, 60) == 2
        assert await store.incr(key, ".n\x00", 1, 60, create=False) == 3
        assert dict(await store.load(key) or {}) == {
            "ua": "Mozilla\x00/5.0",
            ".plain": "1",
            ".c\x00": "\x00",
            ".d": "\x00\x00",
            ".n\x00": "3",
        }
        await store.link(user, key)
        assert await store.keys_of(user) == [key]
        assert await store.keys_of(user.replace("\x00", "")) == []
        await store.unlink(user, key)
        assert await store.keys_of(user) == []

    @pytest.mark.anyio
    async def test_text_that_looks_escaped_round_trips(self, store: Store) -> None:
        """Percent signs, escape-like sequences and Unicode noncharacters come back unchanged."""
        key = new_key()
        fields = {
            "\ufdd0": "\ufdd0%00",
            ".p": "%00%25%",
            "\ufdd0%25": "\ufdd0\x00%",
            ".u": "\\u0000",
        }
        await store.create(key, fields, 60)
        assert dict(await store.load(key) or {}) == fields

    @pytest.mark.anyio
    async def test_text_without_a_utf8_form_is_refused_alike(self, store: Store) -> None:
        """A lone surrogate (no UTF-8 form) in a name or value raises StoreError on every
        store, in create and in apply, and leaves the record as it was."""
        key = new_key()
        with pytest.raises(StoreError):
            await store.create(key, {".a": '"x\ud800"'}, 60)
        assert await store.load(key) is None
        await store.create(key, {".a": "1"}, 60)
        with pytest.raises(StoreError):
            await store.apply(key, {".b\udfff": "2"}, [], 60)
        assert dict(await store.load(key) or {}) == {".a": "1"}

    @pytest.mark.anyio
    async def test_store_satisfies_protocol(self, store: Store) -> None:
        """The store is a runtime instance of the Store protocol."""
        assert isinstance(store, Store)
