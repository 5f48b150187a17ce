"""Store URLs without their passwords, for logs, messages and start-up notes."""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["redact_url"]

_SECRET_KEYS = re.compile(r"(?i)pass(word)?|passwd|pwd|[a-z_]*password")
# ``password=...`` in a libpq conninfo string: a quoted value may hold spaces.
_CONNINFO_PASSWORD = re.compile(r"(?i)\b(\w*password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for logs and messages.

    Masks the password of ``scheme://user:password@host`` (up to the last ``@``, so an
    unescaped ``/``, ``?`` or ``#`` in a password is masked too), the values of query
    parameters named like ``password``, and ``password=`` in a libpq conninfo string.
    The rest is kept as written, so the output still says which server is meant.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _CONNINFO_PASSWORD.sub(r"\1***", url)
    userinfo, at, after = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = userinfo.split(":", 1)[0] + ":***@" + after
    head, q, query = rest.partition("?")
    if q:
        query, h, fragment = query.partition("#")
        pairs = []
        for pair in query.split("&"):
            name, eq, _ = pair.partition("=")
            secret = eq and _SECRET_KEYS.fullmatch(unquote(name).strip())
            pairs.append(f"{name}=***" if secret else pair)
        rest = head + "?" + "&".join(pairs) + h + fragment
    return scheme + sep + rest
