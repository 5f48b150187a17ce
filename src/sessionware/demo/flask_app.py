"""The demo on Flask: the same HTTP contract as :mod:`sessionware.demo.app`, on WSGI.

Same paths, form fields, JSON, status codes, cookies, headers and pages, on the same
templates (:class:`~sessionware.demo.render.Renderer`), users, settings and words
(:mod:`sessionware.demo.pages`). The session is :class:`sessionware.flask.Sessionware`
(``flask.session``, remember-me restored in its hook), CSRF is
:class:`sessionware.flask.csrf.CSRFProtect`, and every flow is a plain call of
:mod:`sessionware.auth.sync` and the throttles' ``sync`` faces: no event loop.

``sessionware demo --framework flask`` serves it with gunicorn.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import flask
from flask import Flask, Response, g, request
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
)

from sessionware.auth import sync as auth
from sessionware.auth.current import (
    current_handle,
    current_user_id,
    is_recent_login,
    is_remembered,
)
from sessionware.config import SessionConfig
from sessionware.csrf.check import Refusal
from sessionware.declaration import format_duration
from sessionware.demo import prefs
from sessionware.demo.config import RECENT_LOGIN, cookie_table
from sessionware.demo.pages import (
    BAD_LOGIN,
    MAX_FIELDS,
    MESSAGES,
    TITLES,
    device_order,
    field_text,
    password_errors,
    refused,
    registration_errors,
    reload_target,
    security_headers,
    stale_redirect,
    tied_to_session,
    with_notice,
)
from sessionware.demo.render import (
    error_context,
    error_json,
    flash,
    take_flashes,
    wants_json,
)
from sessionware.demo.settings import DemoSettings
from sessionware.demo.state import DemoState, prepare, safe_next
from sessionware.demo.users import User
from sessionware.exceptions import HasherBusyError, HTTPError, StoreUnavailableError
from sessionware.flask import Sessionware, current_view
from sessionware.flask.csrf import CSRFProtect, csrf_token
from sessionware.flask.extension import FlaskSession
from sessionware.redirects import login_url
from sessionware.request import RequestView
from sessionware.stores.base import Store, SyncStore
from sessionware.throttle import TooManyAttemptsError
from sessionware.wsgi import SESSION_KEY

__all__ = ["DemoFlask", "create_app", "from_env"]

log = logging.getLogger("sessionware.demo")

#: SessionConfig options handed to Sessionware through app.config.
_SESSION_OPTIONS = (
    "cookie_name",
    "resave",
    "save_uninitialized",
    "rolling",
    "idle_timeout",
    "absolute_timeout",
    "touch_interval",
    "trust_proxy",
    "http_only",
    "secure",
    "same_site",
    "domain",
    "path",
    "max_age",
    "partitioned",
    "max_size",
    "max_sessions_per_user",
)


@dataclass(slots=True)
class _AppState:
    demo: DemoState
    settings: DemoSettings


class DemoFlask(Flask):
    """Flask with the demo's ``state`` (``app.state.demo``, ``app.state.settings``)."""

    state: _AppState


# -- request helpers ----------------------------------------------------------------


def _demo() -> DemoState:
    app = flask.current_app
    assert isinstance(app, DemoFlask)
    return app.state.demo


def _view() -> RequestView:
    return current_view()


def _session() -> FlaskSession | None:
    """The request's session, read from the environ: the ``flask.session`` proxy marks
    it accessed (so ``Vary: Cookie``) on every read, where the Starlette app does not."""
    session = request.environ.get(SESSION_KEY)
    return session if isinstance(session, FlaskSession) else None


def who() -> User | None:
    """The signed-in user (cached on ``g``), or None."""
    if "user" in g:
        cached: User | None = g.user
        return cached
    user = None
    if _session() is not None:
        uid = current_user_id(_view())
        user = _demo().users.by_id(uid) if uid is not None else None
    g.user = user
    return user


def _csrf() -> str:
    try:
        return csrf_token()
    except RuntimeError:
        return ""


def _page(
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    html = _demo().renderer.render(
        name,
        context,
        user=g.get("user"),
        csrf=_csrf(),
        flashes=take_flashes(current_view(), request.args.get("m")),
        request=request,
        cookie_header=request.headers.get("cookie"),
        path=safe_next(request.full_path.rstrip("?"), "/"),
    )
    return Response(html, status=status, headers=headers, content_type="text/html; charset=utf-8")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON as Starlette's JSONResponse writes it (compact, UTF-8)."""
    text = json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    return Response(text, status=status, headers=headers, content_type="application/json")


def _error(
    status: int,
    title: str,
    message: str,
    *,
    retry_after: int | None = None,
    links: list[tuple[str, str]] | None = None,
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    if wants_json(request.headers.get("accept", ""), request.path):
        return _json(error_json(title, message, retry_after), status, headers)
    context = error_context(status, title, message, retry_after, links)
    return _page("error.html", context, status=status, headers=headers)


def _see_other(url: str) -> Response:
    """303 with a relative Location and no body, as Starlette's RedirectResponse."""
    response = Response(b"", status=303)
    response.headers["location"] = quote(url, safe=":/%#?=@[]!$&'()*+,;")
    del response.headers["content-type"]
    return response


def _flash(kind: str, text: str) -> None:
    flash(current_view(), kind, text)


def _form() -> Any:
    """The posted form, refused with a 400 past a handful of fields or any file."""
    form = request.form
    if request.files or len(list(form.items(multi=True))) > MAX_FIELDS:
        raise BadRequest("Too many fields.")
    return form


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _check_password(user: User | None, password: str) -> bool:
    hasher = _demo().hasher
    return hasher.verify_or_dummy(user.password_hash if user else None, password)


def _hint() -> str:
    return f"At least {_demo().policy.min_length} characters; not a common password."


def _remember_for() -> str:
    return format_duration(_demo().config.remember.ttl_seconds)


def login_redirect() -> Response:
    """To the sign-in form, saying why when the browser's session has just ended."""
    url = login_url(current_view(), "/login")
    session = _session()
    if session is not None and session.is_new and getattr(session, "had_cookie", False):
        url += ("&" if "?" in url else "?") + "m=expired"
    return _see_other(url)


# -- the public pages and the sign-in flow ------------------------------------------


def index() -> Response:
    who()
    return _page("index.html")


def register_form() -> Response:
    if who():
        return _see_other("/dashboard")
    return _page("register.html", {"username": "", "errors": {}, "password_hint": _hint()})


def register_submit() -> Response:
    state = _demo()
    form = _form()
    username, password = _field(form, "username").strip(), _field(form, "password")
    errors = registration_errors(
        state.policy, username, password, field_text(form, "confirm_password")
    )
    user = None
    if not errors:
        state.config.registration.sync.check(_view())  # 429 before any hashing
        user = state.users.add(username, state.hasher.hash(password))
        if user is None:
            errors = {"username": "That username is taken: choose another."}
    if user is None:
        return _page(
            "register.html",
            {"username": username, "errors": errors, "password_hint": _hint()},
            status=400,
        )
    auth.login(_view(), str(user.id))
    g.user = user
    _flash("ok", f"Welcome, {user.username}! Your account is ready.")
    return _see_other("/dashboard")


def login_form() -> Response:
    asked = request.args.get("next")
    nxt = safe_next(asked)
    if who():
        return _see_other(nxt)
    context = {
        "username": "",
        "next": nxt,
        "remember_for": _remember_for(),
        "asked": bool(asked) and request.args.get("m") != "expired",
    }
    return _page("login.html", context)


def login_submit() -> Response:
    state = _demo()
    form = _form()
    username, password = _field(form, "username").strip(), _field(form, "password")
    nxt = safe_next(_field(form, "next") or request.args.get("next"))
    remember = _field(form, "remember_me") not in ("", "0", "off", "false")
    with state.config.throttle.sync.attempt(_view(), username) as attempt:
        user = state.users.by_name(username) if username else None
        if not _check_password(user, password) or user is None:
            wait = attempt.failed()
            error = BAD_LOGIN + (f" Wait {wait} seconds before trying again." if wait else "")
            return _page(
                "login.html",
                {
                    "username": username,
                    "next": nxt,
                    "error": error,
                    "remember_for": _remember_for(),
                },
                status=401,
            )
        attempt.succeeded()
    if state.hasher.needs_rehash(user.password_hash):
        state.users.set_password_hash(user.id, state.hasher.hash(password))
    auth.login(_view(), str(user.id), remember=remember)
    g.user = user
    _flash("ok", f"Signed in as {user.username}.")
    return _see_other(nxt)


def logout_page() -> Response:
    who()
    return _page("logout.html")


def logout() -> Response:
    auth.logout(_view())
    return _see_other("/?m=signed-out")


def dashboard() -> Response:
    user = who()
    session = _session()
    if user is None or session is None:
        return login_redirect()
    cfg = _demo().config.session
    created, seen = session.created, session.last_seen
    view = _view()
    info = {
        "handle": current_handle(view),
        "created": created,
        "last_seen": seen,
        "idle_expiry": (seen + cfg.idle) if seen else None,
        "absolute_expiry": (created + cfg.absolute) if created else None,
        "fresh": is_recent_login(view, cfg.absolute),
        "remembered": is_remembered(view),
    }
    return _page("dashboard.html", {"info": info})


def me() -> Response:
    user = who()
    if user is None:
        return _json({"error": "not authenticated"}, 401)
    return _json({"user_id": user.id, "username": user.username})


def cookies_page() -> Response:
    who()
    state = _demo()
    return _page("cookies.html", {"cookies": cookie_table(state.config, state.tls)})


def consent() -> Response:
    form = request.form
    choice = _field(form, "choice")
    cookies = prefs.consent_cookies(choice, _demo().tls)
    back = safe_next(_field(form, "next"), "/")
    response = _see_other(with_notice(back, f"consent-{choice}") if cookies else back)
    for value in cookies:
        response.headers.add("Set-Cookie", value)
    return response


def theme() -> Response:
    form = request.form
    tls = _demo().tls
    chosen = prefs.read(request.headers.get("cookie"), tls)
    value = prefs.theme_cookie(_field(form, "theme"), chosen, tls)
    back = safe_next(_field(form, "next"), "/")
    response = _see_other(with_notice(back, "theme") if value else back)
    if value:
        response.headers.add("Set-Cookie", value)
    return response


def healthz() -> Response:
    store = _demo().store
    kind = getattr(store, "kind", "?")
    try:
        sync: SyncStore = getattr(store, "sync")  # noqa: B009 - not on the Store protocol
        sync.load("sessionware-healthz")
    except StoreUnavailableError:
        return _json(
            {"status": "unavailable", "store": kind},
            503,
            {"Retry-After": "5", "Cache-Control": "no-store"},
        )
    return _json({"status": "ok", "store": kind}, headers={"Cache-Control": "no-store"})


# -- devices and password -------------------------------------------------------------


def _user() -> User:
    user = who()
    if user is None:
        raise auth_required()
    return user


def auth_required() -> HTTPError:
    from sessionware.auth import LoginRequiredError

    return LoginRequiredError()


def _confirm(user: User, password: str) -> bool:
    throttle = _demo().config.throttle.sync
    view = _view()
    throttle.check(view, user.username)
    if not _check_password(user, password):
        wait = throttle.failed(view, user.username)
        if wait:
            raise TooManyAttemptsError(wait)
        return False
    throttle.succeeded(view, user.username)
    return True


def sessions_page() -> Response:
    user = who()
    wants = request.args.get("format") == "json"
    if user is None:
        if wants:
            return _json({"error": "not authenticated"}, 401)
        return login_redirect()
    view = _view()
    devices = auth.sessions_of(view, str(user.id))
    if wants:
        return _json(
            {
                "user_id": user.id,
                "sessions": [
                    {k: v for k, v in asdict(d).items() if k != "authenticated_at"} for d in devices
                ],
                "csrf_token": csrf_token(),
            }
        )
    fresh = is_recent_login(view, RECENT_LOGIN)
    return _page("sessions.html", {"sessions": device_order(devices), "fresh": fresh})


def revoke_one(handle: str) -> Response:
    user = _user()
    form = request.form
    if not _confirm(user, _field(form, "password")):
        _flash("error", "That password is not right: no device was signed out.")
        return _see_other("/sessions")
    view = _view()
    auth.reauthenticate(view)
    mine = {d.handle: d for d in auth.sessions_of(view, str(user.id))}
    target = mine.get(handle)
    if target is None:
        raise NotFound("You have no device with that handle.")
    auth.revoke(view, str(user.id), handle)
    if target.current:
        return _see_other("/?m=signed-out")
    _flash("ok", "That device is signed out.")
    return _see_other("/sessions")


def revoke_others() -> Response:
    user = _user()
    if not _confirm(user, _field(request.form, "password")):
        _flash("error", "That password is not right: no device was signed out.")
        return _see_other("/sessions")
    view = _view()
    auth.reauthenticate(view)
    n = auth.logout_everywhere(view, str(user.id), keep=view)
    _flash("ok", f"Signed out {n} other device{'' if n == 1 else 's'}.")
    return _see_other("/sessions")


def _password_page(errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return _page(
        "password.html",
        {
            "errors": errors or {},
            "password_hint": _hint(),
            "fresh": is_recent_login(_view(), RECENT_LOGIN),
        },
        status=status,
    )


def password_form() -> Response:
    if who() is None:
        return login_redirect()
    return _password_page()


def password_submit() -> Response:
    user = _user()
    state = _demo()
    form = request.form
    current, new = _field(form, "current_password"), _field(form, "new_password")
    errors = password_errors(
        state.policy, user.username, current, new, field_text(form, "confirm_password")
    )
    if not _confirm(user, current):
        errors["current_password"] = "Your current password is not right."
    if errors:
        return _password_page(errors, 400)
    state.users.set_password_hash(user.id, state.hasher.hash(new))
    n = auth.password_changed(_view(), str(user.id))
    _flash(
        "ok",
        f"Password changed. {n} other device{'' if n == 1 else 's'} signed out."
        if n
        else "Password changed.",
    )
    return _see_other("/dashboard")


# -- errors and headers -------------------------------------------------------------


def _http_error(exc: Exception) -> Response:
    """werkzeug's (404, 405, 400...) and sessionware's (401, 429) errors as pages."""
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        detail = exc.description or ""
        default = type(exc).description
    else:
        assert isinstance(exc, HTTPError)
        status, detail, default = exc.status_code, exc.detail, ""
    title, text = TITLES.get(status, ("Something went wrong", "The request failed."))
    if status == 404 and detail and detail != default:
        text = detail
    if status == 401 and detail == "Please confirm your password":
        title, text = "Please confirm your password", "This action needs your password again."
    retry = exc.retry_after if isinstance(exc, TooManyAttemptsError) else None
    links = None
    if status == 429:
        links = [("/login", "Back to sign in"), ("/", "Start page")]
    if status == 401:
        links = [(login_url(current_view(), "/login"), "Sign in"), ("/", "Start page")]
    if _session() is not None:
        who()
    response = _error(status, title, text, retry_after=retry, links=links)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        # In Starlette's order (GET, HEAD, then the rest): werkzeug's is a set's.
        order = {"GET": 0, "HEAD": 1}
        methods = sorted(exc.valid_methods, key=lambda m: (order.get(m, 2), m))
        response.headers["allow"] = ", ".join(methods)
    return response


def _store_down(exc: Exception) -> Response:
    log.error("session store unavailable during a request: %s", exc)
    return _error(
        503,
        "Temporarily unavailable",
        "The session store cannot be reached right now. This usually clears up within seconds.",
        retry_after=5,
    )


def _hashing_busy(exc: Exception) -> Response:
    assert isinstance(exc, HasherBusyError)
    log.warning("password hashing at its concurrency cap: answered 503")
    return _error(
        503,
        "Busy right now",
        "Too many sign-ins are being checked at this moment. Please try again shortly.",
        retry_after=exc.retry_after,
    )


def _server_error(exc: Exception) -> Response:
    return _error(500, "Something went wrong", "The error was logged. Please try again.")


def _plain_refusal(response: Response) -> Response:
    """CSRFProtect's refusal in JSON (``{"detail"}``, for a JSON client) in plain text,
    as the ASGI CSRFMiddleware the Starlette app runs answers every client."""
    if response.status_code not in (400, 403, 413) or response.mimetype != "application/json":
        return response
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return response
    if not isinstance(body, dict) or set(body) != {"detail"}:
        return response
    response.set_data(Refusal.of(response.status_code, str(body["detail"])).text)
    response.content_type = "text/plain; charset=utf-8"
    return response


def _finish(response: Response) -> Response:
    """FriendlyErrors and NoStoreForUsers of the Starlette app, as one after_request hook."""
    https = request.scheme == "https"
    response = _plain_refusal(response)
    kind = response.headers.get("content-type", "")
    if (
        "text/html" in request.headers.get("accept", "")
        and response.status_code in MESSAGES
        and kind.startswith("text/plain")
    ):
        body = response.get_data(as_text=True)[:4096]
        title, text, stale = refused(response.status_code, body)
        retry = response.headers.get("retry-after", "")
        user = who() if _session() is not None else None
        go = stale_redirect(request.path, body.strip(), user is not None, request.args.get("next"))
        links = None
        if stale:
            back = reload_target(request.headers.get("referer"))
            links = [(back, "Reload the page"), ("/", "Start page")]
        page = (
            _see_other(go)
            if go is not None
            else _error(
                response.status_code,
                title,
                text,
                retry_after=int(retry) if retry.isdigit() else None,
                links=links,
            )
        )
        page.headers["cache-control"] = "no-store"
        # As the Starlette app: the refusal's Vary and Set-Cookie go out with the page.
        for name in ("Vary", "Set-Cookie"):
            for value in response.headers.getlist(name):
                page.headers.add(name, value)
        response = page
    for name, value in security_headers(https):
        if name not in response.headers:
            response.headers[name] = value
    if tied_to_session(_session()):
        response.headers["cache-control"] = "no-store"
        response.vary.add("Cookie")
    return response


# -- the app ------------------------------------------------------------------------


def create_app(
    settings: DemoSettings, *, store: Store | None = None, host: str | None = None
) -> DemoFlask:
    """Build the reference app on Flask; every setting is checked here, before serving."""
    state = prepare(settings, store, host)
    cfg, store = state.config, state.store
    app = DemoFlask(
        __name__,
        static_folder=str(Path(__file__).parent / "static"),
        static_url_path="/static",
    )
    app.config["SECRET_KEY"] = settings.secrets[0]
    app.config["SECRET_KEY_FALLBACKS"] = list(reversed(settings.secrets[1:]))
    _session_options(app, cfg.session)
    app.config["SESSIONWARE_CSRF_ALLOWED_HOSTS"] = cfg.allowed_hosts
    Sessionware(app, store=store, remember=cfg.remember)  # with CSRFProtect, from app.config
    if "sessionware.csrf" not in app.extensions:
        CSRFProtect(app)
    app.after_request(_finish)

    def route(path: str, view: Any, methods: list[str]) -> None:
        app.add_url_rule(
            path,
            endpoint=f"{view.__name__}",
            view_func=view,
            methods=methods,
            provide_automatic_options=False,
        )

    get, post = ["GET"], ["POST"]
    route("/", index, get)
    route("/register", register_form, get)
    route("/register", register_submit, post)
    route("/login", login_form, get)
    route("/login", login_submit, post)
    route("/logout", logout_page, get)
    route("/logout", logout, post)
    route("/consent", consent, post)
    route("/theme", theme, post)
    route("/dashboard", dashboard, get)
    route("/me", me, get)
    route("/sessions", sessions_page, get)
    route("/sessions/revoke-others", revoke_others, post)
    route("/sessions/<handle>/revoke", revoke_one, post)
    route("/password", password_form, get)
    route("/password", password_submit, post)
    route("/cookies", cookies_page, get)
    route("/healthz", healthz, get)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(HTTPError, _http_error)
    app.register_error_handler(StoreUnavailableError, _store_down)
    app.register_error_handler(HasherBusyError, _hashing_busy)
    app.register_error_handler(InternalServerError, _server_error)
    app.state = _AppState(demo=state, settings=settings)
    return app


def _session_options(app: Flask, session: SessionConfig) -> None:
    """The demo's SessionConfig, handed to Sessionware as its ``SESSIONWARE_*`` settings."""
    for name in _SESSION_OPTIONS:
        app.config["SESSIONWARE_" + name.upper()] = getattr(session, name)


def from_env() -> DemoFlask:
    """The demo built from the environment alone, for ``gunicorn 'module:from_env()'``;
    needs ``SESSION_SECRET``."""
    return create_app(DemoSettings.load(make_secret=False))
