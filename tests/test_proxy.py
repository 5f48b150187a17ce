"""Forwarded headers are believed only as far as trust_proxy says."""

from __future__ import annotations

import pytest

from sessionware._proxy import trusted_hop


@pytest.mark.parametrize(
    ("value", "hops", "expected"),
    [
        ("1.1.1.1", 0, None),  # no proxy trusted: the header is the client's word
        ("6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),  # a forged left entry is ignored
        ("6.6.6.6, 10.0.0.1, 203.0.113.7", 2, "10.0.0.1"),
        ("203.0.113.7", 3, "203.0.113.7"),  # fewer entries than hops: the leftmost
        (" , ", 1, None),
        (None, 1, None),
    ],
)
def test_trusted_hop_reads_from_the_right(
    value: str | None, hops: int, expected: str | None
) -> None:
    """Only entries our own proxies appended count; a client cannot push its own in."""
    assert trusted_hop(value, hops) == expected
