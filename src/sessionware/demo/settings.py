"""The demo's settings: command-line flags, then the environment, then defaults.

Timeouts and limits come from the environment through the library's own
``from_env`` builders (seconds), so a test can run the real server with short
ones. Without ``SESSION_SECRET`` the demo makes a secret once and keeps it in
``.sessionware/secret`` (owner-only), so sessions survive a restart.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sessionware.demo.files import private_dir, tighten, write_private
from sessionware.exceptions import ConfigurationError

__all__ = ["DEFAULT_DB", "STATE_DIR", "DemoSettings", "ensure_secret", "sqlite_path"]

DEFAULT_DB = "sessionware-demo.sqlite3"
STATE_DIR = ".sessionware"


def sqlite_path(url: str) -> str | None:
    """The file a ``sqlite://`` store URL names (as :func:`stores.from_url` reads it)."""
    if urlsplit(url).scheme.lower() != "sqlite":
        return None
    path = unquote(url[len("sqlite://") :])
    return path[1:] if path.startswith("/") else path


def ensure_secret(folder: Path) -> tuple[str, bool]:
    """Read the demo's secret from ``folder/secret``, making it on first run.

    Returns ``(secret, made)``. The folder is kept 0700 and the file 0600, from the
    start, and an existing one that others can read is tightened back.
    """
    private_dir(folder)
    path = folder / "secret"
    if path.exists():
        tighten(path)
        value = path.read_text().strip()
        if len(value) >= 32:
            return value, False
        raise ConfigurationError(
            f"{path} holds no usable secret: delete it to make a new one, or set SESSION_SECRET"
        )
    value = secrets.token_urlsafe(48)
    write_private(path, (value + "\n").encode())
    return value, True


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    """Everything the demo app needs to start; build with :meth:`load`."""

    #: May hold a password: never printed as is (see :func:`stores.redact_url`).
    store_url: str = field(default=f"sqlite:///{DEFAULT_DB}", repr=False)
    users_db: str = DEFAULT_DB
    secrets: tuple[str, ...] = field(repr=False)
    secret_note: str = ""
    tls: bool = False
    #: The environment the library's ``from_env`` builders read timeouts and limits from.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        store: str | None = None,
        users_db: str | None = None,
        tls: bool = False,
        state_dir: Path | None = None,
        make_secret: bool = True,
    ) -> DemoSettings:
        """Combine the flags with ``SESSION_*``, ``REMEMBER_ME_*`` and ``LOGIN_*`` variables."""
        env = os.environ if environ is None else environ
        store_url = store or env.get("SESSION_STORE") or f"sqlite:///{DEFAULT_DB}"
        if users_db is None:
            users_db = sqlite_path(store_url) or DEFAULT_DB
        raw = env.get("SESSION_SECRET", "")
        keys = tuple(s.strip() for s in raw.split(",") if s.strip())
        note = "session secret from SESSION_SECRET"
        if not keys:
            folder = state_dir or Path(STATE_DIR)
            if not make_secret and not (folder / "secret").exists():
                raise ConfigurationError(
                    "no session secret: set SESSION_SECRET (make one with `sessionware secret`)"
                    " or run `sessionware demo` once, which makes one"
                )
            value, made = ensure_secret(folder)
            keys = (value,)
            where = folder / "secret"
            note = (
                f"made a session secret and saved it in {where} (owner-only); "
                "set SESSION_SECRET to use your own"
                if made
                else f"session secret from {where}; set SESSION_SECRET to use your own"
            )
        return cls(
            store_url=store_url,
            users_db=users_db,
            secrets=keys,
            secret_note=note,
            tls=tls,
            environ=dict(env),
        )
