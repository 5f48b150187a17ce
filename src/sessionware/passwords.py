"""Password hashing (Argon2id via argon2-cffi) and a small password policy.

Defaults follow the OWASP Password Storage Cheat Sheet: Argon2id with
``m=19456 KiB, t=2, p=1`` (docs/security.md, "Passwords"). :meth:`PasswordHasher.verify_or_dummy`
does the same Argon2 work when the user does not exist, so response time does not
tell which usernames exist (ASVS 5.0 6.3.8). Passwords are NFKC-normalised before
hashing and checking (NIST SP 800-63B §5.1.1.2), never truncated or case-folded.

Each hash holds ``memory_cost`` KiB for its duration, so hashing is a resource an
anonymous visitor can spend: every Argon2 call runs on the hasher's own small pool of
``max_concurrent`` threads (by default one per core), callers queue for at most
``max_wait`` seconds and then get :class:`~sessionware.exceptions.HasherBusyError`
(answer it with 503 and ``Retry-After``). On glibc each Argon2 block is also kept out
of the malloc arenas (see :func:`_unmap_on_free`), so a burst leaves no lasting RSS.
"""

from __future__ import annotations

import asyncio
import ctypes
import gzip
import math
import os
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache, partial
from importlib import resources
from typing import ParamSpec, TypeVar

from sessionware import _foreign_hashes as _foreign
from sessionware._extras import requires

with requires("auth"):
    from argon2 import PasswordHasher as _Argon2
    from argon2 import Type
    from argon2.exceptions import InvalidHashError, VerificationError

from sessionware.exceptions import ConfigurationError, HasherBusyError, SessionwareError

__all__ = [
    "HasherBusyError",
    "PasswordHasher",
    "PasswordPolicy",
    "WeakPasswordError",
    "common_passwords",
]

P = ParamSpec("P")
T = TypeVar("T")

#: Longest password accepted, in UTF-8 bytes, checked before any hashing (no hash DoS).
MAX_BYTES = 1024


class WeakPasswordError(SessionwareError, ValueError):
    """A new password breaks the policy; ``problems`` lists every reason, for the user."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _normalise(password: str, limit: int = 4 * MAX_BYTES) -> str:
    # Bound the input before normalising: NFKC is linear, but we do no work at all
    # on megabytes an attacker posts.
    if len(password) > limit:
        return password
    return unicodedata.normalize("NFKC", password)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of 20,000 common passwords, lowercased (from Django; see data/NOTICE)."""
    data = resources.files("sessionware").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split())


class PasswordPolicy:
    """What a new password must satisfy: length bounds and not being a common password.

    ASVS 5.0 6.2.1 (at least 8, 15 recommended), 6.2.4 (common-password list) and
    6.2.5 (no composition rules); the byte maximum guards the hash, not the user.
    """

    __slots__ = ("check_common", "max_bytes", "min_length")

    def __init__(
        self, *, min_length: int = 8, max_bytes: int = MAX_BYTES, check_common: bool = True
    ) -> None:
        if min_length < 1:
            raise ConfigurationError("min_length must be at least 1")
        if max_bytes < max(64, min_length):
            raise ConfigurationError("max_bytes must allow at least 64 bytes (ASVS 6.2.9)")
        self.min_length = min_length
        self.max_bytes = max_bytes
        self.check_common = check_common

    def problems(self, password: str, *, user_inputs: Iterable[str] = ()) -> list[str]:
        """Every reason ``password`` is refused (empty when it is acceptable)."""
        password = _normalise(password, self.max_bytes)
        out: list[str] = []
        if len(password.encode("utf-8")) > self.max_bytes:
            return [f"Use at most {self.max_bytes} bytes."]
        if len(password) < self.min_length:
            out.append(f"Use at least {self.min_length} characters.")
        low = password.lower()
        if self.check_common and low in common_passwords():
            out.append("This password is too common.")
        if any(u and low == _normalise(u).lower() for u in user_inputs):
            out.append("Do not use your username or email as the password.")
        return out

    def check(self, password: str, *, user_inputs: Iterable[str] = ()) -> None:
        """Raise :class:`WeakPasswordError` unless ``password`` is acceptable."""
        problems = self.problems(password, user_inputs=user_inputs)
        if problems:
            raise WeakPasswordError(problems)


class PasswordHasher:
    """Argon2id hashing with OWASP parameters, and constant work for unknown users.

    ``verify(hash, password)`` takes argon2-cffi's argument order and returns a bool.
    The dummy hash used for unknown users is computed here, at start-up, with the
    same parameters as real hashes. At most ``max_concurrent`` hashes run at once
    (peak memory ``max_concurrent * memory_cost``); a caller that waits longer than
    ``max_wait`` seconds for a turn gets :class:`HasherBusyError`. From async code use
    :meth:`offload`, so a waiting caller holds no thread.
    """

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost: int = 19456,
        parallelism: int = 1,
        max_bytes: int = MAX_BYTES,
        max_concurrent: int | None = None,
        max_wait: float = 5.0,
    ) -> None:
        if max_bytes < 64:
            raise ConfigurationError("max_bytes must allow at least 64 bytes (ASVS 6.2.9)")
        self.max_bytes = max_bytes
        self.max_concurrent = _cores() if max_concurrent is None else max_concurrent
        if isinstance(self.max_concurrent, bool) or not isinstance(self.max_concurrent, int):
            raise ConfigurationError("max_concurrent must be a whole number of hashes, e.g. 4")
        if self.max_concurrent < 1:
            raise ConfigurationError("max_concurrent must be at least 1")
        if isinstance(max_wait, bool) or not isinstance(max_wait, int | float):
            raise ConfigurationError("max_wait must be a number of seconds")
        if not 0 < max_wait <= 300:
            raise ConfigurationError("max_wait must be more than 0 and at most 300 seconds")
        self.max_wait = float(max_wait)
        self._ph = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )
        _unmap_on_free(memory_cost * 1024 // 2)
        self._dummy = self._ph.hash(secrets.token_urlsafe(24))
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0  # a forked worker (gunicorn --preload) starts a pool of its own
        self._here = threading.local()  # set on our pool's threads while they run a job

    def _too_long(self, password: str) -> bool:
        return len(password.encode("utf-8")) > self.max_bytes

    def hash(self, password: str) -> str:
        """Hash a password; refuse one longer than ``max_bytes`` before hashing."""
        password = _normalise(password, self.max_bytes)
        if self._too_long(password):
            raise WeakPasswordError([f"Use at most {self.max_bytes} bytes."])
        return self._bounded(self._ph.hash, password)

    def verify(self, hash: str, password: str) -> bool:
        """Whether ``password`` matches ``hash``; malformed hashes and oversize input are False.

        Besides Argon2, hashes made by Django, Werkzeug (Flask) and bcrypt verify too
        (see :mod:`sessionware._foreign_hashes`), with the password as typed: those
        frameworks hashed it without normalising. :meth:`needs_rehash` is True for
        them, so a good login is the moment to store :meth:`hash`'s Argon2id instead.
        """
        if self._too_long(_normalise(password, self.max_bytes)):
            return False
        return self._bounded(self._check, hash, password)

    def verify_or_dummy(self, hash: str | None, password: str) -> bool:
        """Verify, or with ``hash=None`` (no such user) do the same work and return False."""
        if hash is None:
            self.verify(self._dummy, password)
            return False
        return self.verify(hash, password)

    def needs_rehash(self, hash: str) -> bool:
        """Whether ``hash`` was made with other parameters, or by another framework:
        rehash it after a good login."""
        try:
            return self._ph.check_needs_rehash(hash)
        except InvalidHashError:
            return True

    async def offload(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one of this hasher's methods on its pool and await it (asyncio).

        ``await hasher.offload(hasher.verify_or_dummy, stored, password)``: the caller
        waits in the pool's queue, not in a thread of the event loop's executor, so a
        burst of logins cannot starve the rest of the app of threads.
        """
        return await asyncio.wrap_future(self._submit(method, *args, **kwargs))

    # -- the bound ------------------------------------------------------------------

    @staticmethod
    def scheme(hash: str) -> str:
        """What made ``hash``: ``"argon2"``, e.g. ``"django-pbkdf2_sha256"``,
        ``"werkzeug-scrypt"``, ``"bcrypt"``, or ``"unknown"`` (to count what is left to migrate)."""
        if hash.startswith(_foreign.ARGON2_PREFIX):
            return "argon2"
        return _foreign.scheme(hash) or "unknown"

    def _check(self, hash: str, password: str) -> bool:
        if not isinstance(hash, str) or not isinstance(password, str):
            return False
        if hash.startswith("argon2$argon2"):
            hash = hash[len("argon2") :]  # Django's Argon2: its own prefix, then argon2's
        elif not hash.startswith(_foreign.ARGON2_PREFIX):
            return _foreign.check(hash, password) is True
        else:
            password = _normalise(password, self.max_bytes)
        try:
            return self._ph.verify(hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _bounded(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run an Argon2 call on the pool (inline when already on it) and wait for it."""
        if getattr(self._here, "active", False):
            return fn(*args, **kwargs)
        return self._submit(fn, *args, **kwargs).result()

    def _submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        deadline = time.monotonic() + self.max_wait
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.max_concurrent, "sessionware-hash")
                self._pool_pid = os.getpid()
            pool = self._pool
        return pool.submit(self._job, deadline, partial(fn, *args, **kwargs))

    def _job(self, deadline: float, call: Callable[[], T]) -> T:
        # The pool has max_concurrent threads, so reaching this line is taking a slot;
        # a job that queued past its deadline gives up without hashing.
        if time.monotonic() > deadline:
            raise HasherBusyError(
                f"password hashing is at its limit of {self.max_concurrent} at once and a "
                f"request waited over {self.max_wait:g}s: answer 503 and retry later (or raise "
                "max_concurrent, if the machine has the cores and memory)",
                retry_after=max(1, math.ceil(self.max_wait)),
            )
        self._here.active = True
        try:
            return call()
        finally:
            self._here.active = False


def _cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: glibc's ``mallopt`` parameter number (malloc.h) and its upper bound on 64-bit builds.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
_mmap_lock = threading.Lock()
_mmap_threshold: int | None = None


@lru_cache(maxsize=1)
def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None on any other C library (musl, macOS, Windows)."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (AttributeError, OSError, ValueError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    result: Callable[[int, int], int] = mallopt
    return result


def _unmap_on_free(size: int) -> None:
    """Make glibc serve blocks of ``size`` bytes with ``mmap``, so ``free`` returns them.

    glibc raises its mmap threshold to the size of the largest mmap-ed block freed so
    far (up to 32 MiB), so after the first Argon2 call each block of ``memory_cost``
    comes from the freeing thread's arena and stays in the process: that is how a
    burst of logins kept ~600 MiB. Pinning the threshold below the block size keeps
    every Argon2 block mapped and unmapped. Process-wide and only ever lowered; it
    costs a hash a few page faults. Nothing happens on other C libraries, whose large
    blocks are mapped already.
    """
    global _mmap_threshold
    mallopt = _mallopt()
    if mallopt is None or size >= _MMAP_THRESHOLD_MAX:
        return  # over glibc's maximum threshold: always mmap-ed
    size = max(size, 128 * 1024)  # never below glibc's own default
    with _mmap_lock:
        if _mmap_threshold is not None and _mmap_threshold <= size:
            return
        if mallopt(_M_MMAP_THRESHOLD, size) == 1:
            _mmap_threshold = size
