"""Store URLs: any string gives a store or a ConfigurationError that never repeats the
URL's password, never another exception (a typo in SESSION_STORE is a start-up error
with the fix, not a traceback that leaks the secret)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from sessionware.exceptions import ConfigurationError
from sessionware.stores import from_url
from sessionware.stores._redis_url import parse
from tests.fuzz.conftest import FUZZ

PASSWORD = "Hunter2-secret-pw"

schemes = st.sampled_from(
    ["redis", "rediss", "redis+sentinel", "redis+cluster", "REDIS", "redis+", "sqlite",
     "postgresql", "memory", "http", "unix"]
)  # fmt: skip
pieces = st.text(alphabet=st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ["127.0.0.1", "[::1]", "h1:1,h2:2", ":", "@", "/", "?", "#", "%", "[", "]", "0", "99999",
     "mymaster", "prefix=x", "min_replicas_ack=1", "min_replicas_ack=x", "timeout=abc"]
)  # fmt: skip


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(schemes)
    host = draw(pieces)
    port = draw(st.none() | st.integers(-1, 70000).map(str) | pieces)
    path = draw(st.lists(pieces, max_size=3))
    query = draw(st.none() | pieces)
    auth = draw(st.sampled_from(["", f":{PASSWORD}@", f"user:{quote(PASSWORD)}@", "user@"]))
    url = f"{scheme}://{auth}{host}" + (f":{port}" if port is not None else "")
    url += "".join("/" + p for p in path) + (f"?{query}" if query is not None else "")
    return url


@pytest.fixture(scope="module", autouse=True)
def in_a_scratch_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """sqlite:// URLs name files relative to the working folder: make them there."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("urls"))
    yield
    os.chdir(before)


@FUZZ
@given(urls() | st.text(max_size=80))
def test_a_url_is_a_store_or_a_clear_error_without_the_password(url: str) -> None:
    try:
        store = from_url(url)
    except ConfigurationError as exc:
        event("refused")
        if not url.lower().startswith("sqlite"):  # a sqlite URL has a path, no password
            assert PASSWORD not in str(exc) and quote(PASSWORD) not in str(exc)
        return
    event(f"built {getattr(store, 'kind', type(store).__name__)}")
    asyncio.run(store.close())


@FUZZ
@given(urls())
def test_the_redis_parser_answers_or_refuses(url: str) -> None:
    try:
        parsed = parse(url)
    except ConfigurationError as exc:
        assert PASSWORD not in str(exc)
        return
    assert parsed.kind in ("standalone", "sentinel", "cluster")
    assert parsed.min_replicas_ack is None or isinstance(parsed.min_replicas_ack, int)
