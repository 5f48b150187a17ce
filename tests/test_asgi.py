"""SessionMiddleware over HTTP: raw Set-Cookie and Vary headers for each behaviour."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import anyio
import pytest

from sessionware import SessionMiddleware
from sessionware.core import moved_key
from sessionware.exceptions import ConfigurationError, HTTPError
from sessionware.stores import MemoryStore, SQLiteStore
from sessionware.tokens import new_session_id, store_key
from tests.helpers import (
    SECRET,
    Browser,
    CountingStore,
    FaultyStore,
    attributes,
    raw_id,
    session_app,
    set_cookies,
    signed,
)

pytestmark = pytest.mark.anyio


# -- lazy sessions and the cookie itself ------------------------------------------------


async def test_untouched_visitor_gets_no_cookie_and_stores_nothing() -> None:
    """A request that never touches the session gets no Set-Cookie, no Vary and no record."""
    store = CountingStore()
    async with Browser(session_app(store)) as b:
        r = await b.get("/")
    assert r.status_code == 200
    assert set_cookies(r) == []
    assert "vary" not in r.headers
    assert len(store) == 0
    assert store.calls == {}


async def test_reading_an_empty_session_stores_nothing() -> None:
    """Reading a session that holds nothing creates no record and sends no cookie."""
    store = CountingStore()
    async with Browser(session_app(store)) as b:
        r = await b.get("/read")
    assert r.json() == {}
    assert set_cookies(r) == []
    assert len(store) == 0


async def test_setting_a_key_creates_record_and_sends_signed_cookie() -> None:
    """Setting a key stores one record and sends <name>=<id>.<signature> with safe attributes."""
    store = CountingStore()
    async with Browser(session_app(store)) as b:
        r = await b.get("/set?user=ada")
    (header,) = set_cookies(r)
    name, _, rest = header.partition("=")
    value = rest.split(";")[0]
    assert name == "__Host-sid"
    sid = raw_id(value)
    assert len(sid) == 43
    assert attributes(header) == {"path": "/", "secure": "", "httponly": "", "samesite": "lax"}
    assert len(store) == 1
    assert store.calls["create"] == 1


async def test_cookie_attributes_follow_config() -> None:
    """Domain, Path, SameSite, Max-Age and Partitioned are sent as configured."""
    app = session_app(
        MemoryStore(development=True),
        cookie_name="sid",
        domain="testserver",
        path="/",
        same_site="strict",
        max_age=3600,
        secure=True,
        partitioned=True,
        http_only=True,
    )
    async with Browser(app, cookie_name="sid") as b:
        r = await b.get("/set?x=1")
    assert attributes(set_cookies(r)[0]) == {
        "path": "/",
        "domain": "testserver",
        "max-age": "3600",
        "secure": "",
        "httponly": "",
        "samesite": "strict",
        "partitioned": "",
    }


async def test_secure_auto_only_over_https() -> None:
    """With secure="auto" the cookie is Secure over https and not over plain http."""
    app = session_app(MemoryStore(development=True), cookie_name="sid")
    async with Browser(app, base_url="http://testserver", cookie_name="sid") as b:
        plain = await b.get("/set?x=1")
    async with Browser(app, base_url="https://testserver", cookie_name="sid") as b:
        tls = await b.get("/set?x=1")
    assert "secure" not in attributes(set_cookies(plain)[0])
    assert "secure" in attributes(set_cookies(tls)[0])


async def test_forwarded_proto_counts_only_with_trust_proxy() -> None:
    """X-Forwarded-Proto: https makes the cookie Secure only when trust_proxy is on."""
    headers = {"x-forwarded-proto": "https"}
    untrusting = session_app(MemoryStore(development=True), cookie_name="sid")
    trusting = session_app(MemoryStore(development=True), cookie_name="sid", trust_proxy=True)
    async with Browser(untrusting, base_url="http://testserver", cookie_name="sid") as b:
        r1 = await b.get("/set?x=1", headers=headers)
    async with Browser(trusting, base_url="http://testserver", cookie_name="sid") as b:
        r2 = await b.get("/set?x=1", headers=headers)
        r3 = await b.get("/set?x=2", headers={"x-forwarded-proto": "http"})
    assert "secure" not in attributes(set_cookies(r1)[0])
    assert "secure" in attributes(set_cookies(r2)[0])
    assert set_cookies(r3) == []  # an existing session is not re-sent, so no downgrade either


async def test_forwarded_proto_uses_the_nearest_trusted_hop() -> None:
    """With one trusted proxy, only the last X-Forwarded-Proto value counts, not a client's."""
    app = session_app(MemoryStore(development=True), cookie_name="sid", trust_proxy=1)
    async with Browser(app, base_url="http://testserver", cookie_name="sid") as b:
        spoofed = await b.get("/set?x=1", headers={"x-forwarded-proto": "https, http"})
    assert "secure" not in attributes(set_cookies(spoofed)[0])


async def test_prefixed_cookie_is_always_secure() -> None:
    """A __Host- cookie is always marked Secure, since browsers drop it otherwise."""
    async with Browser(session_app(MemoryStore(development=True)), base_url="http://t") as b:
        r = await b.get("/set?x=1")
    assert "secure" in attributes(set_cookies(r)[0])


# -- reads, writes, rolling ---------------------------------------------------------------


async def test_unchanged_session_costs_one_read_and_no_write() -> None:
    """Reading an unchanged session makes one store read, no write and sends no Set-Cookie."""
    store = CountingStore()
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        store.calls.clear()
        r = await b.get("/read")
    assert r.json() == {"user": "ada"}
    assert store.calls == {"load": 1}
    assert set_cookies(r) == []


async def test_rolling_sends_the_cookie_on_every_response() -> None:
    """With rolling=True even an unchanged session gets its cookie again."""
    store = CountingStore()
    async with Browser(session_app(store, rolling=True, max_age=600)) as b:
        first = await b.get("/set?user=ada")
        r = await b.get("/read")
    (header,) = set_cookies(r)
    assert header.split(";")[0] == set_cookies(first)[0].split(";")[0]
    assert "max-age" in attributes(header)


async def test_changed_session_writes_only_the_changed_key() -> None:
    """A second request that sets one key applies just that key, and keeps the others."""
    store = CountingStore()
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada&theme=dark")
        store.calls.clear()
        r = await b.get("/set?theme=light")
        data = (await b.get("/read")).json()
    assert set_cookies(r) == []
    assert store.calls["apply"] == 1 and store.calls["create"] == 0
    assert data == {"user": "ada", "theme": "light"}


async def test_in_operator_marks_session_read() -> None:
    """`"key" in session` counts as reading the session: Vary: Cookie is sent (CVE-2026-27205)."""
    async with Browser(session_app(MemoryStore(development=True))) as b:
        r = await b.get("/contains")
    assert r.text == "False"
    assert r.headers["vary"] == "Cookie"


async def test_vary_cookie_whenever_session_was_read() -> None:
    """A response after the session was read has Vary: Cookie, merged with the app's Vary."""
    async with Browser(session_app(MemoryStore(development=True))) as b:
        r1 = await b.get("/read")
        r2 = await b.get("/vary")
        await b.get("/set?x=1")
        r3 = await b.get("/")  # untouched, but the request carried a session cookie
    assert r1.headers["vary"] == "Cookie"
    assert r2.headers.get_list("vary") == ["Accept-Encoding, Cookie"]
    assert r3.headers["vary"] == "Cookie"


async def test_response_handing_out_a_stored_session_is_not_cached() -> None:
    """A response that sets a session cookie carries Cache-Control: no-store."""
    async with Browser(session_app(MemoryStore(development=True))) as b:
        r = await b.get("/set?x=1")
    assert r.headers["cache-control"] == "no-store"


# -- regenerate and destroy --------------------------------------------------------------


async def test_regenerate_gives_new_id_keeps_data_and_old_cookie_loads_nothing() -> None:
    """regenerate() issues a new id with the same data, and the old cookie is dead."""
    store = CountingStore()
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        old = b.value
        assert old is not None
        r = await b.get("/regenerate")
        new = b.value
        assert new is not None and raw_id(new) != raw_id(old)
        assert (await b.get("/read")).json() == {"user": "ada"}
        stale = await b.get("/read", cookie=f"__Host-sid={old}")
    assert len(set_cookies(r)) == 1
    assert stale.json() == {}
    assert await store.load(store_key(raw_id(old))) is None
    # The new record, and the short-lived marker saying the old id moved on.
    assert len(store) == 2
    assert await store.load(moved_key(store_key(raw_id(old)))) is not None
    # A late request with the old cookie leaves the browser's new cookie alone.
    assert "set-cookie" not in stale.headers


async def test_destroy_deletes_record_and_clears_cookie_with_same_attributes() -> None:
    """destroy() deletes the record and expires the cookie with its Path/Domain/SameSite/Secure."""
    store = MemoryStore(development=True)
    app = session_app(
        store, cookie_name="sid", domain="testserver", same_site="strict", secure=True
    )
    async with Browser(app, cookie_name="sid") as b:
        set_header = set_cookies(await b.get("/set?user=ada"))[0]
        sid = raw_id(b.value or "")
        r = await b.get("/destroy")
    (cleared,) = set_cookies(r)
    assert cleared.startswith("sid=;")
    attrs, original = attributes(cleared), attributes(set_header)
    for name in ("path", "domain", "samesite", "secure", "httponly"):
        assert attrs[name] == original[name]
    assert attrs["max-age"] == "0"
    assert "1970" in attrs["expires"]
    assert await store.load(store_key(sid)) is None
    assert len(store) == 0


async def test_destroyed_cookie_replayed_loads_nothing() -> None:
    """After destroy, replaying the old cookie gives an empty session and no adoption."""
    store = MemoryStore(development=True)
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        old = b.value
        await b.get("/destroy")
        r = await b.get("/set?other=1", cookie=f"__Host-sid={old}")
    new_value = set_cookies(r)[0].split(";")[0].partition("=")[2]
    assert raw_id(new_value) != raw_id(old or "")
    assert dict(await store.load(store_key(raw_id(new_value))) or {}).get(".user") is None


# -- bad cookies -----------------------------------------------------------------------


def _bad_cookies() -> list[tuple[str, str]]:
    sid = new_session_id()
    good = signed(sid)
    return [
        ("tampered", good[:-1] + ("A" if good[-1] != "A" else "B")),
        ("unsigned", sid),
        ("garbage", "%%%\\\"not a cookie\x7f"),
        ("oversized", "a" * 5000),
        ("wrong-secret", signed(sid, ["another-secret-" + "z" * 40])),
        ("unknown", good),  # validly signed, but no such session in the store
        ("empty", ""),
    ]


@pytest.mark.parametrize(("kind", "value"), _bad_cookies(), ids=[k for k, _ in _bad_cookies()])
async def test_bad_cookie_is_no_session_and_never_adopted(kind: str, value: str) -> None:
    """A tampered, unsigned, garbage, oversized or unknown cookie is "no session": 200, new id."""
    store = MemoryStore(development=True)
    async with Browser(session_app(store)) as b:
        r = await b.get("/set?user=ada", cookie=f"__Host-sid={value}")
    assert r.status_code == 200
    issued = [h for h in set_cookies(r) if h.split("=")[1].split(";")[0]]
    (header,) = issued
    new_sid = raw_id(header.split(";")[0].partition("=")[2])
    assert new_sid not in value
    assert len(store) == 1
    assert await store.load(store_key(new_sid)) is not None


async def test_oversized_cookie_header_is_no_session() -> None:
    """A Cookie header over the parser's limit is ignored whole: 200 and an anonymous session."""
    store = MemoryStore(development=True)
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        r = await b.get("/read", cookie=f"__Host-sid={b.value}; pad={'x' * 20000}")
    assert r.status_code == 200
    assert r.json() == {}


async def test_unknown_cookie_is_cleared_when_the_session_stays_empty() -> None:
    """A stale cookie with nothing behind it is expired in the response, not left in place."""
    async with Browser(session_app(MemoryStore(development=True))) as b:
        r = await b.get("/read", cookie=f"__Host-sid={signed(new_session_id())}")
    (header,) = set_cookies(r)
    assert header.startswith("__Host-sid=;")
    assert attributes(header)["max-age"] == "0"


async def test_similar_cookie_name_is_left_alone() -> None:
    """A cookie whose name merely ends like ours (x__Host-sid) gets no clearing Set-Cookie."""
    async with Browser(session_app(MemoryStore(development=True))) as b:
        r = await b.get("/read", cookie="x__Host-sid=whatever")
    assert set_cookies(r) == []


async def test_ids_are_shape_checked_before_any_store_lookup() -> None:
    """A correctly signed value that is not shaped like an id never reaches the store."""
    store = CountingStore()
    async with Browser(session_app(store)) as b:
        for value in ("short", "a" * 200, "../../etc/passwd", "x" * 40 + "'--", "é" * 40):
            r = await b.get("/read", cookie=f"__Host-sid={signed(value)}")
            assert r.status_code == 200
    assert store.calls["load"] == 0


async def test_store_key_hash_as_cookie_is_not_accepted() -> None:
    """The store key (the hash) signed as a cookie does not open the session (Rack lesson)."""
    store = MemoryStore(development=True)
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        key = store_key(raw_id(b.value or ""))
        r = await b.get("/read", cookie=f"__Host-sid={signed(key)}")
    assert r.json() == {}


async def test_duplicate_cookies_first_valid_one_wins() -> None:
    """With two session cookies, the first one that verifies opens the session, every time."""
    store = MemoryStore(development=True)
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        good = b.value
        junk = signed(new_session_id())
        for header in (
            f"__Host-sid=bad; __Host-sid={good}",
            f"__Host-sid={good}; __Host-sid={junk}",
        ):
            assert (await b.get("/read", cookie=header)).json() == {"user": "ada"}


# -- the store sees only hashes -------------------------------------------------------------


async def test_memory_store_holds_only_sha256_of_the_id() -> None:
    """The memory store's internals hold SHA-256(id) as the key and no trace of the raw id."""
    store = MemoryStore(development=True)
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        sid = raw_id(b.value or "")
    assert list(store._data) == [hashlib.sha256(sid.encode()).hexdigest()]
    assert sid not in repr(store._data)
    assert (b.value or "") not in repr(store._data)


async def test_sqlite_file_holds_only_sha256_of_the_id(tmp_path: Path) -> None:
    """Reading the SQLite file byte for byte finds SHA-256(id) and never the id."""
    store = SQLiteStore(tmp_path / "s.db")
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        await b.get("/set?more=1")
        sid = raw_id(b.value or "")
    await store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert hashlib.sha256(sid.encode()).hexdigest().encode() in raw
    assert sid.encode() not in raw


# -- 5xx, errors --------------------------------------------------------------------------


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_5xx_saves_nothing(code: int) -> None:
    """A 5xx response neither creates nor changes a session, and sets no cookie."""
    store = CountingStore()
    async with Browser(session_app(store)) as b:
        r = await b.get(f"/fail/{code}?user=ada")
        assert set_cookies(r) == []
        assert len(store) == 0
        await b.get("/set?user=ada")
        store.calls.clear()
        r2 = await b.get(f"/fail/{code}?user=mallory")
        assert (await b.get("/read")).json() == {"user": "ada"}
    assert set_cookies(r2) == []
    assert store.calls["apply"] == 0 and store.calls["create"] == 0


async def test_handler_exception_saves_nothing() -> None:
    """A handler that raises after changing the session gets a 500 and nothing is stored."""
    store = CountingStore()
    async with Browser(session_app(store)) as b:
        r = await b.get("/boom")
        assert r.status_code == 500
        assert set_cookies(r) == []
        await b.get("/set?user=ada")
        store.calls.clear()
        await b.get("/boom")
        assert (await b.get("/read")).json() == {"user": "ada"}
    assert len(store) == 1
    assert store.calls["apply"] == 0


async def test_4xx_still_saves() -> None:
    """A 4xx response is a normal answer: the session changes it made are kept."""
    store = MemoryStore(development=True)
    async with Browser(session_app(store)) as b:
        r = await b.get("/fail/404?user=ada")
        assert len(set_cookies(r)) == 1
        assert (await b.get("/read")).json() == {"user": "ada"}


async def test_session_over_size_limit_is_refused_and_not_written() -> None:
    """A session payload over max_size fails the request (500) and writes nothing."""
    store = CountingStore()
    async with Browser(session_app(store, max_size=1024)) as b:
        await b.get("/set?a=" + "x" * 600)
        store.calls.clear()
        r = await b.get("/set?b=" + "y" * 600)
        data = (await b.get("/read")).json()
    assert r.status_code == 500
    assert store.calls["apply"] == 0
    assert data == {"a": "x" * 600}


# -- concurrency ------------------------------------------------------------------------


async def _two_overlapping_writers(store: object) -> dict[str, str]:
    app = session_app(store)
    async with Browser(app) as b:
        await b.get("/set?base=1")
        cookie = f"__Host-sid={b.value}"
        app.state.started.update(a=anyio.Event(), b=anyio.Event())
        app.state.gates.update(a=anyio.Event(), b=anyio.Event())
        statuses: list[int] = []

        async def hit(gate: str, key: str) -> None:
            r = await b.get(f"/slow/{gate}?{key}=v{gate}", cookie=cookie)
            statuses.append(r.status_code)

        async with anyio.create_task_group() as tg:
            tg.start_soon(hit, "a", "left")
            tg.start_soon(hit, "b", "right")
            await app.state.started["a"].wait()
            await app.state.started["b"].wait()  # both handlers hold the session now
            app.state.gates["a"].set()
            app.state.gates["b"].set()
        assert statuses == [200, 200]
        data: dict[str, str] = (await b.get("/read", cookie=cookie)).json()
        return data


async def test_concurrent_requests_changing_different_keys_both_persist_memory() -> None:
    """Two overlapping requests setting different keys both land (MemoryStore)."""
    data = await _two_overlapping_writers(MemoryStore(development=True))
    assert data == {"base": 1, "left": "va", "right": "vb"}


async def test_concurrent_requests_changing_different_keys_both_persist_sqlite(
    tmp_path: Path,
) -> None:
    """Two overlapping requests setting different keys both land (SQLiteStore)."""
    store = SQLiteStore(tmp_path / "s.db")
    try:
        data = await _two_overlapping_writers(store)
    finally:
        await store.close()
    assert data == {"base": 1, "left": "va", "right": "vb"}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_request_finishing_after_destroy_does_not_resurrect(
    kind: str, tmp_path: Path
) -> None:
    """A slow request that changes the session after it was destroyed writes nothing back."""
    store = MemoryStore(development=True) if kind == "memory" else SQLiteStore(tmp_path / "s.db")
    app = session_app(store)
    try:
        async with Browser(app) as b:
            await b.get("/set?user=ada")
            old = b.value
            cookie = f"__Host-sid={old}"
            key = store_key(raw_id(old or ""))
            app.state.started["s"] = anyio.Event()
            app.state.gates["s"] = anyio.Event()
            slow: list[object] = []

            async def slow_request() -> None:
                slow.append(await b.get("/slow/s?cart=full", cookie=cookie))

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_request)
                await app.state.started["s"].wait()
                destroyed = await b.get("/destroy", cookie=cookie)
                app.state.gates["s"].set()
            assert destroyed.status_code == 200
            assert await store.load(key) is None
            replay = await b.get("/read", cookie=cookie)
        assert replay.json() == {}
        (late,) = slow
        (cleared,) = set_cookies(late)  # type: ignore[arg-type]
        assert cleared.startswith("__Host-sid=;")
    finally:
        await store.close()


# -- start-up, outages, logs ------------------------------------------------------------


async def test_startup_logs_effective_settings_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The middleware logs cookie attributes, timeouts, trust_proxy and store once, no secret."""
    with caplog.at_level(logging.INFO, logger="sessionware"):
        async with Browser(session_app(MemoryStore(development=True), trust_proxy=True)) as b:
            await b.get("/")
            await b.get("/")
    lines = [r.getMessage() for r in caplog.records if "cookie_name" in r.getMessage()]
    assert len(lines) == 1
    line = lines[0]
    for expected in (
        "store=memory", "cookie_name=__Host-sid", "same_site=lax", "secure=auto",
        "http_only=True", "path=/", "idle_timeout=1800.0", "absolute_timeout=43200.0",
        "trust_proxy=1",
    ):
        assert expected in line
    assert SECRET not in caplog.text


async def test_store_outage_gives_503_with_log_line_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A store that is down gives 503 and a log line; once it is back, requests work again."""
    store = FaultyStore()
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        store.down = True
        with caplog.at_level(logging.ERROR, logger="sessionware"):
            r = await b.get("/read")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        assert r.headers["cache-control"] == "no-store"
        assert set_cookies(r) == []
        assert any("store unavailable" in rec.getMessage() for rec in caplog.records)
        store.down = False
        assert (await b.get("/read")).json() == {"user": "ada"}


async def test_store_outage_during_write_gives_503_not_a_half_response() -> None:
    """When the store fails at the write, the client gets a clean 503 and no app body."""
    store = FaultyStore()
    app = session_app(store)
    async with Browser(app) as b:
        await b.get("/set?user=ada")
        # Fail only the write: loads pass, apply fails.
        original = store.apply

        async def failing_apply(*args: object) -> bool:
            store.down = True
            try:
                return await original(*args)  # type: ignore[arg-type]
            finally:
                store.down = False

        store.apply = failing_apply  # type: ignore[method-assign]
        r = await b.get("/set?user=bob")
        store.apply = original  # type: ignore[method-assign]
        data = (await b.get("/read")).json()
    assert r.status_code == 503
    assert "set" not in r.text
    assert data == {"user": "ada"}


async def test_untouched_request_does_not_need_the_store() -> None:
    """Without a session cookie, a request is served even while the store is down."""
    store = FaultyStore()
    store.down = True
    async with Browser(session_app(store)) as b:
        r = await b.get("/")
    assert r.status_code == 200


async def test_no_session_id_in_any_log_line_or_error(caplog: pytest.LogCaptureFixture) -> None:
    """Over login, regenerate, destroy, bad cookies and an outage, no id or cookie is logged."""
    store = FaultyStore()
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        async with Browser(session_app(store, cookie_name="sid"), cookie_name="sid") as b:
            r = await b.get("/set?user=ada")
            seen.append(b.value or "")
            await b.get("/regenerate")
            seen.append(b.value or "")
            await b.get("/set?role=admin")
            await b.get("/read", cookie=f"sid={seen[0]}")
            await b.get("/read", cookie=f"sid={seen[1][:-2]}xx")
            store.down = True
            r = await b.get("/read")
            assert r.status_code == 503
            store.down = False
            await b.get("/destroy")
    sids = [raw_id(v) for v in seen]
    secrets_seen = [*seen, *sids, *(store_key(s) for s in sids)]
    text = caplog.text + "".join(str(rec.exc_info) for rec in caplog.records)
    for secret in secrets_seen:
        assert secret not in text
    assert r.text and all(s not in r.text for s in secrets_seen)


async def test_middleware_needs_a_store_and_says_which() -> None:
    """Building the middleware without a store fails, naming the stores to pick from."""
    with pytest.raises(ConfigurationError, match="SQLiteStore"):
        SessionMiddleware(session_app(MemoryStore(development=True)), secrets=[SECRET])


async def test_config_and_options_together_are_refused() -> None:
    """Passing config= and loose options at once is refused rather than silently merged."""
    from sessionware import SessionConfig

    with pytest.raises(ConfigurationError, match="not both"):
        SessionMiddleware(
            session_app(MemoryStore(development=True)),
            store=MemoryStore(development=True),
            config=SessionConfig(secrets=[SECRET]),
            rolling=True,
        )


async def test_verified_cookie_memo_never_vouches_for_a_variant() -> None:
    """After a valid cookie was verified (and memoised), altered variants still load nothing."""
    store = MemoryStore(development=True)
    async with Browser(session_app(store)) as b:
        await b.get("/set?user=ada")
        good = b.value
        for _ in range(3):  # memoised by value and by whole header
            assert (await b.get("/read", cookie=f"__Host-sid={good}")).json() == {"user": "ada"}
        sid, _, sig = good.rpartition(".")
        variants = [
            f"{sid}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}",  # one signature byte off
            f"{sid}x.{sig}",  # id changed, signature kept
            good + "x",  # trailing data
            sid,  # signature dropped
        ]
        for bad in variants:
            r = await b.get("/read", cookie=f"__Host-sid={bad}")
            assert r.json() == {}, bad


# -- sessionware's own HTTPError, answered by the adapter ------------------------------


def _raising_app(store: MemoryStore, **starlette: object) -> object:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    async def guarded(request: Request) -> None:
        request.session["seen"] = True
        raise HTTPError(401, "Not authenticated", {"WWW-Authenticate": "Session"})

    app = Starlette(routes=[Route("/", guarded)], **starlette)  # type: ignore[arg-type]
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET])
    return app


async def test_http_error_from_a_starlette_app_is_answered_in_plain_text() -> None:
    """A layer's HTTPError becomes its status, headers and text; the session still finishes."""
    store = MemoryStore(development=True)
    async with Browser(_raising_app(store)) as b:
        r = await b.get("/")
    assert r.status_code == 401
    assert r.text == "Not authenticated"
    assert r.headers["www-authenticate"] == "Session"
    assert r.headers["content-type"].startswith("text/plain")
    assert any(c.startswith("__Host-sid=") for c in set_cookies(r))  # 4xx: session stored
    assert len(store) == 1


async def test_http_error_from_a_fastapi_app_is_answered_as_json_detail() -> None:
    """In a FastAPI app the answer is FastAPI's own form: {"detail": ...}."""
    from fastapi import FastAPI

    async def guarded() -> None:
        raise HTTPError(429, "Too many attempts", {"Retry-After": "7"})

    app = FastAPI()
    app.get("/")(guarded)
    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    async with Browser(app) as b:
        r = await b.get("/")
    assert r.status_code == 429
    assert r.json() == {"detail": "Too many attempts"}
    assert r.headers["retry-after"] == "7"


async def test_an_app_exception_handler_for_http_error_wins() -> None:
    """Apps that want their own error page register a handler for HTTPError."""
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse

    async def page(request: Request, exc: Exception) -> PlainTextResponse:
        assert isinstance(exc, HTTPError)
        return PlainTextResponse(f"custom {exc.status_code}", status_code=exc.status_code)

    store = MemoryStore(development=True)
    app = _raising_app(store, exception_handlers={HTTPError: page})
    async with Browser(app) as b:
        r = await b.get("/")
    assert (r.status_code, r.text) == (401, "custom 401")


async def test_a_cookie_queued_twice_goes_out_once_with_its_last_value() -> None:
    """Two values for one companion cookie in one response: only the last is sent."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from sessionware.asgi import add_cookie

    async def twice(request: Request) -> PlainTextResponse:
        add_cookie(request.scope, "remember=first; Path=/; HttpOnly")
        add_cookie(request.scope, "other=1; Path=/")
        add_cookie(request.scope, "remember=; Path=/; Max-Age=0; HttpOnly")
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", twice)])
    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    async with Browser(app) as b:
        r = await b.get("/")
    sent = set_cookies(r)
    remember = [c for c in sent if c.startswith("remember=")]
    assert remember == ["remember=; Path=/; Max-Age=0; HttpOnly"]
    assert "other=1; Path=/" in sent
    assert r.headers["cache-control"] == "no-store"


async def test_a_request_leaves_no_reference_cycle_behind() -> None:
    """Every request is freed by reference counting alone: a cycle per request (the view
    in the scope pointing back at the scope) made the garbage collector run every few
    hundred requests and showed as p99 latency under load."""
    import gc

    store = MemoryStore(development=True)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["session"]["n"] = scope["session"].get("n", 0) + 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    mw = SessionMiddleware(app, store=store, secrets=[SECRET], cookie_name="sid")
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    def scope(cookie: bytes | None) -> dict[str, Any]:
        headers = [(b"cookie", cookie)] if cookie else []
        return {"type": "http", "method": "GET", "path": "/", "headers": headers, "scheme": "http"}

    await mw(scope(None), receive, send)
    cookie = dict(sent[0]["headers"])[b"set-cookie"].split(b";")[0]
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            await mw(scope(cookie), receive, send)
        found = gc.collect()
    finally:
        gc.enable()
    assert found == 0
    assert (await store.load(store_key(raw_id(cookie.decode().split("=", 1)[1]))) or {}).get(
        ".n"
    ) == "51"
