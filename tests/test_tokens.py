"""tokens.py: random ids, their at-rest hashes and split tokens."""

from __future__ import annotations

import hashlib

import pytest

from sessionware.tokens import (
    is_valid_id,
    log_id,
    new_handle,
    new_session_id,
    new_split_token,
    parse_split_token,
    sha256_hex,
    store_key,
    validator_matches,
)


def test_session_ids_are_256_bit_urlsafe_and_unique() -> None:
    """A new id is 43 url-safe characters (32 random bytes) and never repeats."""
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 43 and is_valid_id(i) for i in ids)


def test_store_key_is_sha256_hex_of_the_id() -> None:
    """The store key is exactly the SHA-256 hex digest of the id, and not the id."""
    sid = new_session_id()
    assert store_key(sid) == hashlib.sha256(sid.encode()).hexdigest()
    assert store_key(sid) == sha256_hex(sid)
    assert sid not in store_key(sid)


def test_log_id_is_a_short_prefix_of_the_hash() -> None:
    """log_id gives 8 hex characters of the store key, nothing of the id itself."""
    sid = new_session_id()
    assert log_id(sid) == store_key(sid)[:8]
    assert log_id(sid) not in sid


@pytest.mark.parametrize("value", [
    "", "short", "a" * 31, "a" * 129, "a" * 31 + "=", "a" * 40 + " ", "a" * 40 + ".",
    "a" * 40 + "\n", "é" * 40, "a" * 40 + "'; DROP TABLE x; --", "../" * 20,
])
def test_badly_shaped_ids_are_refused(value: str) -> None:
    """Anything not 32-128 url-safe characters fails the shape check before any lookup."""
    assert not is_valid_id(value)


def test_hash_shaped_value_has_the_shape_of_an_id() -> None:
    """A 64-hex store key passes the shape check, so only the store lookup keeps it out."""
    assert is_valid_id(store_key(new_session_id()))


def test_handles_are_short_random_and_distinct() -> None:
    """Public handles are random and differ from each other."""
    handles = {new_handle() for _ in range(200)}
    assert len(handles) == 200


def test_split_token_round_trip_and_validator_hash() -> None:
    """A split token parses back to its parts, and only the validator's hash matches."""
    selector, validator = new_split_token()
    assert parse_split_token(f"{selector}.{validator}") == (selector, validator)
    assert parse_split_token(f"{selector}:{validator}") == (selector, validator)
    assert validator_matches(validator, sha256_hex(validator))
    assert not validator_matches(validator + "x", sha256_hex(validator))
    assert not validator_matches(validator, validator)


@pytest.mark.parametrize("value", [
    "", "nodot", "a.b", "." + "a" * 40, "a" * 20 + ".", "a" * 20 + "." + "b" * 200,
    "a" * 20 + ".b" * 20, "a" * 20 + "." + "é" * 20,
])
def test_malformed_split_tokens_give_none(value: str) -> None:
    """A split token with a missing, short, long or odd part is None, never an error."""
    assert parse_split_token(value) is None
