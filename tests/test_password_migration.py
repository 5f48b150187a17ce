"""Hashes made by Django, Werkzeug and bcrypt verify, ask to be rehashed, and refuse
garbage and costly parameters without doing the work.

The vectors were made by the real libraries (``tests/vectors/make_password_vectors.py``).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionware.passwords import PasswordHasher

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "foreign_password_hashes.json").read_text()
)


_SHARED = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return _SHARED


def _id(case: dict[str, Any]) -> str:
    return f"{case['framework'].split()[0]}-{case['hasher']}-{len(case['password'])}"


@pytest.mark.parametrize("case", VECTORS, ids=[_id(c) for c in VECTORS])
def test_a_foreign_hash_verifies_the_right_password_only(
    hasher: PasswordHasher, case: dict[str, Any]
) -> None:
    """Each real hash accepts its password, refuses a near miss, and asks for a rehash."""
    stored, password = case["hash"], case["password"]
    assert hasher.verify(stored, password) is True
    # Near misses inside the first 72 bytes (all that plain bcrypt ever reads).
    assert hasher.verify(stored, "!" + password[1:]) is False
    assert hasher.verify(stored, password.upper()) is False
    assert hasher.needs_rehash(stored) is True
    assert hasher.scheme(stored) not in ("argon2", "unknown")


def test_the_schemes_are_named(hasher: PasswordHasher) -> None:
    """scheme() tells an app how many users each format still has."""
    named = {(c["framework"].split()[0], c["hasher"]): hasher.scheme(c["hash"]) for c in VECTORS}
    assert named[("django", "pbkdf2_sha256")] == "django-pbkdf2_sha256"
    assert named[("django", "argon2")] == "django-argon2"
    assert named[("django", "bcrypt_sha256")] == "django-bcrypt_sha256"
    assert named[("werkzeug", "scrypt")] == "werkzeug-scrypt"
    assert named[("werkzeug", "pbkdf2:sha256")] == "werkzeug-pbkdf2"
    assert named[("bcrypt", "bcrypt")] == "bcrypt"
    assert hasher.scheme(hasher.hash("pw-for-scheme")) == "argon2"
    assert hasher.scheme("md5$abc$def") == "unknown"


def test_the_migration_flow_ends_on_argon2id(hasher: PasswordHasher) -> None:
    """verify, then rehash: the new hash is ours, needs no rehash, and still verifies."""
    for case in VECTORS:
        stored, password = case["hash"], case["password"]
        if hasher.verify(stored, password) and hasher.needs_rehash(stored):
            stored = hasher.hash(password)
        assert stored.startswith("$argon2id$")
        assert not hasher.needs_rehash(stored)
        assert hasher.verify(stored, password)


def test_an_old_bcrypt_hash_of_a_long_password_matches_its_first_72_bytes(
    hasher: PasswordHasher,
) -> None:
    """bcrypt before 4.1 silently used the first 72 bytes; those users can still sign in,
    while Django's bcrypt_sha256 (made for long passwords) uses them all."""
    old = next(
        c for c in VECTORS if c["framework"].startswith("bcrypt") and len(c["password"]) > 72
    )
    assert hasher.verify(old["hash"], old["password"][:72] + "anything after byte 72")
    sha = next(c for c in VECTORS if c["hasher"] == "bcrypt_sha256" and len(c["password"]) > 72)
    assert not hasher.verify(sha["hash"], sha["password"][:72] + "different tail")


def _werkzeug(salt: str, iterations: int) -> str:
    made = hashlib.pbkdf2_hmac("sha256", b"pw", salt.encode(), 1).hex()
    return f"pbkdf2:sha256:{iterations}${salt}${made}"


@pytest.mark.parametrize(
    "stored",
    [
        _werkzeug("salt", 10**12),  # a tampered row asking for a trillion rounds
        "pbkdf2_sha256$999999999999$salt$" + "A" * 44,
        "scrypt$1073741824$salt$8$1$" + "A" * 88,  # n = 2**30: 128 GiB
        "scrypt:1048576:1024:1$salt$" + "ab" * 64,  # 128 * n * r far past the bound
        "scrypt:3:8:1$salt$" + "ab" * 64,  # n not a power of two
        "$2b$31$" + "a" * 53,  # bcrypt cost 31: days of work
    ],
)
def test_costly_parameters_are_refused_without_doing_the_work(
    hasher: PasswordHasher, stored: str
) -> None:
    """Stored hashes are data: parameters past the bounds are False at once."""
    started = time.monotonic()
    assert hasher.verify(stored, "pw") is False
    assert time.monotonic() - started < 1.0
    assert hasher.needs_rehash(stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "$",
        "pbkdf2_sha256$",
        "pbkdf2_sha256$1$salt",
        "pbkdf2_sha256$x$salt$abc=",
        "pbkdf2_sha256$1$salt$not base64!",
        "pbkdf2_sha256$-5$salt$" + "A" * 44,
        "pbkdf2_sha256$\uff11\uff10$salt$" + "A" * 44,  # full-width digits: no number
        "pbkdf2:md5:1000$salt$abcd",
        "pbkdf2:sha256$salt$abcd",
        "pbkdf2:sha256:1000$salt$ABCD",  # Werkzeug writes lower-case hex
        "pbkdf2:sha256:1000$salt$abc",  # odd length
        "scrypt:16384:8$salt$abcd",
        "scrypt$16384$salt$8$1$",
        "bcrypt$not-a-bcrypt-hash",
        "bcrypt_sha256$$2b$10$short",
        "$2b$10$" + "!" * 53,
        "argon2$argon2id$garbage",
        "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99",
        "sha1$salt$" + "0" * 40,
    ],
)
def test_malformed_hashes_are_false_not_errors(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.verify(stored, "pw") is False
    assert hasher.needs_rehash(stored) is True


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=200), st.text(max_size=40))
def test_no_stored_text_raises_or_matches(stored: str, password: str) -> None:
    """Arbitrary stored text never raises out of verify and never matches by accident."""
    assert _SHARED.verify(stored, password) is False


def test_foreign_hashes_use_the_password_as_typed(hasher: PasswordHasher) -> None:
    """Django and Werkzeug hashed the password unnormalised; the NFKC form is not it."""
    case = next(c for c in VECTORS if "ﬁ" in c["password"] and c["hasher"] == "pbkdf2_sha256")
    assert hasher.verify(case["hash"], case["password"])
    assert not hasher.verify(case["hash"], case["password"].replace("ﬁ", "fi"))
