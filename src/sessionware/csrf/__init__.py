"""CSRF protection: a Fetch-Metadata / Origin gate plus session-bound tokens.

Three layers (OWASP CSRF Prevention Cheat Sheet; docs/security.md, "CSRF"):

1. Every unsafe method (anything but GET, HEAD, OPTIONS, TRACE) passes a gate:
   ``Sec-Fetch-Site: cross-site`` is refused, ``same-site`` too unless
   ``allow_same_site=True``; an ``Origin`` that is neither this app's origin (scheme,
   host, port; ``X-Forwarded-*`` only under the session's ``trust_proxy``) nor in
   ``trusted_origins`` is refused, and so is ``Origin: null``.
2. A request that belongs to a session (logged in or not) must carry a token, in the
   ``_csrf`` form field (urlencoded or multipart) or the ``X-CSRF-Token`` header,
   rendered from the secret kept in that session. ``regenerate()`` (login) drops the
   secret, so a token from before login, from another session or from another user
   is refused.
3. ``SameSite`` on the session cookie (the session middleware's default: Lax).

**Visitors without a session** (login and registration forms) get no cookie and no
session. Their unsafe requests pass on layer 1 alone when a browser header vouched
for them. A request with neither ``Sec-Fetch-Site`` nor ``Origin`` (a pre-2020
browser, a script) must then present an *anonymous token*: :func:`csrf_token` on a
request without a stored session returns one, signed under its own salt and dated,
valid for ``anonymous_max_age`` seconds and only on a request that has no session.
It proves the form came from this app recently, not which browser fetched it: it is
bound to nothing an attacker could reuse against a session, and against login CSRF
it is only as strong as its time limit, for browsers too old to send either header.

Usage::

    app.add_middleware(CSRFMiddleware, trusted_origins=["https://admin.example.com"])
    app.add_middleware(SessionMiddleware, store=..., secrets=[...])   # outermost

    install_jinja(templates.env)   # then in a form: {{ csrf_input(request) }}

The secrets come from the session middleware's configuration, so they are given once.

**Single-page apps**: expose the token from a JSON endpoint and send it back in the
header on every unsafe call; fetch it again after login or logout, since a new
session means a new secret::

    async def csrf(request):              # Route("/csrf", csrf)
        return JSONResponse({"token": csrf_token(request)})

    // browser
    const {token} = await (await fetch("/csrf")).json();
    await fetch("/api/notes", {method: "POST", headers: {"X-CSRF-Token": token,
        "Content-Type": "application/json"}, body: JSON.stringify(note)});

**Body cap**: an unsafe form post (urlencoded or multipart) that is not refused is
read here, up to ``max_body_size`` bytes (default 1 MiB), and replayed to the app
unchanged; a larger one gets 413 before the app sees a byte (by ``Content-Length``,
or while streaming), whether or not it has a session or a header token, and also in
``report_only`` mode, since the cap is a resource limit, not a CSRF verdict. Raise it
for apps that take large uploads as forms; other bodies (JSON) are the app's to cap.

**Allowed hosts**: ``allowed_hosts=["example.com", ".example.org"]`` refuses (400)
every request, safe or not, whose ``Host`` (``X-Forwarded-Host`` under
``trust_proxy``) is not listed, so the own origin above, and any absolute URL the
app builds from the request, is never a name an attacker chose (DNS rebinding).
``".example.org"`` covers its subdomains, ``"*"`` any host; ports are not compared.

**Exemptions** (webhooks): ``exempt_paths=["/hooks/stripe", "/hooks/*"]`` (a trailing
``*`` matches a prefix), or :func:`csrf_exempt` on a Starlette or FastAPI endpoint.
The decorator is found by matching the request against the app's router
(``scope["app"].router``); where an adapter has no router to ask, use
``exempt_paths``.

**WebSocket handshakes** carry cookies, so one whose ``Origin`` or ``Sec-Fetch-Site``
the gate of layer 1 refuses is closed before it is accepted (the server answers 403);
a handshake with neither header is not from a browser page and passes.

**Other frameworks**: every decision above is made by
:class:`~sessionware.csrf.check.CSRFCheck` on a
:class:`~sessionware.request.RequestView`, with no I/O; ``CSRFMiddleware`` is its
ASGI glue (:mod:`sessionware.csrf.asgi`), and an adapter for another framework
drives the same check with its own body reader.

Modules: ``check`` (the decision), ``gate`` (Origin / Sec-Fetch-Site), ``host``
(allowed hosts), ``token`` (token formats), ``exempt`` (exemptions), ``form``
(the token field in a form body), ``templates`` (:func:`csrf_token` and friends),
``asgi`` (the middleware).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessionware.csrf.check import SAFE_METHODS
from sessionware.csrf.exempt import csrf_exempt
from sessionware.csrf.templates import csrf_input, csrf_token, install_jinja

if TYPE_CHECKING:
    from sessionware.csrf.asgi import CSRFMiddleware

__all__ = [
    "SAFE_METHODS",
    "CSRFMiddleware",
    "csrf_exempt",
    "csrf_input",
    "csrf_token",
    "install_jinja",
]


def __getattr__(name: str) -> Any:
    # The ASGI glue loads on first use: the neutral check imports no framework.
    if name == "CSRFMiddleware":
        from sessionware.csrf.asgi import CSRFMiddleware

        return CSRFMiddleware
    raise AttributeError(f"module 'sessionware.csrf' has no attribute {name!r}")
