"""The session metadata auth owns: the field names of a logged-in session.

Metadata sits beside the values an app stores, out of the mapping it sees (see
:mod:`sessionware.session`): no leading dot, and never ``c``/``a``/``k``.
"""

from __future__ import annotations

from sessionware.auth.series import SESSION_FIELD

__all__ = ["AUTH_TIME", "FRESH", "HANDLE", "IP", "REMEMBERED", "SERIES", "USER", "USER_AGENT"]

USER = "uid"
HANDLE = "hdl"  # the public handle "your devices" shows: useless as a cookie
AUTH_TIME = "at"
FRESH = "fr"  # "1" after a real login, "0" after a remember-me restore
USER_AGENT = "ua"
IP = "ip"
SERIES = SESSION_FIELD  # the remember-me series this session came from (its key)
REMEMBERED = "rr"  # "1" when the session was restored from remember-me
