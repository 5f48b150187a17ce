"""Reading the CSRF token out of a form body: any body and Content-Type gives the
token or None, never an exception; a token planted among other fields (urlencoded or
multipart, in any position, next to a file of the same name) is found exactly; a body
cut short finds it or nothing, never another value; and the real middleware answers a
fuzzed post with 200, 400, 403 or 413, never a 500."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote_plus

import httpx
from hypothesis import event, given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.csrf import CSRFMiddleware, csrf_token
from sessionware.csrf.form import form_field
from sessionware.stores import MemoryStore
from tests.fuzz.conftest import FUZZ
from tests.helpers import SECRET

FIELD = "_csrf"
content_types = st.sampled_from(
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=XyZ",
     "multipart/form-data", "multipart/form-data; boundary=", "text/plain", "",
     "MULTIPART/FORM-DATA; boundary=\"a b\"", "application/x-www-form-urlencoded; charset=x"]
) | st.text(max_size=60)  # fmt: skip
names = st.text(max_size=12).filter(lambda n: n != FIELD)
token_text = st.from_regex(r"[A-Za-z0-9_-]{20,60}", fullmatch=True)


@FUZZ
@given(st.binary(max_size=2000), content_types)
def test_any_body_gives_a_string_or_none(body: bytes, content_type: str) -> None:
    found = form_field(body, content_type, FIELD)
    assert found is None or isinstance(found, str)


@FUZZ
@given(st.lists(st.tuples(names, st.text(max_size=30)), max_size=6), token_text, st.data())
def test_a_token_among_urlencoded_fields_is_found_exactly(
    others: list[tuple[str, str]], token: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(others)))
    pairs = [*others[:at], (FIELD, token), *others[at:]]
    body = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs).encode()
    assert form_field(body, "application/x-www-form-urlencoded", FIELD) == token


def _multipart(parts: list[tuple[str, bytes, bool]], boundary: str = "XyZzy") -> bytes:
    out = b""
    for name, value, is_file in parts:
        filename = '; filename="f.txt"' if is_file else ""
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'
            ).encode()
            + value
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


part_names = st.from_regex(r"[a-z_]{1,10}", fullmatch=True).filter(lambda n: n != FIELD)
parts = st.lists(st.tuples(part_names, st.binary(max_size=200), st.booleans()), max_size=5)


@FUZZ
@given(parts, token_text, st.booleans(), st.data())
def test_a_token_among_multipart_parts_is_found_exactly(
    others: list[tuple[str, bytes, bool]], token: str, decoy: bool, data: st.DataObject
) -> None:
    """A file part named like the field (a decoy, placed first) is never taken for it."""
    at = data.draw(st.integers(0, len(others)))
    planted = [*others[:at], (FIELD, token.encode(), False), *others[at:]]
    if decoy:
        planted.insert(0, (FIELD, b"not-the-token", True))
    body = _multipart(planted)
    content_type = "multipart/form-data; boundary=XyZzy"
    assert form_field(body, content_type, FIELD) == token
    cut = data.draw(st.integers(0, len(body)))
    assert form_field(body[:cut], content_type, FIELD) in (None, token)


def _app() -> Starlette:
    async def start(request: Request) -> Response:
        request.session["n"] = 1
        return PlainTextResponse(csrf_token(request))

    async def post(request: Request) -> Response:
        await request.body()
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/start", start, methods=["POST"]), Route("/post", post, methods=["POST"])]
    )
    app.add_middleware(CSRFMiddleware, max_body_size=4096)
    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    return app


APP = _app()
BASE = "https://testserver"
SAME = {"sec-fetch-site": "same-origin", "origin": BASE}


async def _post(body: bytes, content_type: str, plant: bool, headers: dict[str, str]) -> int:
    transport = httpx.ASGITransport(app=APP, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        start = await client.post("/start", headers=SAME)
        token = start.text
        if plant:
            body = body + f"&{FIELD}={token}".encode()
        answer = await client.post(
            "/post", content=body, headers={**SAME, **headers, "content-type": content_type}
        )
        return answer.status_code


@FUZZ
@given(
    st.binary(max_size=6000),
    st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=XyZ",
         "multipart/form-data", "text/plain", "application/json", "multipart/form-data; x"]
    ) | st.from_regex(r"[ -~]{0,50}", fullmatch=True),
    st.booleans(),
    st.dictionaries(st.sampled_from(["origin", "sec-fetch-site", "x-csrf-token"]),
                    st.from_regex(r"[ -~]{0,40}", fullmatch=True), max_size=2),
)  # fmt: skip
def test_the_middleware_never_answers_a_fuzzed_post_with_a_500(
    body: bytes, content_type: str, plant: bool, headers: dict[str, Any]
) -> None:
    status = asyncio.run(_post(body, content_type, plant, headers))
    event(str(status))
    assert status in (200, 400, 403, 413)
