"""sessionware for Flask: ``Sessionware(app)`` makes ``flask.session`` a server-side
sessionware session, with login, remember-me and CSRF protection, from the same
neutral layers as the ASGI side, run with plain calls (no event loop).

Modules: ``extension`` (the extension and Flask's session interface), ``login``
(Flask-Login's names: ``login_user``, ``current_user``, ``@login_required``...),
``csrf`` (Flask-WTF's names: ``CSRFProtect``, ``@csrf.exempt``, ``csrf_token()``).
"""

from __future__ import annotations

from sessionware._extras import requires

# A missing Flask names the extra to install instead of a bare ModuleNotFoundError.
with requires("flask"):
    from sessionware.flask.csrf import CSRFProtect, csrf_input, csrf_token
    from sessionware.flask.extension import FlaskSession, Sessionware, current_view, extension
    from sessionware.flask.flashing import flash, get_flashed_messages
    from sessionware.flask.login import (
        AnonymousUser,
        AnonymousUserMixin,
        DeviceSession,
        UserMixin,
        confirm_login,
        current_user,
        fresh_login_required,
        login_fresh,
        login_required,
        login_user,
        logout_everywhere,
        logout_user,
        password_changed,
        revoke,
        safe_next,
        sessions_of,
    )

__all__ = [
    "AnonymousUser",
    "AnonymousUserMixin",
    "CSRFProtect",
    "DeviceSession",
    "FlaskSession",
    "Sessionware",
    "UserMixin",
    "confirm_login",
    "csrf_input",
    "csrf_token",
    "current_user",
    "current_view",
    "extension",
    "flash",
    "fresh_login_required",
    "get_flashed_messages",
    "login_fresh",
    "login_required",
    "login_user",
    "logout_everywhere",
    "logout_user",
    "password_changed",
    "revoke",
    "safe_next",
    "sessions_of",
]
