"""The documentation site builds with ``mkdocs build --strict`` (broken links, missing
pages and unknown API names fail), offline, and its configuration reference is
generated from ``SessionConfig``."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessionware.config import SessionConfig

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "docs" / "_hooks" / "config_reference.py"


def _mkdocs(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for this module's tests."""
    out = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    result = _mkdocs("build", "--strict", "--site-dir", str(out))
    assert result.returncode == 0, result.stderr[-4000:]
    assert time.monotonic() - started < 60
    return out


def test_every_page_in_the_nav_is_built(site: Path) -> None:
    """Each page the issue asks for is there, the migration guides included."""
    pages = [
        "getting-started/install", "getting-started/starlette", "getting-started/fastapi",
        "getting-started/flask", "concepts", "configuration", "stores", "authentication",
        "csrf", "security-model", "security", "checklist", "deployment", "jwt-vs-sessions",
        "gdpr", "troubleshooting", "cli", "migration/starlette", "migration/starsessions",
        "migration/flask", "migration/express-session", "reference/api", "design",
    ]
    missing = [p for p in pages if not (site / p / "index.html").is_file()]
    assert missing == []


def test_configuration_page_lists_every_option(site: Path) -> None:
    """Every SessionConfig field, and the variables from_env reads, are on the page."""
    html = (site / "configuration" / "index.html").read_text()
    for field in dataclasses.fields(SessionConfig):
        assert f"<code>{field.name}</code>" in html, field.name
    variables = ["SESSION_SECRET", "SESSION_STORE"]
    variables += ["SESSION_IDLE_TIMEOUT", "SESSION_ABSOLUTE_TIMEOUT"]
    for var in variables:
        assert f"<code>{var}</code>" in html
    assert "session-config-table" not in html  # the marker was replaced


def test_api_reference_comes_from_docstrings(site: Path) -> None:
    """mkdocstrings rendered the docstrings (sentences from SessionMiddleware and SQLiteStore)."""
    html = (site / "reference" / "api" / "index.html").read_text()
    assert "Server-side sessions for Starlette, FastAPI and any ASGI app." in html
    assert "Sessions in a SQLite file; safe for many threads" in html


def test_getting_started_quotes_the_tested_examples(site: Path) -> None:
    """The getting-started pages include the example apps themselves (run by the tests)."""
    html = (site / "getting-started" / "starlette" / "index.html").read_text()
    assert 'nf">home' in html and "SessionConfig" in html
    assert "--8&lt;--" not in html


def test_the_site_fetches_nothing(site: Path) -> None:
    """No web fonts or other third-party assets: the docs build and read offline."""
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert "fonts.googleapis.com" not in text and "fonts.gstatic.com" not in text, page


def _hook() -> object:
    spec = importlib.util.spec_from_file_location("config_reference", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_undocumented_option_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """An option the hook has no description for stops the build, naming it."""
    hook = _hook()
    meaning = dict(hook.MEANING)  # type: ignore[attr-defined]
    del meaning["rolling"]
    monkeypatch.setattr(hook, "MEANING", meaning)
    with pytest.raises(RuntimeError, match="rolling"):
        hook.table()  # type: ignore[attr-defined]


def test_environment_column_is_found_by_asking_from_env() -> None:
    """The hook finds SESSION_IDLE_TIMEOUT by trying it, and finds none for cookie_name."""
    hook = _hook()
    assert hook._env_var("idle_timeout") == "`SESSION_IDLE_TIMEOUT`"  # type: ignore[attr-defined]
    assert hook._env_var("cookie_name") == "—"  # type: ignore[attr-defined]


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    """The same strict settings refuse a page that links to a page that does not exist."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the guide](no-such-page.md).\n")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nstrict: true\nvalidation:\n  links:\n    not_found: warn\n"
    )
    result = _mkdocs("build", "--strict", "--site-dir", str(tmp_path / "site"), cwd=tmp_path)
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr
