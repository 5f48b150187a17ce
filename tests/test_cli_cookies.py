"""``sessionware cookies`` describes *your* app: from ``--app module:attr`` (Starlette,
FastAPI, Flask, a factory, a SessionConfig) or from the environment."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from sessionware.cli import main
from tests.demo.conftest import SECRET


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test runs in an empty folder (where --app modules are looked for)."""
    for var in ("SESSION_SECRET", "SESSION_STORE", "SESSION_IDLE_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def _module(tmp_path: Path, code: str) -> str:
    """Write an app module into the current folder; a fresh name each time."""
    name = f"swapp_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
    return name


def _rows(out: str) -> dict[str, list[str]]:
    """NAME -> the rest of its table row, split on two spaces."""
    lines = out.split("\n\n")[0].splitlines()
    assert lines[0].startswith("# cookies of") and lines[1].split()[0] == "NAME"
    return {
        line.split()[0]: [c.strip() for c in line.split("  ") if c.strip()][1:]
        for line in lines[2:]
    }


def test_starlette_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Starlette app's own cookie names, attributes and lifetimes, its remember-me
    cookie and the device cookie of its module-level login throttle."""
    name = _module(
        tmp_path,
        f"""
        from starlette.applications import Starlette
        from sessionware import SessionMiddleware
        from sessionware.remember import RememberConfig, RememberMeMiddleware
        from sessionware.stores import MemoryStore
        from sessionware.throttle import LoginThrottle

        throttle = LoginThrottle(device_cookie_name="shop_device")
        app = Starlette()
        app.add_middleware(RememberMeMiddleware, config=RememberConfig(
            cookie_name="shop_keep", ttl=3 * 86400))
        app.add_middleware(
            SessionMiddleware, store=MemoryStore(development=True), secrets=[{SECRET!r}],
            cookie_name="shop_sid", same_site="strict", idle_timeout=600, secure=True)
        """,
    )
    assert main(["cookies", "--app", f"{name}:app"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == ["shop_sid", "shop_keep", "shop_device"]
    assert "10 minutes idle" in rows["shop_sid"][1]
    assert rows["shop_sid"][2] == "Path=/; Secure; HttpOnly; SameSite=Strict"
    assert rows["shop_keep"][:2] == ["no (opt-in)", "3 days"]


def test_flask_factory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Flask app factory is called, and the extension's settings are read."""
    name = _module(
        tmp_path,
        f"""
        from flask import Flask
        from sessionware.flask import Sessionware

        def create_app():
            app = Flask(__name__)
            app.config.update(SECRET_KEY={SECRET!r}, SESSIONWARE_STORE="memory://",
                SESSIONWARE_COOKIE_NAME="flask_sid", SESSIONWARE_REMEMBER={{"cookie_name": "rm"}})
            Sessionware(app)
            return app
        """,
    )
    assert main(["cookies", "--app", f"{name}:create_app", "--tls"]) == 0
    out = capsys.readouterr().out
    assert "served over https" in out.splitlines()[0]
    rows = _rows(out)
    assert list(rows) == ["flask_sid", "rm"]
    assert "Secure" in rows["flask_sid"][2].split("; ")


def test_session_config_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A settings module's SessionConfig is enough."""
    name = _module(
        tmp_path,
        f"""
        from sessionware import SessionConfig
        SESSION = SessionConfig(secrets=[{SECRET!r}], cookie_name="__Host-cfg", max_age=86400)
        """,
    )
    assert main(["cookies", "--app", f"{name}:SESSION"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == ["__Host-cfg"] and rows["__Host-cfg"][1].startswith("1 day")


def test_environment(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --app the session cookie comes from SESSION_* (as from_env reads it)."""
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "120")
    assert main(["cookies"]) == 0
    out = capsys.readouterr().out
    assert "the environment" in out.splitlines()[0]
    assert "2 minutes idle" in _rows(out)["__Host-sid"][1]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("no_such_module_here:app", "cannot import"),
        ("json:app", "has no attribute"),
        ("json:dumps", "found no sessionware session settings"),
        (":app", "use module:attribute"),
    ],
)
def test_wrong_app_is_one_line(spec: str, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong --app says what was wrong in one line, exit 2."""
    assert main(["cookies", "--app", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
