"""``CSRFMiddleware``, the ASGI face of the CSRF protection, and the template helpers.

What it checks and why is told in :mod:`sessionware.csrf`.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sessionware._plain import send_plain
from sessionware.config import SessionConfig, seconds
from sessionware.cookies import valid_name
from sessionware.csrf.exempt import Exemptions
from sessionware.csrf.form import BodyTooLargeError, buffer_body, form_field, replay
from sessionware.csrf.gate import Verdict, gate, normalize_origin, own_origin
from sessionware.csrf.host import AllowedHosts, addressed
from sessionware.csrf.token import (
    ANON_SALT,
    decode_secret,
    issue_anonymous,
    mask,
    matches,
    new_secret,
    verify_anonymous,
)
from sessionware.exceptions import ConfigurationError
from sessionware.session import CSRF_FIELD, Session
from sessionware.signing import Signer

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["SAFE_METHODS", "CSRFMiddleware", "csrf_input", "csrf_token", "install_jinja"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Methods never checked (RFC 9110 §9.2.1 safe methods): they must not change state.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

log = logging.getLogger("sessionware")
security_log = logging.getLogger("sessionware.security")

_SCOPE_KEY = "sessionware.csrf"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True, slots=True)
class _Refusal:
    """An answer instead of the app: 403 (a CSRF verdict), 400 or 413 (always enforced)."""

    status: int
    reason: str


_GONE = _Refusal(0, "client disconnected")


class CSRFMiddleware:
    """Refuse cross-site unsafe requests with a 403; place it inside ``SessionMiddleware``.

    Options are keyword-only and checked here, so a mistake fails at start-up.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_origins: Iterable[str] = (),
        allow_same_site: bool = False,
        exempt_paths: Iterable[str] = (),
        field_name: str = "_csrf",
        header_name: str = "X-CSRF-Token",
        anonymous_max_age: float | timedelta = 2 * 60 * 60,
        max_body_size: int = 1024 * 1024,
        allowed_hosts: Iterable[str] | None = None,
        report_only: bool = False,
    ) -> None:
        self.app = app
        self.trusted_origins = _origins(trusted_origins)
        if not isinstance(allow_same_site, bool) or not isinstance(report_only, bool):
            raise ConfigurationError("allow_same_site and report_only must be True or False")
        self.allow_same_site = allow_same_site
        self.exemptions = Exemptions(exempt_paths)
        if not isinstance(field_name, str) or not field_name or len(field_name) > 100:
            raise ConfigurationError("field_name must be a non-empty form field name")
        self.field_name = field_name
        if not isinstance(header_name, str) or not valid_name(header_name):
            raise ConfigurationError(f"header_name {header_name!r} is not a valid header name")
        self.header_name = header_name
        self._header = header_name.lower().encode("latin-1")
        self.anonymous_max_age: float = seconds(anonymous_max_age, "anonymous_max_age") or 0.0
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int):
            raise ConfigurationError("max_body_size must be a number of bytes")
        if max_body_size < 1024:
            raise ConfigurationError("max_body_size must be at least 1024 bytes")
        self.max_body_size = max_body_size
        self.allowed_hosts = AllowedHosts(allowed_hosts) if allowed_hosts is not None else None
        self.report_only = report_only
        if report_only:
            log.warning("CSRFMiddleware is in report_only mode: refusals are logged, not enforced")
        self._started = False

    # -- ASGI -------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._started:
            self._started = True
            log.debug("CSRF checks skipped for %s", self.exemptions.describe(scope.get("app")))
        if scope["type"] in ("http", "websocket") and not self._host_allowed(scope):
            if scope["type"] == "http":
                await _answer(send, _Refusal(400, "Host not allowed"))
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] == "websocket" and not self.exemptions.cover(scope):
            reason = self._websocket_refusal(scope)
            if reason is not None:
                self._report(scope, reason)
                if not self.report_only:
                    # Closing before accepting makes the server answer the handshake 403.
                    await send({"type": "websocket.close", "code": 1008})
                    return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = _session_of(scope)
        scope[_SCOPE_KEY] = self
        send = _seeding(session, send)
        if scope["method"].upper() in SAFE_METHODS or self.exemptions.cover(scope):
            await self.app(scope, receive, send)
            return
        refusal, receive = await self._check(scope, receive, session)
        if refusal is _GONE:
            return
        if refusal is not None and (refusal.status != 403 or not self.report_only):
            await _answer(send, refusal)
            return
        await self.app(scope, receive, send)

    def _host_allowed(self, scope: Scope) -> bool:
        if self.allowed_hosts is None:
            return True
        session = scope.get("session")
        trust_proxy = session.config.trust_proxy if isinstance(session, Session) else 0
        _, host = addressed(scope["headers"], trust_proxy)
        if self.allowed_hosts.allows(host):
            return True
        self._report(scope, "Host not in allowed_hosts", f"Host {host!r}"[:200], enforced=True)
        return False

    async def _read_form(
        self, scope: Scope, receive: Receive, length: str | None
    ) -> tuple[_Refusal | bytes, Receive]:
        """The whole form body (then replayed to the app), or why it was not read.

        A ``Content-Length`` over the cap is refused before reading; a stream that
        passes the cap is refused as soon as it does (RFC 9110 §15.5.14, 413).
        """
        too_large = _Refusal(
            413, f"request body over this app's form limit of {self.max_body_size} bytes"
        )
        if length is not None:
            if not length.isdigit():
                return _Refusal(400, "malformed Content-Length"), receive
            if int(length) > self.max_body_size:
                self._report(scope, too_large.reason, f"Content-Length {length}", enforced=True)
                return too_large, receive
        try:
            body = await buffer_body(receive, self.max_body_size)
        except BodyTooLargeError:
            self._report(scope, too_large.reason, "streamed", enforced=True)
            return too_large, receive
        if body is None:
            return _GONE, receive
        return body, replay(body, receive)

    async def _check(
        self, scope: Scope, receive: Receive, session: Session
    ) -> tuple[_Refusal | None, Receive]:
        """Return a refusal (or None) and the ``receive`` the app must use."""
        fetch_site: str | None = None
        origin: str | None = None
        token: str | None = None
        content_type: str | None = None
        length: str | None = None
        for name, value in scope["headers"]:
            if name == b"sec-fetch-site":
                fetch_site = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == self._header:
                token = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
        config = session.config
        verdict = self._gate(scope, scope.get("scheme", "http"), fetch_site, origin, config)
        if verdict.refused is not None:
            self._report(scope, verdict.refused, verdict.detail)
            if not self.report_only:
                return _Refusal(403, verdict.refused), receive  # refused unread
        body: bytes | None = None
        if content_type is not None and _is_form(content_type):
            # Every form that may reach the app is capped here, anonymous ones too.
            read, receive = await self._read_form(scope, receive, length)
            if isinstance(read, _Refusal):
                return read, receive
            body = read
        if verdict.refused is not None:
            return _Refusal(403, verdict.refused), receive  # report_only: logged already
        has_session = not session.is_new
        if not has_session and verdict.vouched:
            return None, receive  # login CSRF is covered by the gate; no cookie needed
        if token is None and body is not None and content_type is not None:
            token = form_field(body, content_type, self.field_name)
        if token is None:
            reason = "CSRF token missing"
            self._report(scope, reason, "a session" if has_session else "no session, no Origin")
            return _Refusal(403, reason), receive
        if has_session:
            ok = matches(token, decode_secret(session.get_meta(CSRF_FIELD)))
        else:
            ok = verify_anonymous(_anon_signer(config), token, _now(config), self.anonymous_max_age)
        if not ok:
            reason = "CSRF token invalid" if has_session else "CSRF token invalid or expired"
            self._report(scope, reason)
            return _Refusal(403, reason), receive
        return None, receive

    # -- logging ------------------------------------------------------------------

    def _websocket_refusal(self, scope: Scope) -> str | None:
        """Cross-site WebSocket hijacking: a handshake carries cookies, so judge its origin.

        Browsers always send ``Origin`` on a WebSocket handshake (RFC 6455 §4.1); a
        handshake without one is not from a browser page and passes, as in Go's check.
        """
        fetch_site = origin = None
        for name, value in scope["headers"]:
            if name == b"sec-fetch-site":
                fetch_site = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        if fetch_site is None and origin is None:
            return None
        session = scope.get("session")
        config = session.config if isinstance(session, Session) else None
        scheme = "https" if scope.get("scheme") == "wss" else "http"
        return self._gate(scope, scheme, fetch_site, origin, config).refused

    def _gate(
        self,
        scope: Scope,
        scheme: str,
        fetch_site: str | None,
        origin: str | None,
        config: SessionConfig | None,
    ) -> Verdict:
        """Judge the request's Fetch-Metadata and Origin against this app's own origin."""
        trust_proxy = config.trust_proxy if config is not None else 0
        own = own_origin(scheme, scope["headers"], scope.get("server"), trust_proxy)
        return gate(
            fetch_site=fetch_site,
            origin=origin,
            own=own,
            trusted=self.trusted_origins,
            allow_same_site=self.allow_same_site,
        )

    def _report(
        self, scope: Scope, reason: str, detail: str = "", *, enforced: bool = False
    ) -> None:
        client = scope.get("client")
        where = client[0] if client else "?"
        mode = "would refuse (report_only)" if self.report_only and not enforced else "refused"
        # Never the token or the session id: only what was wrong and where.
        security_log.warning(
            "CSRF %s %s %r from %s: %s%s",
            mode,
            scope.get("method", "WEBSOCKET"),
            scope.get("path", ""),
            where,
            reason,
            f" [{detail}]" if detail else "",
        )


# -- tokens for templates ---------------------------------------------------------


def csrf_token(request: Any) -> str:
    """A fresh token for this request's forms or API client (a Request, or an ASGI scope).

    With a session it is bound to the session's secret (made now if missing); without
    one it is an anonymous token, and no session or cookie is created.
    """
    scope = _scope_of(request)
    if scope.get(_SCOPE_KEY) is None:
        raise RuntimeError(
            "csrf_token() needs CSRFMiddleware on this app: a token nobody checks protects nothing"
        )
    session = _session_of(scope)
    if not session.will_be_stored():
        return issue_anonymous(_anon_signer(session.config), _now(session.config))
    secret = decode_secret(session.get_meta(CSRF_FIELD))
    if secret is None:
        stored = new_secret()
        session.set_meta(CSRF_FIELD, stored)
        secret = decode_secret(stored)
        assert secret is not None
    session.accessed = True  # the page now depends on the session: Vary: Cookie
    return mask(secret)


def csrf_input(request: Any) -> str:
    """A hidden ``<input>`` carrying :func:`csrf_token`, for a form (HTML text)."""
    scope = _scope_of(request)
    middleware = scope.get(_SCOPE_KEY)
    name = middleware.field_name if isinstance(middleware, CSRFMiddleware) else "_csrf"
    token = csrf_token(scope)
    return f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(token)}">'


def install_jinja(env: Environment) -> None:
    """Add ``csrf_token(request)`` and ``csrf_input(request)`` as Jinja2 globals."""
    from markupsafe import Markup

    env.globals["csrf_token"] = csrf_token
    env.globals["csrf_input"] = lambda request: Markup(csrf_input(request))  # noqa: S704


# -- helpers ----------------------------------------------------------------------


def _scope_of(request: Any) -> Scope:
    scope = getattr(request, "scope", request)
    if not isinstance(scope, MutableMapping):
        raise TypeError("csrf_token() takes a Starlette Request (or an ASGI scope)")
    return scope


def _session_of(scope: Scope) -> Session:
    session = scope.get("session")
    if not isinstance(session, Session):
        raise RuntimeError(
            "CSRFMiddleware needs a sessionware session: call app.add_middleware(CSRFMiddleware) "
            "first, then app.add_middleware(SessionMiddleware, ...), so sessions wrap it"
        )
    return session


def _seeding(session: Session, send: Send) -> Send:
    """Give a session that is about to be created its CSRF secret in the same write.

    Pages loaded in parallel after a login then all read one secret instead of racing
    to create it.
    """

    async def wrapped(message: Message) -> None:
        if (
            message["type"] == "http.response.start"
            and session.is_new
            and session.will_be_stored()
            and session.get_meta(CSRF_FIELD) is None
        ):
            session.set_meta(CSRF_FIELD, new_secret())
        await send(message)

    return wrapped


_signers: dict[int, tuple[SessionConfig, Signer]] = {}


def _anon_signer(config: SessionConfig) -> Signer:
    """The anonymous-token signer for these secrets (cached; the config is kept alive)."""
    entry = _signers.get(id(config))
    if entry is None or entry[0] is not config:
        if len(_signers) > 16:
            _signers.clear()
        entry = (config, Signer(config.secrets, salt=ANON_SALT))
        _signers[id(config)] = entry
    return entry[1]


def _now(config: SessionConfig) -> float:
    return (config.clock or time.time)()


def _is_form(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() in _FORM_TYPES


_TITLES = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large"}


async def _answer(send: Send, refusal: _Refusal) -> None:
    body = f"{_TITLES[refusal.status]}: {refusal.reason}\n".encode()
    if refusal.status == 403:
        await send_plain(send, 403, body, (b"vary", b"Origin, Sec-Fetch-Site"))
    else:
        await send_plain(send, refusal.status, body)


def _origins(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ConfigurationError("trusted_origins is a list of origins, not one string")
    out = set()
    for value in values:
        norm = normalize_origin(value) if isinstance(value, str) else None
        if norm is None:
            raise ConfigurationError(
                f"trusted_origins entry {value!r} is not an origin: write scheme://host[:port] "
                "with no path, e.g. 'https://admin.example.com'"
            )
        out.add(norm)
    return frozenset(out)
