"""``CSRFCheck``: the CSRF decision for one request, on a RequestView, with no framework.

Every rule lives here once, so the ASGI middleware and a WSGI adapter refuse the
same requests with the same words. Nothing here does I/O: the adapter reads the
body (capped at ``max_body_size``) with its own reader and turns a :class:`Refusal`
into its framework's response. It calls, per request:

1. :meth:`CSRFCheck.host_refusal`: every request, safe or not (400 for a Host the
   app does not serve);
2. :meth:`CSRFCheck.exempt` for ``exempt_paths``; endpoints marked
   ``@csrf_exempt`` are the adapter's to find through its router;
3. :meth:`CSRFCheck.attach`, so :func:`~sessionware.csrf.csrf_token` renders tokens;
4. for an unsafe method, :meth:`CSRFCheck.before_body`: None (pass), a
   :class:`Refusal` (answer it, the body unread) or :class:`NeedsToken`;
5. with :class:`NeedsToken`: the header's token, or form field ``field`` read from
   the body, into :meth:`CSRFCheck.verify`;
6. when the response starts, :meth:`CSRFCheck.seed`.

In ``report_only`` mode a 403 is logged and None returned instead; 400 and 413 are
resource and routing limits, always enforced.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypedDict

from sessionware import _http
from sessionware import events as _events
from sessionware._http import header
from sessionware.config import SessionConfig, seconds
from sessionware.cookies import valid_name
from sessionware.csrf.exempt import ExemptPaths
from sessionware.csrf.form import is_form
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
from sessionware.request import RequestView
from sessionware.session import CSRF_FIELD
from sessionware.signing import Signer

__all__ = [
    "SAFE_METHODS",
    "STALE",
    "STATE_KEY",
    "CSRFCheck",
    "CSRFOptions",
    "NeedsToken",
    "Refusal",
    "Server",
]

#: Methods never checked (RFC 9110 §9.2.1 safe methods): they must not change state.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: The refusal reason for a form rendered before the browser had a session (a sign-in
#: form left open in a second tab, posted after signing in in the first): its token is
#: a valid anonymous one, so the cause is the session that began meanwhile, not a forgery.
STALE = "CSRF token from before this session"

#: Where :meth:`CSRFCheck.attach` leaves the check in ``view.state``.
STATE_KEY = "sessionware.csrf"

#: The server's own address, ``(host, port)``: the app's origin when no Host was sent.
Server = tuple[str, int | None]

log = logging.getLogger("sessionware")
security_log = logging.getLogger("sessionware.security")

_TITLES = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large"}


class CSRFOptions(TypedDict, total=False):
    """The options of :class:`CSRFCheck`, which every adapter takes as they are."""

    trusted_origins: Iterable[str]
    allow_same_site: bool
    exempt_paths: Iterable[str]
    field_name: str
    header_name: str
    anonymous_max_age: float | timedelta
    max_body_size: int
    allowed_hosts: Iterable[str] | None
    report_only: bool


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer instead of the app: 403 (a CSRF verdict), 400 or 413 (always enforced).

    A plain value, so each adapter answers it its framework's way with the same text.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, status: int, reason: str) -> Refusal:
        """The refusal for ``status``; a 403 varies on the headers the gate judged."""
        if status == 403:
            return cls(status, reason, (("Vary", "Origin, Sec-Fetch-Site"),))
        return cls(status, reason)

    @property
    def text(self) -> str:
        """The plain-text body: ``"Forbidden: <reason>\\n"``."""
        return f"{_TITLES.get(self.status, 'Error')}: {self.reason}\n"


@dataclass(frozen=True, slots=True)
class NeedsToken:
    """The request passes only with a valid token, which :meth:`CSRFCheck.verify` judges.

    ``header`` is the token header's value, if sent; ``field`` names the form field to
    read from the body when no header came and the body is a form (urlencoded or
    multipart), else None: other bodies are never searched.
    """

    header: str | None
    field: str | None


class CSRFCheck:
    """The CSRF rules of one app; options are checked here, so a mistake fails at start-up."""

    def __init__(
        self,
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
        self.trusted_origins = _origins(trusted_origins)
        if not isinstance(allow_same_site, bool) or not isinstance(report_only, bool):
            raise ConfigurationError("allow_same_site and report_only must be True or False")
        self.allow_same_site = allow_same_site
        self.exempt_paths = ExemptPaths(exempt_paths)
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
            log.warning("CSRF checks are in report_only mode: refusals are logged, not enforced")

    # -- the steps, in the order an adapter takes them ------------------------------------

    def host_refusal(
        self, view: RequestView, *, path: str = "", handshake: bool = False
    ) -> Refusal | None:
        """A 400 when ``allowed_hosts`` does not list the Host the request names.

        Judged before anything else, safe methods too, so no origin or URL is ever built
        from a name an attacker chose (DNS rebinding). ``handshake`` only labels the log.
        """
        if self.allowed_hosts is None:
            return None
        _, host = addressed(view.headers, _trust_proxy(view))
        if self.allowed_hosts.allows(host):
            return None
        detail = f"Host {host!r}"[:200]
        method = "WEBSOCKET" if handshake else view.method
        self._report(view, path, "Host not in allowed_hosts", detail, method, enforced=True)
        return Refusal.of(400, "Host not allowed")

    def exempt(self, path: str) -> bool:
        """Whether ``exempt_paths`` covers ``path`` (as the app's routes see it)."""
        return self.exempt_paths.cover(path)

    def attach(self, view: RequestView) -> None:
        """Mark the request as protected, so :func:`~sessionware.csrf.csrf_token` works on it."""
        view.state[STATE_KEY] = self

    def before_body(
        self, view: RequestView, *, path: str = "", server: Server | None = None
    ) -> Refusal | NeedsToken | None:
        """What the request needs, judged on its method, headers and session alone.

        None: it passes (a safe method; a visitor without a session whom a browser
        header vouched for). A :class:`Refusal`: answer it without reading the body.
        ``path`` labels the log line; ``server`` stands in for a missing Host.
        """
        if view.method.upper() in SAFE_METHODS:
            return None
        found = _last(view.headers, (b"sec-fetch-site", b"origin", self._header, b"content-type"))
        fetch_site, origin = found[b"sec-fetch-site"], found[b"origin"]
        verdict = self._gate(view, view.scheme, fetch_site, origin, server)
        if verdict.refused is not None:
            return self._refuse(view, path, verdict.refused, verdict.detail)
        if view.session.is_new and verdict.vouched:
            return None  # login CSRF is covered by the gate; no cookie needed
        token = found[self._header]
        content_type = found[b"content-type"]
        form = token is None and content_type is not None and is_form(content_type)
        return NeedsToken(token, self.field_name if form else None)

    def verify(self, view: RequestView, token: str | None, *, path: str = "") -> Refusal | None:
        """None when ``token`` is this session's (or, with no session, a fresh anonymous one).

        A session's token is refused without its session, and an anonymous token once
        a session exists, so neither crosses over; the latter with :data:`STALE`, so an
        app can tell "this page is out of date" from "this form is not ours".
        """
        session = view.session
        has_session = not session.is_new
        if token is None:
            detail = "a session" if has_session else "no session, no Origin"
            return self._refuse(view, path, "CSRF token missing", detail)
        config = session.config
        if has_session:
            ok = matches(token, decode_secret(session.get_meta(CSRF_FIELD)))
            if not ok and self._anonymous(config, token):
                return self._refuse(view, path, STALE)
        else:
            ok = self._anonymous(config, token)
        if ok:
            return None
        reason = "CSRF token invalid" if has_session else "CSRF token invalid or expired"
        return self._refuse(view, path, reason)

    def _anonymous(self, config: SessionConfig, token: str) -> bool:
        return verify_anonymous(_anon_signer(config), token, _now(config), self.anonymous_max_age)

    def body_too_large(self, view: RequestView, detail: str, *, path: str = "") -> Refusal:
        """The 413 for a form body past ``max_body_size`` (enforced in report_only too)."""
        reason = f"request body over this app's form limit of {self.max_body_size} bytes"
        self._report(view, path, reason, detail, view.method, enforced=True)
        return Refusal.of(413, reason)

    def seed(self, view: RequestView) -> None:
        """Give a session about to be created its CSRF secret in the same write.

        Called when the response starts: pages loaded in parallel after a login then
        all read one secret instead of racing to create it.
        """
        session = view.session
        if session.is_new and session.will_be_stored() and session.get_meta(CSRF_FIELD) is None:
            session.set_meta(CSRF_FIELD, new_secret())

    def handshake(
        self, view: RequestView, *, path: str = "", server: Server | None = None
    ) -> Refusal | None:
        """Cross-site WebSocket hijacking: a handshake carries cookies, so judge its origin.

        Browsers always send ``Origin`` on a WebSocket handshake (RFC 6455 §4.1); a
        handshake without one is not from a browser page and passes, as in Go's check.
        """
        found = _last(view.headers, (b"sec-fetch-site", b"origin"))
        fetch_site, origin = found[b"sec-fetch-site"], found[b"origin"]
        if fetch_site is None and origin is None:
            return None
        scheme = "https" if view.scheme == "wss" else "http"
        verdict = self._gate(view, scheme, fetch_site, origin, server)
        if verdict.refused is None:
            return None
        return self._refuse(view, path, verdict.refused, verdict.detail, "WEBSOCKET")

    # -- tokens for pages -------------------------------------------------------------------

    def token(self, view: RequestView) -> str:
        """A fresh token for this request's forms or API client.

        With a session (or one about to be stored) it is bound to the session's secret,
        made now if missing; without one it is an anonymous token, and no session or
        cookie is created.
        """
        session = view.session
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

    def hidden_input(self, view: RequestView) -> str:
        """A hidden ``<input>`` carrying :meth:`token`, for a form (HTML text)."""
        name, value = html.escape(self.field_name), html.escape(self.token(view))
        return f'<input type="hidden" name="{name}" value="{value}">'

    # -- internals --------------------------------------------------------------------------

    def _gate(
        self,
        view: RequestView,
        scheme: str,
        fetch_site: str | None,
        origin: str | None,
        server: Server | None,
    ) -> Verdict:
        """Judge the request's Fetch-Metadata and Origin against this app's own origin."""
        own = own_origin(scheme, view.headers, server, _trust_proxy(view))
        return gate(
            fetch_site=fetch_site,
            origin=origin,
            own=own,
            trusted=self.trusted_origins,
            allow_same_site=self.allow_same_site,
        )

    def _refuse(
        self, view: RequestView, path: str, reason: str, detail: str = "", method: str = ""
    ) -> Refusal | None:
        """A 403, logged; None in report_only mode, where it is only logged."""
        self._report(view, path, reason, detail, method or view.method, enforced=False)
        return None if self.report_only else Refusal.of(403, reason)

    def _report(
        self,
        view: RequestView,
        path: str,
        reason: str,
        detail: str,
        method: str,
        *,
        enforced: bool,
    ) -> None:
        mode = "would refuse (report_only)" if self.report_only and not enforced else "refused"
        # Never the token or the session id: only what was wrong and where.
        security_log.warning(
            "CSRF %s %s %r from %s: %s%s",
            mode,
            method,
            path,
            view.client or "?",
            reason,
            f" [{detail}]" if detail else "",
        )
        _refused(view, reason if mode == "refused" else f"{mode}: {reason}")


# -- helpers ----------------------------------------------------------------------------


def _refused(view: RequestView, reason: str) -> None:
    """Hand ``csrf_refused`` to the app's events (the line is logged above)."""
    try:
        session = view.session
    except RuntimeError:  # CSRF outside the session middleware: no events to tell
        return
    events = _events.of(session)
    if events is not None:
        user, handle, _ = _events.who(session)
        events.emit(
            "csrf_refused",
            user_id=user,
            handle=handle,
            client=_http.client_ip(view.headers, view.client, session.config.trust_proxy),
            reason=reason,
            logged=True,
        )


def _last(
    headers: Iterable[tuple[bytes, bytes]], names: tuple[bytes, ...]
) -> dict[bytes, str | None]:
    """Each header in ``names`` (None when absent), read by the library's one rule:
    repeated lines join with ``", "``, a value no check accepts for Origin, the token
    or Sec-Fetch-Site, so a client cannot hide a second value behind the first."""
    lines = headers if isinstance(headers, list) else list(headers)
    return {name: header(lines, name) for name in names}


def _trust_proxy(view: RequestView) -> int:
    """The session's ``trust_proxy``; 0 without a session, so no forwarded header counts."""
    try:
        return view.session.config.trust_proxy
    except RuntimeError:
        return 0


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
    """The session's clock, so anonymous tokens age as sessions do (and tests can move it)."""
    return (config.clock or time.time)()


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
