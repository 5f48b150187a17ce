"""Optional dependencies: a missing one names the extra that brings it.

``pip install sessionware`` brings the core (Starlette, python-multipart); the drivers
and frameworks come with extras. Without this, a user who picked ``RedisStore`` but
installed no extra would read a bare ``No module named 'redis'`` and have to guess
which of our extras (or which version of the driver) to install.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sessionware.exceptions import SessionwareError

__all__ = ["EXTRAS", "MissingDependencyError", "install_hint", "requires"]

#: Each extra: the top-level modules it brings, and what needs them. ``"core"`` is not an
#: extra but sessionware's own dependencies, missing only from a broken installation.
EXTRAS: dict[str, tuple[frozenset[str], str]] = {
    "core": (frozenset({"python_multipart"}), "CSRF protection of multipart forms"),
    "redis": (frozenset({"redis"}), "RedisStore (Redis, Sentinel, Cluster)"),
    "postgres": (frozenset({"psycopg", "psycopg_pool"}), "PostgresStore"),
    "auth": (frozenset({"argon2"}), "sessionware.passwords (Argon2id hashing)"),
    "otel": (frozenset({"opentelemetry"}), "sessionware.metrics (OpenTelemetry)"),
    "flask": (frozenset({"flask", "werkzeug"}), "sessionware.flask"),
    "bcrypt": (frozenset({"bcrypt"}), "checking bcrypt password hashes from another framework"),
    "testing": (frozenset({"pytest"}), "sessionware.testing.StoreContract (the store test suite)"),
    "migrate": (
        frozenset({"itsdangerous"}),
        "sessionware.migrate (reading Starlette's and Flask's old session cookies)",
    ),
    "demo": (
        frozenset({"uvicorn", "jinja2", "argon2", "cryptography", "flask", "gunicorn"}),
        "the reference app (sessionware demo)",
    ),
}


class MissingDependencyError(SessionwareError, ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra to install.

    Also a ``ModuleNotFoundError``, so code that guards an optional import with
    ``except ImportError`` keeps working.
    """


def install_hint(extra: str) -> str:
    """The command that installs ``extra`` (quoted for every shell)."""
    if extra == "core":
        return "pip install --force-reinstall sessionware (it depends on python-multipart)"
    return f"pip install 'sessionware[{extra}]'"


@contextmanager
def requires(extra: str) -> Iterator[None]:
    """Turn a missing module of ``extra`` raised inside the block into a clear error.

    Only the extra's own modules are translated: a module missing *inside* an installed
    driver is a broken installation, and its own error says more than ours would.
    """
    modules, what = EXTRAS[extra]
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name not in modules or isinstance(exc, MissingDependencyError):
            raise
        raise MissingDependencyError(
            f"{what} needs the {exc.name!r} package, which is not installed: "
            + install_hint(extra)
            + ("" if extra == "core" else f" (or add the {extra!r} extra to your requirements)"),
            name=exc.name,
        ) from exc
