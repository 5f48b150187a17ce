"""PasswordHasher (Argon2id, OWASP parameters), the policy, the shipped common-password
list, and the timing of unknown versus known users."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher as _Argon2
from argon2 import Type

from sessionware.exceptions import ConfigurationError, HasherBusyError, SessionwareError
from sessionware.passwords import (
    PasswordHasher,
    PasswordPolicy,
    WeakPasswordError,
    common_passwords,
)


@pytest.fixture(scope="module")
def cheap() -> PasswordHasher:
    """A fast hasher for tests whose point is not the parameters."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_defaults_are_owasp_argon2id() -> None:
    """The default hash is Argon2id with m=19456 KiB, t=2, p=1 (OWASP cheat sheet)."""
    h = PasswordHasher().hash("correct horse battery staple")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_verify_takes_argon2_order(cheap: PasswordHasher) -> None:
    """verify(hash, password) is True for the password and False otherwise, never raising."""
    h = cheap.hash("s3cret-pass")
    assert cheap.verify(h, "s3cret-pass") is True
    assert cheap.verify(h, "s3cret-pasS") is False
    assert cheap.verify("not a hash", "s3cret-pass") is False
    assert cheap.hash("s3cret-pass") != h  # salted


def test_unicode_is_normalised_not_truncated(cheap: PasswordHasher) -> None:
    """NFKC forms of one password verify alike; a longer password is not a prefix match."""
    h = cheap.hash("caf\u00e9-au-lait")
    assert cheap.verify(h, "cafe\u0301-au-lait")
    assert not cheap.verify(h, "caf\u00e9-au-lait!")
    assert cheap.verify(cheap.hash("\U0001f600" * 20), "\U0001f600" * 20)


def test_needs_rehash_after_parameter_change(cheap: PasswordHasher) -> None:
    """A hash made with other parameters needs rehashing; a current one does not."""
    h = cheap.hash("rehash-me-please")
    assert cheap.needs_rehash(h) is False
    assert PasswordHasher(time_cost=2, memory_cost=1024).needs_rehash(h) is True
    assert cheap.needs_rehash("garbage") is True


def test_oversize_passwords_refused_before_hashing(cheap: PasswordHasher) -> None:
    """Over max_bytes (in UTF-8 bytes) is refused at once: hash raises, verify is False."""
    h = cheap.hash("x" * 1024)
    with pytest.raises(WeakPasswordError, match="1024 bytes"):
        cheap.hash("x" * 1025)
    with pytest.raises(WeakPasswordError):
        cheap.hash("\u00e9" * 513)  # 1026 bytes in 513 characters
    assert cheap.verify(h, "x" * 1025) is False
    assert cheap.verify(h, "x" * 10_000_000) is False


def test_policy() -> None:
    """Minimum length, byte maximum, the common list (any case) and the user's own name."""
    policy = PasswordPolicy()
    assert policy.problems("a-long-and-unusual-passphrase") == []
    assert policy.problems("short") == ["Use at least 8 characters."]
    assert policy.problems("Password1") == ["This password is too common."]
    assert policy.problems("QWERTYUIOP") == ["This password is too common."]
    assert policy.problems("x" * 1025) == ["Use at most 1024 bytes."]
    assert policy.problems("alice@example.com", user_inputs=["Alice@Example.com"]) == [
        "Do not use your username or email as the password."
    ]
    with pytest.raises(WeakPasswordError) as err:
        policy.check("123456")
    assert err.value.problems == ["Use at least 8 characters.", "This password is too common."]
    assert PasswordPolicy(check_common=False).problems("password") == []


def test_common_list_ships_with_its_notice() -> None:
    """The gzipped list of Django's 20,000 common passwords ships with a NOTICE crediting it."""
    words = common_passwords()
    assert 19_000 < len(words) <= 20_000
    assert {"123456", "password", "qwerty"} <= words
    notice = resources.files("sessionware").joinpath("data/NOTICE").read_text()
    assert "Django" in notice and "Royce Williams" in notice


def test_unknown_and_known_users_take_the_same_time() -> None:
    """verify_or_dummy(None, pw) costs what a wrong password for a real user costs.

    Medians of 30 interleaved tries each, with the real parameters, within 35%.
    """
    hasher = PasswordHasher()
    real = hasher.hash("the-real-password")
    known: list[float] = []
    unknown: list[float] = []
    for _ in range(30):
        start = time.perf_counter()
        assert hasher.verify_or_dummy(real, "a-wrong-guess") is False
        known.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert hasher.verify_or_dummy(None, "a-wrong-guess") is False
        unknown.append(time.perf_counter() - start)
    a, b = statistics.median(known), statistics.median(unknown)
    assert abs(a - b) / max(a, b) < 0.35, (a, b)


# -- the concurrency bound and memory ------------------------------------------------------


class _Counting(_Argon2):
    """argon2-cffi's hasher, counting how many of its calls run at once.

    Each call waits (up to 10 s) until ``cap`` calls are inside together, so a test
    sees the pool filled to its cap and never depends on how fast a thread starts.
    """

    def __init__(self, cap: int) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
        self.cap = cap
        self.active = 0
        self.peak = 0
        self.calls = 0
        self.lock = threading.Lock()
        self.full = threading.Event()

    def _enter(self) -> None:
        with self.lock:
            self.calls += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            if self.active >= self.cap:
                self.full.set()
        self.full.wait(10)

    def _leave(self) -> None:
        with self.lock:
            self.active -= 1

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self._enter()
        try:
            return super().hash(password, salt=salt)
        finally:
            self._leave()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self._enter()
        try:
            return super().verify(hash, password)
        finally:
            self._leave()


def _instrumented(max_concurrent: int, max_wait: float = 30) -> tuple[PasswordHasher, _Counting]:
    hasher = PasswordHasher(
        time_cost=1, memory_cost=1024, max_concurrent=max_concurrent, max_wait=max_wait
    )
    counting = _Counting(max_concurrent)
    hasher._ph = counting  # the real argon2 call, wrapped by a counter
    return hasher, counting


def test_at_most_max_concurrent_hashes_run_at_once() -> None:
    """Twenty threads hashing and verifying at once never run more than max_concurrent."""
    hasher, counting = _instrumented(max_concurrent=2)
    stored = PasswordHasher(time_cost=1, memory_cost=1024).hash("pw-0123456789")

    def one(i: int) -> bool:
        if i % 2:
            return hasher.verify(stored, "pw-0123456789")
        return hasher.verify(hasher.hash(f"pw-{i}-abcdefgh"), f"pw-{i}-abcdefgh")

    with ThreadPoolExecutor(20) as callers:
        results = list(callers.map(one, range(20)))
    assert results == [True] * 20
    assert counting.calls == 30  # 10 callers hash and verify, 10 only verify
    assert counting.peak == 2


@pytest.mark.anyio
async def test_offload_is_bounded_and_leaves_the_event_loop_free() -> None:
    """Twenty awaited verifications share the cap, on the hasher's own named threads."""
    hasher, counting = _instrumented(max_concurrent=3)
    threads: set[str] = set()

    def verify_here(password: str) -> bool:
        threads.add(threading.current_thread().name)
        return hasher.verify_or_dummy(None, password)

    results = await asyncio.gather(
        *(hasher.offload(verify_here, f"guess-{i}") for i in range(20))
    )
    assert results == [False] * 20
    assert counting.calls == 20 and counting.peak == 3
    assert len(threads) == 3 and all(t.startswith("sessionware-hash") for t in threads)


def test_caller_waiting_past_max_wait_gets_busy_error() -> None:
    """With the only slot held past a caller's max_wait, that caller gets HasherBusyError."""
    hasher, counting = _instrumented(max_concurrent=1, max_wait=0.05)
    release = threading.Event()
    counting.full.clear()
    original = counting._enter

    def held() -> None:
        original()
        release.wait(10)

    counting._enter = held  # type: ignore[method-assign]
    with ThreadPoolExecutor(2) as callers:
        first = callers.submit(hasher.hash, "holds-the-slot")
        while counting.active == 0:
            time.sleep(0.005)
        second = callers.submit(hasher.hash, "waits-too-long")
        time.sleep(0.2)  # past the second caller's 0.05 s deadline, whatever the load
        release.set()
        assert first.result(10).startswith("$argon2id$")
        with pytest.raises(HasherBusyError) as err:
            second.result(10)
    assert isinstance(err.value, SessionwareError)
    assert err.value.retry_after >= 1
    assert counting.calls == 1  # the late caller never hashed


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrent": 0}, "at least 1"),
        ({"max_concurrent": 2.5}, "whole number"),
        ({"max_wait": 0}, "more than 0"),
        ({"max_wait": "5"}, "seconds"),
    ],
)
def test_bad_bound_options_fail_at_construction(options: dict[str, Any], message: str) -> None:
    """A bad max_concurrent or max_wait raises ConfigurationError saying the fix."""
    with pytest.raises(ConfigurationError, match=message):
        PasswordHasher(time_cost=1, memory_cost=1024, **options)


_BURST = """
import sys, threading
from pathlib import Path
from sessionware.passwords import PasswordHasher

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

hasher = PasswordHasher(max_concurrent=4)
hasher.verify_or_dummy(None, "warm-up")
before = rss()
threads = [
    threading.Thread(target=lambda: [hasher.verify_or_dummy(None, "guess") for _ in range(3)])
    for _ in range(8)
]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(before, rss())
"""


# Skipped only off CI: the CI machine is Linux with glibc, so there the test must run.
_IN_CI = os.environ.get("CI") == "true"


@pytest.mark.skipif(
    not _IN_CI
    and (not Path("/proc/self/status").exists() or platform.libc_ver()[0] != "glibc"),
    reason="reads RSS from /proc; the arena retention it guards against is glibc's",
)
def test_rss_returns_to_baseline_after_a_burst() -> None:
    """After 24 real hashes on 4 slots, RSS is within one Argon2 block (19 MiB) of before."""
    out = subprocess.run(
        [sys.executable, "-c", _BURST], capture_output=True, text=True, check=True, timeout=120
    )
    before, after = (int(v) for v in out.stdout.split())
    assert after - before < 19456, f"RSS grew from {before} KiB to {after} KiB"


@pytest.mark.skipif(not _IN_CI and not hasattr(os, "fork"), reason="needs fork")
def test_forked_worker_gets_its_own_pool() -> None:
    """A hasher used before a fork still hashes in the child (whose pool threads are gone)."""
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, max_concurrent=1)
    stored = hasher.hash("before-the-fork")
    code = """
import os, signal
from sessionware.passwords import PasswordHasher
h = PasswordHasher(time_cost=1, memory_cost=1024, max_concurrent=1)
stored = h.hash("before-the-fork")
pid = os.fork()
if pid == 0:
    signal.alarm(30)  # a child stuck on a dead pool must not outlive the test
    os._exit(0 if h.verify(stored, "before-the-fork") else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "0"
    assert hasher.verify(stored, "before-the-fork")
