"""A missing optional dependency names the extra that brings it (``_extras``).

Each case runs a fresh interpreter in which the driver cannot be imported (an import
hook refuses it, as if it were not installed), then uses the part of sessionware that
needs it and reads the error.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

#: Refuse these top-level modules, as a machine without them would.
_BLOCK = """
import sys
from importlib.abc import MetaPathFinder

class Missing(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

BLOCKED = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Missing())
"""


def _run(blocked: str, code: str) -> subprocess.CompletedProcess[str]:
    script = _BLOCK + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script, blocked], capture_output=True, text=True, timeout=60
    )


CASES = [
    (
        "redis",
        "from sessionware.stores import from_url; from_url('redis://127.0.0.1:6379/0')",
        "pip install 'sessionware[redis]'",
    ),
    (
        "psycopg",
        "from sessionware.stores import PostgresStore",
        "pip install 'sessionware[postgres]'",
    ),
    ("psycopg_pool", "import sessionware.stores.postgres", "pip install 'sessionware[postgres]'"),
    (
        "argon2",
        "from sessionware.passwords import PasswordHasher",
        "pip install 'sessionware[auth]'",
    ),
    ("flask", "from sessionware.flask import Sessionware", "pip install 'sessionware[flask]'"),
    (
        "bcrypt",
        "from sessionware.passwords import PasswordHasher; "
        "PasswordHasher(time_cost=1, memory_cost=1024).verify('$2b$10$' + 'a' * 53, 'pw')",
        "pip install 'sessionware[bcrypt]'",
    ),
    (
        "python_multipart",
        "from sessionware.csrf import CSRFMiddleware",
        "pip install --force-reinstall sessionware",
    ),
]


@pytest.mark.parametrize(("blocked", "code", "hint"), CASES, ids=[c[0] for c in CASES])
def test_missing_driver_names_the_extra(blocked: str, code: str, hint: str) -> None:
    """The error names the missing package and the exact pip command, and is still an
    ImportError (so ``except ImportError`` guards keep working)."""
    result = _run(
        blocked,
        f"""
        from sessionware._extras import MissingDependencyError
        try:
            {code}
        except MissingDependencyError as exc:
            assert isinstance(exc, ImportError) and exc.name == {blocked!r}
            print(exc)
        else:
            print("NO ERROR")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert hint in result.stdout and repr(blocked) in result.stdout


def test_a_module_missing_inside_an_installed_driver_is_not_relabelled() -> None:
    """Only the driver's own top-level package is translated: a submodule missing from an
    installed redis is a broken installation, reported as Python reports it."""
    result = _run(
        "redis.cluster",
        """
        from sessionware._extras import MissingDependencyError
        try:
            import sessionware.stores.redis
        except MissingDependencyError:
            print("RELABELLED")
        except ModuleNotFoundError as exc:
            print("PLAIN", exc.name)
        """,
    )
    assert result.stdout.split() == ["PLAIN", "redis.cluster"], result.stderr


def test_the_cli_reports_a_missing_driver_in_one_line() -> None:
    """``sessionware sessions list`` on a Redis URL without redis installed prints one line
    with the pip command and exits 1, no traceback."""
    result = _run(
        "redis",
        """
        from sessionware.cli import main
        sys.exit(main(["sessions", "list", "--store", "redis://127.0.0.1:6379/0"]))
        """,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'sessionware[redis]'" in lines[0]


def test_import_sessionware_needs_no_extra() -> None:
    """The core, the memory and SQLite stores and the CSRF layer import with every extra's
    driver missing."""
    result = _run(
        "redis,psycopg,psycopg_pool,argon2,flask,werkzeug,uvicorn,jinja2,gunicorn",
        """
        import sessionware
        from sessionware.stores import MemoryStore, SQLiteStore
        from sessionware.csrf import CSRFMiddleware
        from sessionware import SessionMiddleware
        print("OK", MemoryStore.__name__, SQLiteStore.__name__)
        """,
    )
    assert result.stdout.split() == ["OK", "MemoryStore", "SQLiteStore"], result.stderr
