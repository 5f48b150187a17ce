"""The Set-Cookie writer: for any name, value and attributes it either refuses with
ValueError or writes a header our own parser reads back to the same value, with
exactly the attributes asked for: no CR/LF, no second cookie, no smuggled attribute."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from sessionware.cookies import cookie_values, format_set_cookie
from tests.fuzz.conftest import FUZZ

texts = (
    st.text(max_size=40)
    | st.from_regex(r"[!-~]{1,30}", fullmatch=True)  # visible ASCII: often refused
    | st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)  # valid everywhere
    | st.sampled_from(
        ["sid", "__Host-sid", "a;b", "a\r\nSet-Cookie: x=y", "a b", '"q"', "a=b", "/", "x.example"]
    )
)


@FUZZ
@given(
    name=texts,
    value=texts,
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
    try:
        header = format_set_cookie(name, value, **options)
    except ValueError:
        event("refused")
        return
    event("written")
    assert "\r" not in header and "\n" not in header and "\x00" not in header
    parts = header.split("; ")
    assert parts[0] == f"{name}={value}"
    assert cookie_values(parts[0], name) == [value]
    expected = 1 + 1 + bool(domain) + (0 if max_age is None else 2 if max_age <= 0 else 1)
    expected += secure + http_only + bool(same_site) + partitioned
    assert len(parts) == expected, header  # nothing smuggled in as an extra attribute
    assert parts[1] == f"path={path}"
