"""The demo's app factory: routes, the middleware stack and the error pages.

The stack, outermost first::

    FriendlyErrors      security headers; the library's plain-text 403/503 as pages
    SessionMiddleware   sessions in the store given by --store / SESSION_STORE
    RememberMeMiddleware  restores a login from the remember-me cookie (not fresh)
    CSRFMiddleware      allowed hosts (400); every unsafe request: Origin/Fetch-Metadata
                        gate + token; form bodies capped (413)
    NoStoreForUsers     Cache-Control: no-store on everything tied to a session
    Router
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sessionware.asgi import SessionMiddleware
from sessionware.csrf import CSRFMiddleware
from sessionware.demo import devices, views
from sessionware.demo.middleware import FriendlyErrors, NoStoreForUsers
from sessionware.demo.pages import TITLES
from sessionware.demo.settings import DemoSettings
from sessionware.demo.state import demo, prepare, who
from sessionware.exceptions import HasherBusyError, HTTPError, StoreUnavailableError
from sessionware.redirects import login_url
from sessionware.remember import RememberMeMiddleware
from sessionware.stores.base import Store
from sessionware.throttle import TooManyAttemptsError

__all__ = ["create_app", "from_env"]

log = logging.getLogger("sessionware.demo")

_TITLES = TITLES


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own (404, 405...) and sessionware's (401 from auth, 429 from the
    # throttle) carry the same status_code, detail and headers.
    assert isinstance(exc, (HTTPException, HTTPError))
    status = exc.status_code
    title, text = _TITLES.get(status, ("Something went wrong", "The request failed."))
    if status == 404 and exc.detail and exc.detail != "Not Found":
        text = exc.detail
    if status == 401 and exc.detail == "Please confirm your password":
        title, text = "Please confirm your password", "This action needs your password again."
    retry = None
    if isinstance(exc, TooManyAttemptsError):
        retry = exc.retry_after
    links = None
    if status == 429:
        links = [("/login", "Back to sign in"), ("/", "Start page")]
    if status == 401:
        links = [(login_url(request, "/login"), "Sign in"), ("/", "Start page")]
    if "session" in request.scope:
        who(request)
    response = demo(request).renderer.error(
        request, status, title, text, retry_after=retry, links=links
    )
    if status == 405 and exc.headers:
        response.headers["allow"] = exc.headers.get("Allow", "")
    return response


async def _store_down(request: Request, exc: Exception) -> Response:
    log.error("session store unavailable during a request: %s", exc)
    return demo(request).renderer.error(
        request,
        503,
        "Temporarily unavailable",
        "The session store cannot be reached right now. This usually clears up within seconds.",
        retry_after=5,
    )


async def _hashing_busy(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HasherBusyError)
    log.warning("password hashing at its concurrency cap: answered 503")
    return demo(request).renderer.error(
        request,
        503,
        "Busy right now",
        "Too many sign-ins are being checked at this moment. Please try again shortly.",
        retry_after=exc.retry_after,
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    return demo(request).renderer.error(
        request, 500, "Something went wrong", "The error was logged. Please try again."
    )


def create_app(
    settings: DemoSettings, *, store: Store | None = None, host: str | None = None
) -> Starlette:
    """Build the reference app; every setting is checked here, before serving.

    ``host`` is the address the server binds; with it (or ``ALLOWED_HOSTS``) only
    loopback names and that address are accepted in ``Host``.
    """
    state = prepare(settings, store, host)
    cfg, store, renderer = state.config, state.store, state.renderer

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.store.close()

    routes = [
        Route("/", views.index),
        Route("/register", views.register_form, methods=["GET"]),
        Route("/register", views.register_submit, methods=["POST"]),
        Route("/login", views.login_form, methods=["GET"]),
        Route("/login", views.login_submit, methods=["POST"]),
        Route("/logout", views.logout_page, methods=["GET"]),
        Route("/logout", views.logout, methods=["POST"]),
        Route("/consent", views.consent, methods=["POST"]),
        Route("/theme", views.theme, methods=["POST"]),
        Route("/dashboard", views.dashboard),
        Route("/me", views.me),
        Route("/sessions", devices.sessions_page, methods=["GET"]),
        Route("/sessions/revoke-others", devices.revoke_others, methods=["POST"]),
        Route("/sessions/{handle}/revoke", devices.revoke_one, methods=["POST"]),
        Route("/password", devices.password_form, methods=["GET"]),
        Route("/password", devices.password_submit, methods=["POST"]),
        Route("/cookies", views.cookies_page),
        Route("/healthz", views.healthz),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]
    middleware = [
        Middleware(FriendlyErrors, renderer=renderer),
        Middleware(SessionMiddleware, store=store, config=cfg.session),
        Middleware(RememberMeMiddleware, config=cfg.remember),
        Middleware(CSRFMiddleware, allowed_hosts=cfg.allowed_hosts),
        Middleware(NoStoreForUsers),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            HTTPException: _http_error,
            HTTPError: _http_error,
            StoreUnavailableError: _store_down,
            HasherBusyError: _hashing_busy,
            500: _server_error,
        },
        lifespan=lifespan,
    )
    # Starlette answers "/path/" with a redirect to an absolute URL built from the Host
    # header; the demo's redirects are all relative, so turn that one off.
    app.router.redirect_slashes = False
    app.state.demo = state
    app.state.settings = settings
    return app


def from_env() -> Starlette:
    """The demo built from the environment alone, for ``uvicorn --factory --workers N``
    (several processes sharing one store); needs ``SESSION_SECRET``."""
    return create_app(DemoSettings.load(make_secret=False))
