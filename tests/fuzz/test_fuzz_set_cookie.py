"""The Set-Cookie writer: for any name, value and attributes it refuses with ValueError
exactly what RFC 6265 does not allow (and spaces in attribute values), and otherwise
writes a header our own parser reads back to the same value, with exactly the
attributes asked for: no CR/LF, no second cookie, no smuggled attribute. A
configuration the core accepts writes cookies that read back to the session they
carry."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from sessionware.config import SessionConfig
from sessionware.cookies import cookie_values, format_set_cookie, valid_name
from sessionware.core import SessionCore
from sessionware.exceptions import ConfigurationError
from sessionware.session import Session
from sessionware.stores import MemoryStore
from sessionware.tokens import new_session_id, store_key
from tests.fuzz.conftest import FUZZ
from tests.helpers import SECRET

texts = (
    st.text(max_size=40)
    | st.from_regex(r"[!-~]{1,30}", fullmatch=True)  # visible ASCII: often refused
    | st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)  # valid everywhere
    | st.sampled_from(
        ["sid", "__Host-sid", "a;b", "a\r\nSet-Cookie: x=y", "a b", '"q"', "a=b", "/", "x.example",
         "a\x00b", "a,b", "a\\b", "é", "a\tb", "/p; domain=evil.example", "x" * 1025]
    )
)  # fmt: skip

# RFC 6265 §4.1.1, written out here independently of the writer's own patterns.
TOKEN_CHARS = set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
COOKIE_OCTETS = {chr(c) for c in [0x21, *range(0x23, 0x2C), *range(0x2D, 0x3B),
                                  *range(0x3C, 0x5C), *range(0x5D, 0x7F)]}  # fmt: skip
AV_CHARS = {chr(c) for c in range(0x21, 0x7F)} - {";"}  # visible ASCII but ';'; no space


def _allowed(name: str, value: str, attrs: list[str]) -> bool:
    return (
        bool(name)
        and set(name) <= TOKEN_CHARS
        and set(value) <= COOKIE_OCTETS
        and all(a and set(a) <= AV_CHARS and len(a) <= 1024 for a in attrs)
    )


@FUZZ
@given(
    name=texts,
    value=texts | st.just(""),
    path=texts,
    domain=st.none() | texts,
    max_age=st.none() | st.integers(-10, 10**9),
    same_site=st.none() | texts,
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_a_header_is_refused_or_reads_back_exactly(
    name: str,
    value: str,
    path: str,
    domain: str | None,
    max_age: int | None,
    same_site: str | None,
    flags: tuple[bool, bool, bool],
) -> None:
    secure, http_only, partitioned = flags
    options: dict[str, Any] = {"path": path, "domain": domain, "max_age": max_age,
                               "same_site": same_site, "secure": secure,
                               "http_only": http_only, "partitioned": partitioned}  # fmt: skip
    attrs = [path, *([domain] if domain else []), *([same_site.lower()] if same_site else [])]
    try:
        header = format_set_cookie(name, value, **options)
    except ValueError:
        event("refused")
        assert not _allowed(name, value, attrs)
        return
    event("written")
    assert _allowed(name, value, attrs)
    assert all(" " <= c <= "~" for c in header)  # no CR, LF, NUL, nothing beyond ASCII
    parts = header.split(";")
    assert parts[0] == f"{name}={value}"
    expected = 1 + 1 + bool(domain) + (0 if max_age is None else 2 if max_age <= 0 else 1)
    expected += secure + http_only + bool(same_site) + partitioned
    assert len(parts) == expected, header  # nothing smuggled in as an extra attribute
    got = dict(p.strip().partition("=")[::2] for p in parts[1:])
    assert got["path"] == path
    assert got.get("domain") == (domain or None)
    assert got.get("samesite") == (same_site.lower() if same_site else None)
    if max_age is not None:
        assert got["Max-Age"] == str(max(0, max_age))
    # What the browser sends back, alone or among other cookies, reads as the same value.
    assert cookie_values(parts[0], name) == [value]
    if name not in ("a", "b"):
        assert cookie_values(f"a=1; {parts[0]}; b=2", name) == [value]


@FUZZ
@given(texts)
def test_a_name_is_valid_exactly_when_it_is_an_rfc_token(name: str) -> None:
    assert valid_name(name) == (bool(name) and set(name) <= TOKEN_CHARS)


# -- through the configuration and the core ------------------------------------------

# Paths and domains the writer takes, and any text (the configuration must refuse what
# the writer would refuse on every response).
attribute_texts = (
    st.sampled_from(["/", "/app"]) | st.from_regex(r"/[!-:<-~]{0,30}", fullmatch=True) | texts
)
domains = st.none() | st.none() | st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True) | texts


@FUZZ
@given(
    cookie_name=st.sampled_from(["sid", "__Host-sid", "__Secure-sid", "__host-x"]) | texts,
    path=attribute_texts,
    domain=domains,
    same_site=st.sampled_from([None, "lax", "strict", "none", "LAX", "Strict", "other", ""]),
    secure=st.sampled_from([True, True, False, "auto"]),
    partitioned=st.sampled_from([False, False, True]),
    http_only=st.booleans(),
    max_age=st.none()
    | st.integers(1, 400 * 86400)
    | st.integers(-5, 5)
    | st.floats(-1, 400 * 86400)
    | st.sampled_from([0.5, 0.999, 1.5]),
    https=st.booleans(),
)
def test_an_accepted_configuration_writes_cookies_that_read_back(
    cookie_name: str, https: bool, **options: Any
) -> None:
    """SessionConfig refuses at start-up or its core's cookies read back: the session
    cookie to the session id, the clearing cookie to nothing, both well formed."""
    try:
        config = SessionConfig(secrets=[SECRET], cookie_name=cookie_name, **options)
    except ConfigurationError:
        event("refused at start-up")
        return
    event("accepted")
    core = SessionCore(config, MemoryStore())
    sid = new_session_id()
    session = Session(core, sid, {"c": "1", "a": "1"}, store_key(sid))
    secure = core.is_secure([], "https" if https else "http")
    for header in (core.set_cookie(session, secure), core.clear_cookie(secure)):
        assert all(" " <= c <= "~" for c in header)
        pair, *attributes = header.split(";")
        assert pair.partition("=")[0] == config.cookie_name
        names = [a.strip().partition("=")[0].lower() for a in attributes]
        assert len(names) == len(set(names))  # each attribute once
        assert "path" in names and ("secure" in names) == secure
    cookie = core.set_cookie(session, secure).split(";")[0]
    assert core.read_cookie(cookie) == (sid, store_key(sid))
    assert cookie_values(core.clear_cookie(secure).split(";")[0], config.cookie_name) == [""]


@pytest.mark.parametrize(
    "option",
    [{"path": "/a;b"}, {"path": "/a b"}, {"path": "/é"}, {"domain": "a;b"}, {"domain": "a b"}],
    ids=["path-semicolon", "path-space", "path-non-ascii", "domain-semicolon", "domain-space"],
)
def test_a_cookie_attribute_the_writer_refuses_is_refused_at_start_up(
    option: dict[str, str],
) -> None:
    with pytest.raises(ConfigurationError):
        SessionConfig(secrets=[SECRET], cookie_name="sid", secure=False, **option)  # type: ignore[arg-type]


def test_a_max_age_under_a_second_never_deletes_the_cookie_it_sets() -> None:
    try:
        config = SessionConfig(secrets=[SECRET], cookie_name="sid", secure=False, max_age=0.5)
    except ConfigurationError:
        return  # refused at start-up: fine too
    core = SessionCore(config, MemoryStore())
    sid = new_session_id()
    header = core.set_cookie(Session(core, sid, {"c": "1", "a": "1"}, store_key(sid)), False)
    assert re.search(r"Max-Age=[1-9]", header), header
