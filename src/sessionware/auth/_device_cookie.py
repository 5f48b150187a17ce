"""The device cookie: a browser that signed in as a user before (OWASP's "device cookies").

The value is ``nonce:user.signature``, signed for the ``"device"`` purpose: ``nonce``
is random and names the device's own attempt budget, ``user`` is a hash of the
normalised username (no name in the cookie). It proves only that this browser once
logged in as that user; it authenticates nobody, it only changes which attempt
budgets a login is counted against.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING

from sessionware._http import cookie_header
from sessionware.cookies import cookie_values, format_set_cookie, is_prefixed
from sessionware.exceptions import InvalidSignatureError
from sessionware.session import BaseSession
from sessionware.signing import Signer
from sessionware.tokens import sha256_hex

if TYPE_CHECKING:
    from sessionware.request import RequestView

__all__ = ["cookie_name", "issue", "read"]

_MAX_VALUE = 200


def _signer(session: BaseSession) -> Signer:
    return Signer(session.config.secrets, salt="device")


def _user_tag(user: str) -> str:
    return sha256_hex("device\0" + user)[:32]


def cookie_name(configured: str | None, session_cookie: str) -> str:
    """The configured name, else ``__Host-device`` beside a prefixed session cookie and
    ``device`` beside an unprefixed one (browsers drop ``__Host-`` cookies over http)."""
    if configured is not None:
        return configured
    return "__Host-device" if is_prefixed(session_cookie) else "device"


def read(view: RequestView, session: BaseSession, name: str, user: str) -> str | None:
    """The nonce of a valid device cookie this request carries for ``user``, else None."""
    signer, tag = _signer(session), _user_tag(user)
    for value in cookie_values(cookie_header(view.headers), name):
        if len(value) > _MAX_VALUE:
            continue
        try:
            nonce, _, bound = signer.unsign(value).partition(":")
        except InvalidSignatureError:
            continue
        if nonce and hmac.compare_digest(bound.encode(), tag.encode()):
            return nonce
    return None


def issue(view: RequestView, session: BaseSession, name: str, user: str, max_age: int) -> str:
    """A ``Set-Cookie`` value for a new device cookie bound to ``user``."""
    value = _signer(session).sign(f"{secrets.token_urlsafe(16)}:{_user_tag(user)}")
    return format_set_cookie(
        name,
        value,
        path="/",
        max_age=max_age,
        # The session cookie's own Secure decision, so every cookie of a response agrees.
        secure=bool(is_prefixed(name)) or session.secure_for(view),
        http_only=True,
        same_site="lax",
    )
