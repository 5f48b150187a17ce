"""The public names, pinned, and the promise that optional drivers load only when asked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import sessionware
import sessionware.stores


def test_package_all_is_pinned() -> None:
    """sessionware.__all__ is exactly the agreed public names."""
    assert sorted(sessionware.__all__) == sorted([
        "ConfigurationError",
        "InvalidSignatureError",
        "Session",
        "SessionConfig",
        "SessionMiddleware",
        "SessionTooLargeError",
        "SessionwareError",
        "StoreError",
        "StoreUnavailableError",
        "__version__",
    ])
    for name in sessionware.__all__:
        assert hasattr(sessionware, name)


def test_stores_all_is_pinned() -> None:
    """sessionware.stores.__all__ is exactly the agreed store names."""
    assert sorted(sessionware.stores.__all__) == sorted([
        "Fields",
        "MemoryStore",
        "PostgresStore",
        "RedisStore",
        "SQLiteStore",
        "Store",
        "from_url",
    ])


def test_import_pulls_in_no_optional_driver() -> None:
    """`import sessionware` (and its stores package) loads neither redis, psycopg nor flask."""
    code = textwrap.dedent(
        """
        import sys
        import sessionware, sessionware.stores
        from sessionware import SessionMiddleware, SessionConfig, Session
        from sessionware.stores import MemoryStore, SQLiteStore
        loaded = sorted(
            m for m in sys.modules
            if m.split(".")[0] in {"redis", "psycopg", "psycopg_binary", "psycopg_c", "flask"}
        )
        print(",".join(loaded))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_errors_share_one_root() -> None:
    """Every sessionware error derives from SessionwareError; config errors are ValueErrors."""
    from sessionware.exceptions import SessionCollisionError

    for exc in (
        sessionware.ConfigurationError,
        sessionware.InvalidSignatureError,
        sessionware.SessionTooLargeError,
        sessionware.StoreError,
        sessionware.StoreUnavailableError,
        SessionCollisionError,
    ):
        assert issubclass(exc, sessionware.SessionwareError)
    assert issubclass(sessionware.ConfigurationError, ValueError)
    assert issubclass(sessionware.StoreUnavailableError, sessionware.StoreError)
