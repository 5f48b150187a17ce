"""The layers below the adapters import no web framework: proven in a fresh interpreter
where importing Starlette, FastAPI or Flask fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap

NEUTRAL = [
    "sessionware",
    "sessionware.core",
    "sessionware.session",
    "sessionware.request",
    "sessionware.stores",
    "sessionware.stores.sqlite",
    "sessionware.stores.redis",
    "sessionware.stores.postgres",
    "sessionware.auth",
    "sessionware.csrf",
    "sessionware.csrf.check",
    "sessionware.passwords",
]


def run_without_frameworks(body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` where any import of starlette, fastapi or flask raises ImportError."""
    code = textwrap.dedent(
        """
        import sys
        for name in ("starlette", "fastapi", "flask"):
            sys.modules[name] = None  # makes "import name" raise ImportError
        """
    ) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_core_stores_auth_and_csrf_import_without_any_framework() -> None:
    """Everything an adapter builds on loads with every web framework missing."""
    imports = "\n".join(f"import {m}" for m in NEUTRAL)
    done = run_without_frameworks(imports + "\nprint('ok')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_asgi_adapter_is_what_needs_starlette() -> None:
    """The control: asking for the ASGI middleware does need Starlette."""
    done = run_without_frameworks("from sessionware import SessionMiddleware")
    assert done.returncode != 0
    assert "starlette" in done.stderr
