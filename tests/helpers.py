"""Helpers for the app-level tests: real stores with a counter or a fault switch,
a small Starlette app, and a client that keeps one cookie by hand.

The stores here are real ``MemoryStore`` subclasses, not mocks: they store and expire
exactly as MemoryStore does, and only count calls or raise while a switch is on.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.exceptions import StoreUnavailableError
from sessionware.signing import Signer
from sessionware.stores import MemoryStore
from sessionware.stores.base import Fields

SECRET = "test-secret-" + "k" * 40


class CountingStore(MemoryStore):
    """A MemoryStore that counts calls per method."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("development", True)
        super().__init__(**kwargs)
        self.calls: Counter[str] = Counter()

    async def load(self, key: str) -> Fields | None:
        self.calls["load"] += 1
        return await super().load(key)

    async def create(self, key: str, fields: Fields, ttl: float) -> None:
        self.calls["create"] += 1
        await super().create(key, fields, ttl)

    async def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool:
        self.calls["apply"] += 1
        return await super().apply(key, sets, dels, ttl)

    async def delete(self, key: str) -> None:
        self.calls["delete"] += 1
        await super().delete(key)

    def writes(self) -> int:
        """Calls that change the store."""
        return self.calls["create"] + self.calls["apply"] + self.calls["delete"]


class FaultyStore(CountingStore):
    """A MemoryStore with a fault switch: while ``down`` is set, every call fails as an outage."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("memory store switched off by the test")

    async def load(self, key: str) -> Fields | None:
        self._check()
        return await super().load(key)

    async def create(self, key: str, fields: Fields, ttl: float) -> None:
        self._check()
        await super().create(key, fields, ttl)

    async def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool:
        self._check()
        return await super().apply(key, sets, dels, ttl)

    async def delete(self, key: str) -> None:
        self._check()
        await super().delete(key)


def session_app(store: Any, **options: Any) -> Starlette:
    """A Starlette app whose routes each do one thing with the session."""
    gates: dict[str, anyio.Event] = {}
    started: dict[str, anyio.Event] = {}

    async def untouched(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def set_(request: Request) -> Response:
        for k, v in request.query_params.items():
            request.session[k] = json.loads(v) if v[:1] in "[{0123456789" else v
        return PlainTextResponse("set")

    async def read(request: Request) -> Response:
        return JSONResponse(dict(request.session))

    async def contains(request: Request) -> Response:
        return PlainTextResponse(str("user" in request.session))

    async def regenerate(request: Request) -> Response:
        await request.session.regenerate()
        return PlainTextResponse("regenerated")

    async def destroy(request: Request) -> Response:
        await request.session.destroy()
        return PlainTextResponse("destroyed")

    async def fail(request: Request) -> Response:
        for k, v in request.query_params.items():
            request.session[k] = v
        return PlainTextResponse("failed", status_code=int(request.path_params["code"]))

    async def boom(request: Request) -> Response:
        request.session["half"] = "written"
        raise RuntimeError("the handler failed half-way")

    async def slow_set(request: Request) -> Response:
        """Set the query values, then wait until the test opens the named gate."""
        name = request.path_params["gate"]
        for k, v in request.query_params.items():
            request.session[k] = v
        started.setdefault(name, anyio.Event()).set()
        await gates.setdefault(name, anyio.Event()).wait()
        return PlainTextResponse("slow")

    async def vary(request: Request) -> Response:
        request.session.get("x")
        return PlainTextResponse("v", headers={"vary": "Accept-Encoding"})

    app = Starlette(
        routes=[
            Route("/", untouched),
            Route("/set", set_),
            Route("/read", read),
            Route("/contains", contains),
            Route("/regenerate", regenerate),
            Route("/destroy", destroy),
            Route("/fail/{code:int}", fail),
            Route("/boom", boom),
            Route("/slow/{gate}", slow_set),
            Route("/vary", vary),
        ]
    )
    options.setdefault("secrets", [SECRET])
    app.add_middleware(SessionMiddleware, store=store, **options)
    app.state.gates = gates
    app.state.started = started
    return app


class Browser:
    """An httpx client against an ASGI app that carries one session cookie by hand.

    The cookie jar is bypassed so tests see exactly what each response sets, and can
    send any Cookie header they like.
    """

    def __init__(
        self, app: Any, *, base_url: str = "https://testserver", cookie_name: str = "__Host-sid"
    ) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=base_url
        )
        self.cookie_name = cookie_name
        self.value: str | None = None

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def get(self, path: str, *, cookie: str | None = None, **kwargs: Any) -> httpx.Response:
        """GET ``path`` with our cookie (or the raw ``cookie`` given); keep what is set."""
        headers: dict[str, str | bytes] = dict(kwargs.pop("headers", {}))
        if cookie is not None:
            headers["cookie"] = cookie.encode()  # bytes: any UTF-8 a client might send
        elif self.value is not None:
            headers["cookie"] = f"{self.cookie_name}={self.value}"
        response = await self.client.get(path, headers=headers, **kwargs)
        self.client.cookies.clear()
        if cookie is not None:
            return response  # a one-off cookie: leave the one we carry alone
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name == self.cookie_name:
                value = rest.split(";")[0]
                self.value = value or None
        return response


def set_cookies(response: httpx.Response) -> list[str]:
    """The raw Set-Cookie header values of a response."""
    return response.headers.get_list("set-cookie")


def attributes(set_cookie: str) -> dict[str, str]:
    """The attributes of one Set-Cookie value, lower-cased names to values ("" for flags)."""
    out: dict[str, str] = {}
    for part in set_cookie.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        out[name.lower()] = value
    return out


def raw_id(signed: str, secrets: list[str] | None = None) -> str:
    """The raw session id inside a signed cookie value."""
    return Signer(secrets or [SECRET], salt="session").unsign(signed)


def signed(value: str, secrets: list[str] | None = None) -> str:
    """``value`` signed as a session cookie, the way a client with the secret would."""
    return Signer(secrets or [SECRET], salt="session").sign(value)


