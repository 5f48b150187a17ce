"""The CSRF middleware's form-body cap: every unsafe form post it lets through is read
up to ``max_body_size`` and replayed; a larger one gets 413 before the app sees it,
with a session or without, with ``Content-Length`` or chunked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.csrf import CSRFMiddleware, csrf_token
from sessionware.stores import MemoryStore

pytestmark = pytest.mark.anyio

SECRET = "test-secret-0123456789-0123456789-abcdef"
BASE = "https://testserver"
SAME = {"Sec-Fetch-Site": "same-origin", "Origin": BASE}
FORM = {"content-type": "application/x-www-form-urlencoded"}
MIB = 1024 * 1024


class Seen:
    """What reached the app: how many requests, and the body of the last one."""

    def __init__(self) -> None:
        self.calls = 0
        self.body = b""


def make_app(seen: Seen, **csrf: Any) -> Starlette:
    async def login(request: Request) -> Response:
        seen.calls += 1
        seen.body = await request.body()
        return PlainTextResponse(str(len(seen.body)))

    async def start(request: Request) -> Response:
        request.session["n"] = 1
        return PlainTextResponse(csrf_token(request))

    app = Starlette(
        routes=[Route("/login", login, methods=["POST"]), Route("/start", start, methods=["POST"])]
    )
    app.add_middleware(CSRFMiddleware, **csrf)
    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    return app


class Chunks:
    """A request body of ``count`` chunks of ``size`` bytes, counting how many were pulled."""

    def __init__(self, count: int, size: int = MIB, first: bytes = b"username=a&password=") -> None:
        self.count, self.size, self.first = count, size, first
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(self.count):
            self.pulled += 1
            yield (self.first if i == 0 else b"") + b"x" * self.size

    def whole(self) -> bytes:
        return self.first + b"x" * (self.size * self.count)


async def _session_headers(c: httpx.AsyncClient) -> dict[str, str]:
    """Start a session; the headers of a same-origin request carrying its token."""
    r = await c.post("/start", headers=SAME)
    assert r.status_code == 200 and "set-cookie" in r.headers
    return {**SAME, "X-CSRF-Token": r.text}


@pytest.mark.parametrize("with_session", [False, True])
async def test_48_mib_form_with_content_length_gets_413_unread(with_session: bool) -> None:
    """A 48 MiB urlencoded login post is refused 413 from its Content-Length, app untouched."""
    seen = Seen()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(seen)), base_url=BASE
    ) as c:
        headers = await _session_headers(c) if with_session else dict(SAME)
        body = b"username=a&password=" + b"x" * (48 * MIB)
        r = await c.post("/login", headers={**headers, **FORM}, content=body)
    assert r.status_code == 413
    assert "Content Too Large" in r.text
    assert seen.calls == 0


@pytest.mark.parametrize("with_session", [False, True])
async def test_48_mib_chunked_form_gets_413_after_the_cap(with_session: bool) -> None:
    """Without Content-Length, a 48 MiB stream is cut off just past the cap: 413, app untouched."""
    seen = Seen()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(seen)), base_url=BASE
    ) as c:
        headers = await _session_headers(c) if with_session else dict(SAME)
        body = Chunks(48)
        r = await c.post("/login", headers={**headers, **FORM}, content=body)
    assert r.status_code == 413
    assert seen.calls == 0
    assert body.pulled <= 2  # stopped reading at the first chunk past 1 MiB


@pytest.mark.parametrize("with_session", [False, True])
async def test_chunked_form_within_cap_reaches_app_unchanged(with_session: bool) -> None:
    """A streamed form under the cap is read for the check and replayed to the app byte for byte."""
    seen = Seen()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(seen)), base_url=BASE
    ) as c:
        headers = await _session_headers(c) if with_session else dict(SAME)
        body = Chunks(6, size=100_000)
        r = await c.post("/login", headers={**headers, **FORM}, content=body)
    assert r.status_code == 200
    assert seen.calls == 1 and seen.body == body.whole()


async def test_multipart_over_cap_gets_413() -> None:
    """A multipart form over the cap is refused like an urlencoded one."""
    seen = Seen()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(seen)), base_url=BASE
    ) as c:
        files = {"upload": ("a.bin", b"\0" * (MIB + 1))}
        r = await c.post("/login", headers=SAME, data={"username": "a"}, files=files)
    assert r.status_code == 413 and seen.calls == 0


async def test_cap_is_configurable() -> None:
    """max_body_size sets the cap: 2 KiB refuses a 3 KiB form and passes a 1 KiB one."""
    seen = Seen()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(seen, max_body_size=2048)), base_url=BASE
    ) as c:
        big = await c.post("/login", headers={**SAME, **FORM}, content=b"a=" + b"x" * 3000)
        small = await c.post("/login", headers={**SAME, **FORM}, content=b"a=" + b"x" * 1000)
    assert (big.status_code, small.status_code) == (413, 200)
    assert seen.calls == 1


async def test_cross_site_form_refused_before_reading() -> None:
    """A cross-site post is refused 403 on its headers; its body is never pulled."""
    seen = Seen()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(seen)), base_url=BASE
    ) as c:
        body = Chunks(48)
        headers = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example", **FORM}
        r = await c.post("/login", headers=headers, content=body)
    assert r.status_code == 403 and seen.calls == 0
    assert body.pulled == 0


async def test_report_only_still_caps_forms() -> None:
    """report_only relaxes CSRF verdicts, not the body cap: an oversize form still gets 413."""
    seen = Seen()
    app = make_app(seen, report_only=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        cross = {"Sec-Fetch-Site": "cross-site", **FORM}
        big = await c.post("/login", headers=cross, content=Chunks(4))
        small = await c.post("/login", headers=cross, content=b"a=1")
    assert big.status_code == 413
    assert small.status_code == 200  # would be refused: logged and let through
    assert seen.calls == 1


async def test_json_body_is_not_capped_here() -> None:
    """A non-form body is the app's to limit: a 2 MiB JSON post with a header token passes."""
    seen = Seen()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(seen)), base_url=BASE
    ) as c:
        headers = await _session_headers(c)
        r = await c.post(
            "/login",
            headers={**headers, "content-type": "application/json"},
            content=b'"' + b"x" * (2 * MIB) + b'"',
        )
    assert r.status_code == 200 and seen.calls == 1
