"""Reading the CSRF token out of a form body, and the middlewares around it.

The reader: any body and Content-Type gives a string or None, never an exception; a
urlencoded body reads as the standard library's parser reads it, a well-formed
multipart body as Starlette's own form parser does; a token anywhere but the field
(another field's value, a file part, a part's headers, the preamble) is never taken
for it; a field over the cap or cut off by the body's end is refused, never read in
part. The middlewares (ASGI, and Flask's for WSGI): a fuzzed post is answered 200,
400, 403 or 413, never 500; 200 exactly when the first field named ``_csrf`` is this
session's token; the app gets the body byte for byte; and a body over the cap is
refused without reading more than one chunk past it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus

import httpx
import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from hypothesis import event, given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.csrf import CSRFMiddleware, csrf_token
from sessionware.csrf.form import form_field
from sessionware.flask import Sessionware
from sessionware.flask.csrf import CSRFProtect
from sessionware.flask.csrf import csrf_token as flask_csrf_token
from sessionware.stores import MemoryStore
from tests.fuzz.conftest import FUZZ
from tests.helpers import SECRET

FIELD = "_csrf"
LIMIT = 4096
BOUNDARY = "XyZzy-41"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"

content_types = st.sampled_from(
    [URLENCODED, MULTIPART, "multipart/form-data", "multipart/form-data; boundary=",
     "text/plain", "", "MULTIPART/FORM-DATA; boundary=\"a b\"", f"{URLENCODED}; charset=x",
     f"multipart/form-data; boundary={'b' * 80}", "multipart/form-data; boundary=\"\\\"\"",
     "multipart/form-data; boundary=a; boundary=b", "application/json"]
) | st.text(max_size=60)  # fmt: skip
#: Names around the field's: near misses of every kind, and the field itself.
near_names = st.sampled_from(
    [FIELD, "_CSRF", "_csrf ", " _csrf", "_csrfx", "x_csrf", "%5Fcsrf", "_csrf[]", "csrf",
     "_csr", "_csrf\x00", "title", "a", ""]
) | st.text(max_size=8)  # fmt: skip
tokens = st.from_regex(r"[A-Za-z0-9_-]{20,86}", fullmatch=True)


# -- the reader ------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=3000) | st.text(max_size=500).map(str.encode), content_types)
def test_any_body_gives_a_string_or_none(body: bytes, content_type: str) -> None:
    found = form_field(body, content_type, FIELD)
    assert found is None or (isinstance(found, str) and len(found) <= 3 * 1024)


def _reference_urlencoded(body: bytes) -> str | None:
    """The first value of the field as the standard library reads the body (WHATWG)."""
    for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        if name == FIELD:
            return value
    return None


@FUZZ
@given(st.lists(st.tuples(near_names, st.text(max_size=30) | tokens), max_size=6), st.data())
def test_a_urlencoded_body_reads_as_the_standard_parser_reads_it(
    pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    """Names and values encoded every way a client may (plus, percent, raw), joined with
    stray separators: the reader agrees with ``parse_qsl`` on every body."""
    encoders = [quote_plus, lambda t: quote(t, safe=""), lambda t: t.replace("&", "%26")]
    parts = []
    for name, value in pairs:
        enc = data.draw(st.sampled_from(encoders))
        parts.append(
            f"{enc(name)}={enc(value)}" if data.draw(st.booleans()) or value else enc(name)
        )
    joiner = data.draw(st.sampled_from(["&", "&&", "&;"]))
    body = joiner.join(parts).encode()
    expected = _reference_urlencoded(body)
    event("has the field" if expected is not None else "no field")
    assert form_field(body, URLENCODED, FIELD) == expected


def _multipart(parts: list[tuple[str, bytes, bool]], preamble: bytes = b"") -> bytes:
    out = preamble
    for name, value, is_file in parts:
        filename = '; filename="f.txt"' if is_file else ""
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'
        out += head.encode() + value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def _starlette_form(body: bytes) -> Any:
    """The field as Starlette's form parser (the app's own view of the body) reads it."""

    async def stream() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(Headers({"content-type": MULTIPART}), stream())
    form = await parser.parse()
    values = [v for k, v in form.multi_items() if k == FIELD and isinstance(v, str)]
    await form.close()  # its file parts' spooled files
    return values[0] if values else None


multipart_names = st.sampled_from(
    [FIELD, FIELD, "_CSRF", "_csrfx", "x_csrf", "_csrf "]
) | st.from_regex(r"[A-Za-z0-9_ .\[\]-]{0,10}", fullmatch=True)
multipart_parts = st.lists(
    st.tuples(multipart_names, st.binary(max_size=120) | tokens.map(str.encode), st.booleans()),
    max_size=6,
)


def _as_starlette_decodes(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@FUZZ
@given(multipart_parts, st.sampled_from([b"", b"", b"", b"preamble _csrf=x\r\n"]))
def test_a_multipart_body_reads_as_starlette_reads_it(
    parts: list[tuple[str, bytes, bool]], preamble: bytes
) -> None:
    """File parts named like the field, near-miss names, binary values: the field is the
    first non-file part of exactly that name, for the reader and for Starlette alike;
    the reader gives its bytes as latin-1 text, or None past the cap."""
    body = _multipart(parts, preamble)
    ours = form_field(body, MULTIPART, FIELD)
    try:
        starlette = asyncio.run(_starlette_form(body))
    except MultiPartException:
        event("refused by both")  # python-multipart takes no preamble
        assert ours is None
        return
    raw = next((v for n, v, is_file in parts if n == FIELD and not is_file), None)
    assert starlette == (None if raw is None else _as_starlette_decodes(raw))
    event("has the field" if raw is not None else "no field")
    if raw is None or len(raw) > 1024:
        assert ours is None
    else:
        assert ours == raw.decode("latin-1")


@FUZZ
@given(tokens, st.data())
def test_a_token_anywhere_but_the_field_is_never_taken_for_it(
    token: str, data: st.DataObject
) -> None:
    """In another field's value, a file part, a part's headers, a preamble or epilogue,
    a near-miss name: never read as the field."""
    place = data.draw(st.sampled_from(["value", "file", "header", "preamble", "epilogue",
                                       "near", "query", "json"]))  # fmt: skip
    near = data.draw(st.sampled_from(["_CSRF", "_csrfx", "x_csrf", "csrf", "_csrf[]"]))
    encoded = f"{FIELD}={token}"
    urlencoded = {
        "value": f"title={quote_plus(encoded)}",
        "near": f"{near}={token}",
        "query": f"a=1?{FIELD}%3D{token}",
        "json": f'{{"{FIELD}": "{token}"}}',
    }
    multipart = {
        "value": _multipart([("title", encoded.encode(), False)]),
        "file": _multipart([(FIELD, token.encode(), True)]),
        "header": (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="t"\r\nX-{FIELD}: {token}\r\n'
            f'Content-Type: text/plain; name="{FIELD}"\r\n\r\nv\r\n--{BOUNDARY}--\r\n'
        ).encode(),
        "preamble": _multipart([("t", b"v", False)], f"{encoded}\r\n".encode()),
        "epilogue": _multipart([("t", b"v", False)]) + f"{encoded}\r\n".encode(),
        "near": _multipart([(near, token.encode(), False)]),
    }
    if place in urlencoded:
        assert form_field(urlencoded[place].encode(), URLENCODED, FIELD) is None
    if place in multipart:
        assert form_field(multipart[place], MULTIPART, FIELD) is None


@FUZZ
@given(multipart_parts, tokens, st.booleans(), st.data())
def test_a_token_cut_off_or_over_the_cap_is_refused_never_read_in_part(
    others: list[tuple[str, bytes, bool]], token: str, decoy: bool, data: st.DataObject
) -> None:
    others = [p for p in others if p[0] != FIELD]
    at = data.draw(st.integers(0, len(others)))
    planted = [*others[:at], (FIELD, token.encode(), False), *others[at:]]
    if decoy:
        planted.insert(0, (FIELD, b"not-the-token", True))
    body = _multipart(planted)
    assert form_field(body, MULTIPART, FIELD) == token
    cut = data.draw(st.integers(0, len(body)))
    assert form_field(body[:cut], MULTIPART, FIELD) in (None, token)
    huge = token + data.draw(st.text(alphabet="abc", min_size=1025, max_size=1100))
    assert form_field(_multipart([(FIELD, huge.encode(), False)]), MULTIPART, FIELD) is None
    assert form_field(f"{FIELD}={huge}".encode(), URLENCODED, FIELD) is None


# -- a body the middlewares are given --------------------------------------------------


@st.composite
def posts(draw: st.DrawFn, token: str, other_token: str) -> tuple[bytes, str, bool]:
    """``(body, content type, whether it must pass)``: a urlencoded or multipart form
    whose fields may hold this session's token, a damaged one or another session's, in
    any order; or a body of anything under any content type (which never passes)."""
    if draw(st.integers(0, 4)) == 0:
        body = draw(st.binary(max_size=6000))
        # A header arrives as bytes: any text the way a server reads its UTF-8 (latin-1).
        return body, draw(content_types).encode().decode("latin-1"), False
    candidates = [token, token[:-1], token + "x", token[1:] + token[0], other_token, "", "x"]
    fields = draw(
        st.lists(
            st.tuples(near_names, st.sampled_from(candidates) | st.text(max_size=40)),
            max_size=5,
        )
    )
    if draw(st.booleans()):  # the genuine token, often first of its name, not always
        fields.insert(draw(st.integers(0, len(fields))), (FIELD, token))
    padding = draw(st.sampled_from([0, 0, 0, 100, 3000, 6000]))
    fields.insert(draw(st.integers(0, len(fields))), ("title", "p" * padding))
    first = next((v for n, v in fields if n == FIELD), None)
    if draw(st.booleans()):
        body = "&".join(f"{quote_plus(n)}={quote_plus(v)}" for n, v in fields).encode()
        content_type = URLENCODED
    else:
        fields = [(n, v) for n, v in fields if not set(n) & set('"\r\n')]  # header-safe names
        body = _multipart([(n, v.encode(), False) for n, v in fields])
        first = next((v for n, v in fields if n == FIELD), None)
        content_type = MULTIPART
    return body, content_type, first == token and len(body) <= LIMIT


def _app(calls: list[str]) -> Starlette:
    async def start(request: Request) -> Response:
        request.session["n"] = 1
        return PlainTextResponse(csrf_token(request))

    async def post(request: Request) -> Response:
        calls.append("post")
        return PlainTextResponse(hashlib.sha256(await request.body()).hexdigest())

    app = Starlette(
        routes=[Route("/start", start, methods=["POST"]), Route("/post", post, methods=["POST"])]
    )
    app.add_middleware(CSRFMiddleware, max_body_size=LIMIT)
    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    return app


BASE = "https://testserver"
SAME = {"sec-fetch-site": "same-origin", "origin": BASE}


class Asgi:
    """The fuzzed app, the cookie of a session of it, its token and another session's."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.app = _app(self.calls)
        self.cookies, self.token = asyncio.run(self._start())
        self.other = asyncio.run(self._start())[1]

    async def _start(self) -> tuple[dict[str, str], str]:
        async with self.client({}) as client:
            token = (await client.post("/start", headers=SAME)).text
            return dict(client.cookies.items()), token

    def client(self, cookies: dict[str, str]) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url=BASE, cookies=cookies)

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """One post with the session's cookie (an event loop each: hypothesis calls);
        header values go as their latin-1 bytes, as a server hands them on."""
        raw = {k: v.encode("latin-1") for k, v in headers.items()}

        async def run() -> httpx.Response:
            async with self.client(self.cookies) as client:
                return await client.post("/post", content=body, headers=raw)

        return asyncio.run(run())


@pytest.fixture(scope="module")
def asgi() -> Asgi:
    return Asgi()


@FUZZ
@given(st.data())
def test_the_asgi_middleware_answers_a_fuzzed_post_never_with_a_500(
    asgi: Asgi, data: st.DataObject
) -> None:
    body, content_type, passes = data.draw(posts(asgi.token, asgi.other))
    answer = asgi.post(body, {**SAME, "content-type": content_type})
    event(f"{answer.status_code}{' (must pass)' if passes else ''}")
    assert answer.status_code in (200, 400, 403, 413), answer.text
    assert (answer.status_code == 200) == passes, (answer.status_code, answer.text)
    if passes:
        assert answer.text == hashlib.sha256(body).hexdigest()  # replayed byte for byte


@FUZZ
@given(
    st.sampled_from(["origin", "sec-fetch-site", "referer", "x-csrf-token", "host"]),
    st.from_regex(r"[ -~]{0,60}", fullmatch=True),
    st.binary(max_size=200),
)
def test_odd_headers_on_a_post_are_never_a_500(
    asgi: Asgi, name: str, value: str, body: bytes
) -> None:
    headers = {**SAME, "content-type": URLENCODED, name: value}
    answer = asgi.post(body + f"&{FIELD}={asgi.token}".encode(), headers)
    event(str(answer.status_code))
    assert answer.status_code in (200, 400, 403, 413), answer.text


@FUZZ
@given(
    chunk=st.integers(1, 3000),
    total=st.integers(0, 3 * LIMIT) | st.integers(LIMIT - 3, LIMIT + 3),
    declared=st.sampled_from(["none", "true", "small", "huge", "bad"]),
)
def test_a_streamed_body_is_read_no_further_than_one_chunk_past_the_cap(
    asgi: Asgi, chunk: int, total: int, declared: str
) -> None:
    """Raw ASGI with a ``receive`` that counts what it hands out, for a session's post
    without a token: a declared length over the cap is refused unread, a stream over it
    as soon as it passes, a malformed length with a 400; the app is never called."""
    sent = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        size = min(chunk, total - sent)
        sent += size
        return {"type": "http.request", "body": b"a" * size, "more_body": sent < total}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    length = {"none": None, "true": str(total), "small": "1", "huge": str(10**12), "bad": "1e3"}
    cookie = "; ".join(f"{k}={v}" for k, v in asgi.cookies.items())
    headers = [(b"content-type", URLENCODED.encode()), (b"origin", BASE.encode()),
               (b"sec-fetch-site", b"same-origin"), (b"host", b"testserver"),
               (b"cookie", cookie.encode())]  # fmt: skip
    if length[declared] is not None:
        headers.append((b"content-length", length[declared].encode()))
    scope = {"type": "http", "method": "POST", "path": "/post", "raw_path": b"/post",
             "scheme": "https", "server": ("testserver", 443), "client": ("127.0.0.1", 5),
             "headers": headers, "query_string": b"", "root_path": "", "http_version": "1.1",
             "app": asgi.app}  # fmt: skip
    before = len(asgi.calls)
    asyncio.run(asgi.app(scope, receive, send))
    status = statuses[0]
    event(f"{declared}: {status}")
    if declared == "bad":
        assert status == 400 and sent == 0
    elif declared == "huge" or (declared == "true" and total > LIMIT):
        assert status == 413 and sent == 0  # refused unread
    elif total > LIMIT:
        assert status == 413 and sent <= LIMIT + chunk
    else:
        assert status == 403 and sent == total  # read whole: no token in it
    assert len(asgi.calls) == before  # the app never saw it


# -- WSGI: Flask's CSRFProtect ---------------------------------------------------------


@pytest.fixture(scope="module")
def flask_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, SESSIONWARE_COOKIE_NAME="sid")
    Sessionware(app, store=MemoryStore(development=True))
    CSRFProtect(app, max_body_size=LIMIT)

    @app.get("/start")
    def start() -> str:
        from flask import session

        session["n"] = 1
        return flask_csrf_token()

    @app.post("/post")
    def post() -> str:
        return hashlib.sha256(request.get_data()).hexdigest()

    return app


@pytest.fixture
def wsgi(flask_app: Flask) -> Iterator[tuple[FlaskClient, str, str]]:
    other = flask_app.test_client().get("/start").text
    client = flask_app.test_client()
    yield client, client.get("/start").text, other


class CountingStream(io.BytesIO):
    """``wsgi.input`` that counts the bytes the app read from it."""

    read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        self.read_bytes += len(out)
        return out

    def readline(self, size: int | None = -1) -> bytes:
        out = super().readline(size)
        self.read_bytes += len(out)
        return out


@FUZZ
@given(st.data())
def test_the_flask_extension_answers_a_fuzzed_post_never_with_a_500(
    wsgi: tuple[FlaskClient, str, str], data: st.DataObject
) -> None:
    client, token, other = wsgi
    body, content_type, passes = data.draw(posts(token, other))
    content_type = content_type.replace("\r", "").replace("\n", "")  # no server passes those
    stream = CountingStream(body)
    answer = client.post(
        "/post",
        input_stream=stream,
        content_type=content_type,
        headers={"Origin": "http://localhost", "Content-Length": str(len(body))},
    )
    event(f"{answer.status_code}{' (must pass)' if passes else ''}")
    assert answer.status_code in (200, 400, 403, 413), answer.text
    assert (answer.status_code == 200) == passes, (answer.status_code, answer.text)
    assert stream.read_bytes <= LIMIT + 1  # never past the cap
    if passes:
        assert answer.text == hashlib.sha256(body).hexdigest()
