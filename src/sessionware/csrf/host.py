"""Which host a request was addressed to, and whether this app answers to it.

The ``Host`` header is chosen by the client: a page that rebinds its own DNS name to
the server's address, or a scanner, sends any name it likes. An app that builds its
own origin (the CSRF gate) or an absolute URL from it must first check it against
the names it serves, as Django's ``ALLOWED_HOSTS`` does. Pure functions only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sessionware._http import forwarded, header
from sessionware.exceptions import ConfigurationError

__all__ = ["AllowedHosts", "addressed"]

# RFC 3986 §3.2.2 reg-name (as browsers send it) or a bracketed IPv6 literal, then a port.
_HOST = re.compile(r"([a-z0-9_.-]+|\[[a-f0-9:.]+\])(?::([0-9]{1,5}))?")


def addressed(
    headers: Iterable[tuple[bytes, bytes]], trust_proxy: int
) -> tuple[str | None, str | None]:
    """``(scheme, host)`` a request was addressed to, each None when not sent.

    ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` count only when ``trust_proxy``
    says how many proxies to believe (read as every other forwarded header is);
    otherwise a client could name any host it likes. The host keeps its port
    (``example.com:8443``); two ``Host`` lines join into a value no check accepts.
    """
    lines = list(headers)
    host = forwarded(lines, b"x-forwarded-host", trust_proxy) or header(lines, b"host")
    return forwarded(lines, b"x-forwarded-proto", trust_proxy), host


def _name(host: str) -> str | None:
    """The host name of ``host[:port]``, lower case without a trailing dot, or None."""
    match = _HOST.fullmatch(host.strip().lower())
    if match is None:
        return None
    return match.group(1).removesuffix(".")


class AllowedHosts:
    """The host names an app answers to, written as in Django's ``ALLOWED_HOSTS``.

    ``"example.com"`` is that name only; ``".example.com"`` is it and every subdomain;
    ``"*"`` is any name. Ports are not compared: a name is allowed on every port.
    """

    __slots__ = ("any", "exact", "suffixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        if isinstance(patterns, str):
            raise ConfigurationError("allowed_hosts is a list of host names, not one string")
        exact: set[str] = set()
        suffixes: set[str] = set()
        self.any = False
        for pattern in patterns:
            if pattern == "*":
                self.any = True
                continue
            bare = pattern.removeprefix(".") if isinstance(pattern, str) else ""
            name = _name(bare) if bare and bare == bare.strip() else None
            if name is None or name != bare.lower().removesuffix(".") or not name.strip("."):
                raise ConfigurationError(
                    f"allowed_hosts entry {pattern!r} is not a host name: write 'example.com', "
                    "'.example.com' (with its subdomains) or '*', without scheme, port or path"
                )
            (suffixes if pattern.startswith(".") else exact).add(name)
        if not (self.any or exact or suffixes):
            raise ConfigurationError(
                "allowed_hosts is empty, so every request would be refused: list the host "
                "names the app serves, or leave it None to skip the check"
            )
        self.exact = frozenset(exact)
        self.suffixes = frozenset(suffixes)

    def allows(self, host: str | None) -> bool:
        """Whether a ``Host`` value (``name[:port]``) names this app."""
        name = _name(host) if host else None
        if name is None:
            return False
        if self.any or name in self.exact:
            return True
        return any(name == s or name.endswith("." + s) for s in self.suffixes)
