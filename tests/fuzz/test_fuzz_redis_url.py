"""Store URLs: any string gives a store or a ConfigurationError that never repeats the
URL's password, not in its message nor anywhere in the traceback it would print, and
never another exception (a typo in SESSION_STORE is a start-up error with the fix, not
a traceback that leaks the secret); a well-formed Sentinel or Cluster URL parses back
to exactly its parts."""

from __future__ import annotations

import asyncio
import os
import traceback
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from sessionware.exceptions import ConfigurationError
from sessionware.stores import from_url
from sessionware.stores._redis_url import parse
from tests.fuzz.conftest import FUZZ

PASSWORD = "Hunter2-secret-pw"
SECRETS = (PASSWORD, quote(PASSWORD), quote(PASSWORD, safe=""))

schemes = st.sampled_from(
    ["redis", "rediss", "redis+sentinel", "redis+cluster", "rediss+sentinel", "REDIS",
     "Redis+Sentinel", "redis+", "redis+other", "sqlite", "postgresql", "postgres", "memory",
     "http", "unix", ""]
)  # fmt: skip
pieces = st.text(alphabet=st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ["127.0.0.1", "[::1]", "[::1", "h1:1,h2:2", "h:", ":", "@", "/", "?", "#", "%", "%zz",
     "[", "]", "0", "99999", "-1", "1_0", "²", "٣", "mymaster", "prefix=x",
     "min_replicas_ack=1", "min_replicas_ack=x", "timeout=abc", "socket_timeout=x", "db=x"]
)  # fmt: skip


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(schemes)
    host = draw(pieces)
    port = draw(st.none() | st.integers(-1, 70000).map(str) | pieces)
    path = draw(st.lists(pieces, max_size=3))
    query = draw(
        st.none() | pieces | st.lists(st.tuples(pieces, pieces), max_size=3).map(urlencode)
    )
    auth = draw(
        st.sampled_from(["", f":{PASSWORD}@", f"user:{quote(PASSWORD)}@", "user@", f"{PASSWORD}@"])
    )
    url = f"{scheme}://{auth}{host}" + (f":{port}" if port is not None else "")
    url += "".join("/" + p for p in path) + (f"?{query}" if query is not None else "")
    return url


def _leaks(exc: BaseException) -> bool:
    """Whether the password shows anywhere in the traceback the error would print."""
    printed = "".join(traceback.format_exception(exc))
    return any(secret in printed for secret in SECRETS)


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
            assert not _leaks(exc), url
        return
    event(f"built {getattr(store, 'kind', type(store).__name__)}")
    asyncio.run(store.close())


@FUZZ
@given(urls())
def test_the_redis_parser_answers_or_refuses(url: str) -> None:
    try:
        parsed = parse(url)
    except ConfigurationError as exc:
        event("refused")
        assert not _leaks(exc)
        return
    event(f"parsed {parsed.kind}")
    assert parsed.kind in ("standalone", "sentinel", "cluster")
    for host, port in parsed.hosts:
        assert host and isinstance(port, int) and 0 < port < 65536
    assert isinstance(parsed.db, int) and parsed.db >= 0


hostnames = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True) | st.sampled_from(
    ["127.0.0.1", "10.0.0.7", "::1", "fe80::1"]
)
words = st.text(min_size=1, max_size=12)


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    """A Sentinel or Cluster URL with every part percent-encoded as a URL writer would
    (users, passwords and service names of any text, IPv6 hosts in brackets, default
    ports left out), and the parts it must parse to."""
    kind = draw(st.sampled_from(["sentinel", "cluster"]))
    tls = draw(st.booleans())
    hosts = draw(
        st.lists(st.tuples(hostnames, st.none() | st.integers(1, 65535)), min_size=1, max_size=3)
    )
    user = draw(st.none() | words)
    password = draw(st.none() | st.just(PASSWORD) | words)
    service, db = draw(words), draw(st.none() | st.integers(0, 15))
    prefix = draw(st.none() | st.text(max_size=10))
    auth = ""
    if user is not None or password is not None:
        auth = quote(user or "", safe="") + (f":{quote(password, safe='')}" if password else "")
        auth += "@"
    netloc = ",".join(
        (f"[{h}]" if ":" in h else h) + (f":{p}" if p is not None else "") for h, p in hosts
    )
    path = ""
    if kind == "sentinel":
        path = "/" + quote(service, safe="") + (f"/{db}" if db is not None else "")
    query = "?" + urlencode({"prefix": prefix}) if prefix is not None else ""
    url = f"{'rediss' if tls else 'redis'}+{kind}://{auth}{netloc}{path}{query}"
    default = 26379 if kind == "sentinel" else 6379
    parts: dict[str, object] = {
        "kind": kind,
        "tls": tls,
        "hosts": [(h, default if p is None else p) for h, p in hosts],
        "username": user or None,
        "password": password or None,
        "prefix": prefix,
    }
    if kind == "sentinel":
        parts |= {"service": service, "db": db or 0}
    return url, parts


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A well-formed URL with one to three characters replaced, dropped or inserted."""
    url = draw(well_formed())[0]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(url)))
        c = draw(st.sampled_from([*":/@[],?&=%#+", "", "x", "0"]) | st.characters())
        url = url[:i] + c + url[i + draw(st.integers(0, 1)) :]
    return url


@FUZZ
@given(well_formed())
def test_a_well_formed_sentinel_or_cluster_url_parses_to_its_parts(
    case: tuple[str, dict[str, object]],
) -> None:
    url, parts = case
    parsed = parse(url)
    assert {name: getattr(parsed, name) for name in parts} == parts


@FUZZ
@given(damaged())
def test_a_damaged_sentinel_or_cluster_url_parses_or_refuses_without_the_password(
    url: str,
) -> None:
    try:
        parsed = parse(url)
    except ConfigurationError as exc:
        event("refused")
        assert not _leaks(exc)
        return
    event(f"parsed {parsed.kind}")
    for host, port in parsed.hosts:
        assert host and 0 < port < 65536


def test_a_sentinel_db_of_superscript_digits_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        parse("redis+sentinel://h/mymaster/²")


def test_a_password_that_lands_in_the_query_is_not_repeated() -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse(f"redis+sentinel://?:{PASSWORD}@127.0.0.1/0")
    assert PASSWORD not in str(refused.value)
