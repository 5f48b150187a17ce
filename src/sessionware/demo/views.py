"""The public pages and the sign-in flow: landing, register, login, logout, dashboard."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from sessionware import auth
from sessionware.declaration import format_duration
from sessionware.demo import prefs
from sessionware.demo.config import cookie_table
from sessionware.demo.pages import (
    BAD_LOGIN,
    MAX_FIELDS,
    field_text,
    registration_errors,
    with_notice,
)
from sessionware.demo.render import flash
from sessionware.demo.state import check_password, demo, safe_next, who
from sessionware.exceptions import StoreUnavailableError
from sessionware.redirects import login_url

__all__ = [
    "consent",
    "cookies_page",
    "dashboard",
    "healthz",
    "index",
    "login_form",
    "login_redirect",
    "login_submit",
    "logout",
    "logout_page",
    "me",
    "register_form",
    "register_submit",
    "theme",
]


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _see_other(url: str) -> RedirectResponse:
    """303: the browser follows a POST's answer with a GET."""
    return RedirectResponse(url, status_code=303)


async def index(request: Request) -> Response:
    """The landing page: no session is read or made for a visitor."""
    who(request)
    return demo(request).renderer.page(request, "index.html")


# -- register ---------------------------------------------------------------------


def _hint(request: Request) -> str:
    return f"At least {demo(request).policy.min_length} characters; not a common password."


async def register_form(request: Request) -> Response:
    """The registration form (signed-in users go to their dashboard)."""
    if who(request):
        return _see_other("/dashboard")
    return demo(request).renderer.page(
        request, "register.html", {"username": "", "errors": {}, "password_hint": _hint(request)}
    )


async def _form(request: Request) -> Any:
    """The posted form, refused with a 400 past a handful of fields or any file."""
    return await request.form(max_files=0, max_fields=MAX_FIELDS)


async def register_submit(request: Request) -> Response:
    """Create the account, then sign in with a new session; counted per IP before hashing."""
    state = demo(request)
    form = await _form(request)
    username, password = _field(form, "username").strip(), _field(form, "password")
    errors = registration_errors(
        state.policy, username, password, field_text(form, "confirm_password")
    )
    user = None
    if not errors:
        await state.config.registration.check(request)  # 429 before any hashing
        digest = await state.hasher.offload(state.hasher.hash, password)
        user = state.users.add(username, digest)
        if user is None:
            errors = {"username": "That username is taken: choose another."}
    if user is None:
        return state.renderer.page(
            request,
            "register.html",
            {"username": username, "errors": errors, "password_hint": _hint(request)},
            status=400,
        )
    await auth.login(request, str(user.id))
    request.state.user = user
    flash(request, "ok", f"Welcome, {user.username}! Your account is ready.")
    return _see_other("/dashboard")


# -- login and logout -------------------------------------------------------------


def _remember_for(request: Request) -> str:
    return format_duration(demo(request).config.remember.ttl_seconds)


async def login_form(request: Request) -> Response:
    """The sign-in form; ``next`` is kept only if it is a local path."""
    asked = request.query_params.get("next")
    nxt = safe_next(asked)
    if who(request):
        return _see_other(nxt)
    context = {
        "username": "",
        "next": nxt,
        "remember_for": _remember_for(request),
        "asked": bool(asked) and request.query_params.get("m") != "expired",
    }
    return demo(request).renderer.page(request, "login.html", context)


async def login_submit(request: Request) -> Response:
    """Check the password under the throttle: a 401 means it was checked, a 429 that it
    was not; a failure sets no cookie."""
    state = demo(request)
    form = await _form(request)
    username, password = _field(form, "username").strip(), _field(form, "password")
    nxt = safe_next(_field(form, "next") or request.query_params.get("next"))
    remember = _field(form, "remember_me") not in ("", "0", "off", "false")
    throttle = state.config.throttle
    # The attempt takes its place in every budget first (429 before any password
    # work); leaving the block without succeeded() keeps it as a failure.
    async with throttle.attempt(request, username) as attempt:
        user = state.users.by_name(username) if username else None
        if not await check_password(request, user, password) or user is None:
            wait = await attempt.failed()
            error = BAD_LOGIN + (f" Wait {wait} seconds before trying again." if wait else "")
            return state.renderer.page(
                request,
                "login.html",
                {
                    "username": username,
                    "next": nxt,
                    "error": error,
                    "remember_for": _remember_for(request),
                },
                status=401,
            )
        await attempt.succeeded()
    if state.hasher.needs_rehash(user.password_hash):
        digest = await state.hasher.offload(state.hasher.hash, password)
        state.users.set_password_hash(user.id, digest)
    await auth.login(request, str(user.id), remember=remember)
    request.state.user = user
    flash(request, "ok", f"Signed in as {user.username}.")
    return _see_other(nxt)


async def logout_page(request: Request) -> Response:
    """A link or a typed address asks first: a GET must not sign anyone out."""
    who(request)
    return demo(request).renderer.page(request, "logout.html")


async def logout(request: Request) -> Response:
    """End this session and its remember-me series (the form on every page posts here)."""
    await auth.logout(request)
    return _see_other("/?m=signed-out")


# -- signed-in pages ----------------------------------------------------------------


def login_redirect(request: Request) -> Response:
    """To the sign-in form, saying why when the browser's session has just ended."""
    url = login_url(request, "/login")
    session = request.scope.get("session")
    if session is not None and session.is_new and getattr(session, "had_cookie", False):
        # A cookie came, but no live session answered to it.
        url += ("&" if "?" in url else "?") + "m=expired"
    return _see_other(url)


async def dashboard(request: Request) -> Response:
    """Who you are, and what the server knows about this session."""
    user = who(request)
    if user is None:
        return login_redirect(request)
    state = demo(request)
    session = request.scope["session"]
    cfg = state.config.session
    created, seen = session.created, session.last_seen
    info = {
        "handle": auth.current_handle(request),
        "created": created,
        "last_seen": seen,
        "idle_expiry": (seen + cfg.idle) if seen else None,
        "absolute_expiry": (created + cfg.absolute) if created else None,
        "fresh": auth.is_recent_login(request, cfg.absolute),
        "remembered": auth.is_remembered(request),
    }
    return state.renderer.page(request, "dashboard.html", {"info": info})


async def me(request: Request) -> Response:
    """``{"user_id", "username"}`` for the signed-in user, or a 401 in JSON."""
    user = who(request)
    if user is None:
        return JSONResponse({"error": "not authenticated"}, status_code=401)
    return JSONResponse({"user_id": user.id, "username": user.username})


async def cookies_page(request: Request) -> Response:
    """The cookie declaration, generated from the running settings, and the visitor's choice."""
    who(request)
    state = demo(request)
    table = cookie_table(state.config, state.tls)
    return state.renderer.page(request, "cookies.html", {"cookies": table})


async def consent(request: Request) -> Response:
    """Record the visitor's cookie choice (the only cookie a choice sets), then go back."""
    form = await _form(request)
    choice = _field(form, "choice")
    cookies = prefs.consent_cookies(choice, demo(request).tls)
    back = safe_next(_field(form, "next"), "/")
    response = _see_other(with_notice(back, f"consent-{choice}") if cookies else back)
    for value in cookies:
        response.headers.append("set-cookie", value)
    return response


async def theme(request: Request) -> Response:
    """Keep the chosen theme, in its cookie, only if non-essential cookies were accepted."""
    form = await _form(request)
    state = demo(request)
    chosen = prefs.read(request.headers.get("cookie"), state.tls)
    value = prefs.theme_cookie(_field(form, "theme"), chosen, state.tls)
    back = safe_next(_field(form, "next"), "/")
    response = _see_other(with_notice(back, "theme") if value else back)
    if value:
        response.headers.append("set-cookie", value)
    return response


async def healthz(request: Request) -> Response:
    """200 when the session store answers, 503 when it does not (no session involved)."""
    store = demo(request).store
    try:
        await store.load("sessionware-healthz")
    except StoreUnavailableError:
        return JSONResponse(
            {"status": "unavailable", "store": getattr(store, "kind", "?")},
            status_code=503,
            headers={"Retry-After": "5", "Cache-Control": "no-store"},
        )
    return JSONResponse(
        {"status": "ok", "store": getattr(store, "kind", "?")},
        headers={"Cache-Control": "no-store"},
    )
