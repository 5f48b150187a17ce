"""cookies.py: the defensive Cookie parser and the injection-proof Set-Cookie writer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionware.cookies import (
    MAX_HEADER,
    cookie_values,
    format_set_cookie,
    is_prefixed,
    valid_name,
)

NAME = "__Host-sid"


@settings(max_examples=300, deadline=None, database=None)
@given(header=st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1"))))
def test_parser_never_raises_and_is_bounded(header: str) -> None:
    """cookie_values returns a bounded list of substrings for any text or decoded bytes."""
    for name in (NAME, "sid", "a"):
        values = cookie_values(header, name)
        assert isinstance(values, list)
        assert len(values) <= header.count(";") + 1
        assert all(isinstance(v, str) and len(v) <= len(header) for v in values)


@settings(max_examples=200, deadline=None, database=None)
@given(
    prefix=st.text(alphabet=st.characters(blacklist_characters=";"), max_size=40),
    value=st.from_regex(r"[A-Za-z0-9_.-]{0,60}", fullmatch=True),
)
def test_parser_finds_an_exact_pair_after_any_junk(prefix: str, value: str) -> None:
    """A well-formed pair after any other junk cookie is always found with its value."""
    header = f"{prefix}; {NAME}={value}"
    assert cookie_values(header, NAME)[-1] == value


def test_exact_name_match_only() -> None:
    """Only the exact name matches: no case variants, no longer or shorter names."""
    header = "__host-sid=a; __Host-sidx=b; x__Host-sid=c; __Host-si=d; __Host-sid=e"
    assert cookie_values(header, NAME) == ["e"]


def test_unicode_whitespace_is_not_stripped() -> None:
    """A name behind a leading Unicode space (U+00A0, U+2000) is not turned into the real name."""
    for space in ("\u00a0", "\u2000", "\u3000", "\ufeff"):
        assert cookie_values(f"{space}{NAME}=planted", NAME) == []
        assert cookie_values(f"a=1;{space}{NAME}=planted", NAME) == []


def test_ascii_space_and_tab_around_pairs_are_trimmed() -> None:
    """ASCII spaces and tabs around a pair are the separators RFC 6265 allows, and are trimmed."""
    assert cookie_values(f"a=1;\t {NAME}=v \t; b=2", NAME) == ["v"]


def test_quoted_names_are_not_matched() -> None:
    """A quoted name ("__Host-sid"=x) is not the cookie __Host-sid (Werkzeug PR #1965)."""
    assert cookie_values(f'"{NAME}"=planted', NAME) == []


def test_nameless_cookie_is_not_matched() -> None:
    """A nameless cookie whose value starts with the name (=__Host-sid=x) is not matched."""
    assert cookie_values(f"={NAME}=planted", NAME) == []
    assert cookie_values(f"a=1; ={NAME}=planted", NAME) == []


def test_quoted_value_loses_its_quotes() -> None:
    """A value in double quotes is returned without them."""
    assert cookie_values(f'{NAME}="abc"', NAME) == ["abc"]


def test_duplicates_are_returned_in_order_sent() -> None:
    """Several cookies of one name come back in the order sent, every time."""
    header = f"{NAME}=first; other=x; {NAME}=second"
    assert cookie_values(header, NAME) == ["first", "second"]
    assert cookie_values(header, NAME) == cookie_values(header, NAME)


def test_oversized_header_is_ignored_whole() -> None:
    """A header longer than MAX_HEADER yields nothing, even with the cookie at its start."""
    header = f"{NAME}=v; pad=" + "x" * MAX_HEADER
    assert cookie_values(header, NAME) == []
    assert cookie_values(header[: MAX_HEADER - 10], NAME) == ["v"]


def test_empty_and_missing_headers() -> None:
    """No header, an empty one, or one without the name give an empty list."""
    assert cookie_values(None, NAME) == []
    assert cookie_values("", NAME) == []
    assert cookie_values("a=1; b=2", NAME) == []


def test_format_set_cookie_defaults() -> None:
    """A session cookie is written with path, httponly and samesite, secure when asked."""
    assert (
        format_set_cookie(NAME, "v.s", secure=True)
        == f"{NAME}=v.s; path=/; secure; httponly; samesite=lax"
    )


def test_format_set_cookie_all_attributes() -> None:
    """Attributes are spelled as Starlette's SessionMiddleware spells them (header pinned)."""
    header = format_set_cookie(
        "sid",
        "v",
        path="/app",
        domain="example.com",
        max_age=3600,
        secure=True,
        same_site="strict",
        partitioned=True,
    )
    assert header == (
        "sid=v; path=/app; domain=example.com; Max-Age=3600; secure; httponly; "
        "samesite=strict; Partitioned"
    )


def test_format_set_cookie_same_site_is_written_lower_case() -> None:
    """``same_site`` in any case is written as Starlette writes it: ``samesite=none``."""
    header = format_set_cookie("sid", "v", secure=True, same_site="None")
    assert header.endswith("; secure; httponly; samesite=none")


def test_format_set_cookie_deletion_expires_in_the_past() -> None:
    """max_age=0 writes Max-Age=0 and an Expires in 1970 for old user agents."""
    header = format_set_cookie("sid", "", max_age=0)
    assert "Max-Age=0" in header
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in header


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "sid; Domain=evil.com"},
        {"name": "s id"},
        {"name": ""},
        {"value": "v; Domain=evil.com"},
        {"value": "v\r\nSet-Cookie: x=1"},
        {"value": 'v"'},
        {"path": "/; Domain=evil.com"},
        {"path": "/\r\nX: y"},
        {"domain": "example.com; Secure"},
        {"domain": "exa mple.com"},
        {"path": "/" + "a" * 1024},
        {"same_site": "lax; domain=evil.com"},
    ],
)
def test_format_set_cookie_refuses_attribute_injection(kwargs: dict[str, str]) -> None:
    """A name, value, path, domain or samesite that could inject attributes is refused
    (CVE-2024-47764)."""
    args = {"name": "sid", "value": "v", **kwargs}
    name, value = args.pop("name"), args.pop("value")
    with pytest.raises(ValueError):
        format_set_cookie(name, value, **args)  # type: ignore[arg-type]


def test_valid_name_and_prefixes() -> None:
    """Names are RFC 6265 tokens, and prefixes are recognised case-insensitively."""
    assert valid_name("__Host-sid")
    assert not valid_name("a b")
    assert not valid_name("a=b")
    assert is_prefixed("__Host-sid") == "__Host-"
    assert is_prefixed("__host-sid") == "__Host-"
    assert is_prefixed("__SECURE-x") == "__Secure-"
    assert is_prefixed("sid") == ""
