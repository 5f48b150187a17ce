"""Password hashing (Argon2id via argon2-cffi) and a small password policy.

Defaults follow the OWASP Password Storage Cheat Sheet: Argon2id with
``m=19456 KiB, t=2, p=1`` (SECURITY.md §5). :meth:`PasswordHasher.verify_or_dummy`
does the same Argon2 work when the user does not exist, so response time does not
tell which usernames exist (ASVS 5.0 6.3.8). Passwords are NFKC-normalised before
hashing and checking (NIST SP 800-63B §5.1.1.2), never truncated or case-folded.
"""

from __future__ import annotations

import gzip
import secrets
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

from sessionware.exceptions import ConfigurationError, SessionwareError

__all__ = ["PasswordHasher", "PasswordPolicy", "WeakPasswordError", "common_passwords"]

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
    same parameters as real hashes.
    """

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost: int = 19456,
        parallelism: int = 1,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        if max_bytes < 64:
            raise ConfigurationError("max_bytes must allow at least 64 bytes (ASVS 6.2.9)")
        self.max_bytes = max_bytes
        self._ph = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._dummy = self._ph.hash(secrets.token_urlsafe(24))

    def _too_long(self, password: str) -> bool:
        return len(password.encode("utf-8")) > self.max_bytes

    def hash(self, password: str) -> str:
        """Hash a password; refuse one longer than ``max_bytes`` before hashing."""
        password = _normalise(password, self.max_bytes)
        if self._too_long(password):
            raise WeakPasswordError([f"Use at most {self.max_bytes} bytes."])
        return self._ph.hash(password)

    def verify(self, hash: str, password: str) -> bool:
        """Whether ``password`` matches ``hash``; malformed hashes and oversize input are False."""
        password = _normalise(password, self.max_bytes)
        if self._too_long(password):
            return False
        try:
            return self._ph.verify(hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def verify_or_dummy(self, hash: str | None, password: str) -> bool:
        """Verify, or with ``hash=None`` (no such user) do the same work and return False."""
        if hash is None:
            self.verify(self._dummy, password)
            return False
        return self.verify(hash, password)

    def needs_rehash(self, hash: str) -> bool:
        """Whether ``hash`` was made with other parameters: rehash it after a good login."""
        try:
            return self._ph.check_needs_rehash(hash)
        except InvalidHashError:
            return True
