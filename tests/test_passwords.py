"""PasswordHasher (Argon2id, OWASP parameters), the policy, the shipped common-password
list, and the timing of unknown versus known users."""

from __future__ import annotations

import statistics
import time
from importlib import resources

import pytest

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
