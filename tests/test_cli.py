"""The ``sessionware`` command: help, clear errors (exit 2), secrets, sessions, purge,
the cookie table and the demo's start-up, against real SQLite files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from sessionware.cli import main
from sessionware.demo import DemoSettings, create_app
from sessionware.stores import SQLiteStore
from tests.demo.conftest import SECRET, Client

COMMANDS = [
    [],
    ["secret"],
    ["sessions"],
    ["sessions", "list"],
    ["sessions", "revoke"],
    ["purge"],
    ["cookies"],
    ["demo"],
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test runs in an empty folder with no SESSION_* variables."""
    for var in ("SESSION_SECRET", "SESSION_STORE", "REMEMBER_ME_TTL", "LOGIN_MAX_ATTEMPTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a) or "top")
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """``--help`` works for every command, exits 0, and says what the command does in a
    description line under the usage."""
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sessionware")
    description = out.split("\n\n")[1].strip()
    assert description[0].isupper() and description.endswith(".") and len(description) > 20


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``sessionware --version`` prints the package version and exits 0."""
    import sessionware

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"sessionware {sessionware.__version__}"


def test_secret_prints_a_new_strong_secret(capsys: pytest.CaptureFixture[str]) -> None:
    """``sessionware secret`` prints 64 url-safe characters, different each time."""
    main(["secret"])
    main(["secret"])
    first, second = capsys.readouterr().out.split()
    assert len(first) == 64 and first != second
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "argv",
    [
        ["sessions", "list", "--store", "bogus://nowhere"],
        ["sessions", "revoke", "--user", "1", "--all", "--store", "sqlite://"],
        ["purge", "--store", "not-a-url"],
        ["demo", "--store", "mongodb://127.0.0.1"],
    ],
    ids=["list", "revoke", "purge", "demo"],
)
def test_bad_store_url_is_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad store URL gives exit code 2 and one line that shows the accepted forms."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "error:" in err and "sqlite:///" in err


def test_missing_store_says_how_to_give_one(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --store or SESSION_STORE the command says which to set (exit 2)."""
    assert main(["purge"]) == 2
    assert "pass --store URL or set SESSION_STORE" in capsys.readouterr().err


def test_cookies_without_a_secret_says_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    """``sessionware cookies`` with no secret anywhere exits 2 naming SESSION_SECRET."""
    assert main(["cookies"]) == 2
    err = capsys.readouterr().err
    assert "SESSION_SECRET" in err and "sessionware secret" in err


def test_cookies_prints_the_declaration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table lists every cookie with the lifetimes from the environment."""
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("REMEMBER_ME_TTL", str(7 * 86400))
    assert main(["cookies", "--demo"]) == 0
    plain = capsys.readouterr().out
    assert plain.splitlines()[0].split() == ["NAME", "NECESSARY", "LIFETIME", "ATTRIBUTES"]
    assert "\nsid " in plain and "\nremember " in plain and "7 days" in plain
    assert "\ndevice " in plain  # the login throttle's known-browser cookie
    assert main(["cookies", "--demo", "--tls"]) == 0
    tls = capsys.readouterr().out
    assert "__Host-sid" in tls and "__Host-device" in tls and "Secure" in tls


def _populate(db: Path) -> None:
    """Two users signed in through the real demo app: ann on two devices, ben on one."""

    async def run() -> None:
        settings = DemoSettings.load({"SESSION_SECRET": SECRET}, store=f"sqlite:///{db}")
        app = create_app(settings)
        clients = [Client(app) for _ in range(3)]
        try:
            await clients[0].register("ann")
            await clients[1].login("ann", "correct horse battery")
            await clients[2].register("ben")
        finally:
            for c in clients:
                await c.aclose()
            await app.state.demo.store.close()

    anyio.run(run)


def test_sessions_list_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """List every user's sessions, revoke one by handle, then all of a user's."""
    db = tmp_path / "demo.sqlite3"
    _populate(db)
    url = f"sqlite:///{db}"
    assert main(["sessions", "list", "--store", url]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:2] == ["USER", "HANDLE"]
    assert [r.split()[0] for r in rows[1:]].count("1") == 2
    assert [r.split()[0] for r in rows[1:]].count("2") == 1
    assert main(["sessions", "list", "--user", "1", "--store", url]) == 0
    ann = capsys.readouterr().out.splitlines()[1:]
    assert len(ann) == 2 and "127.0.0.1" in ann[0]
    handle = ann[0].split()[1]
    assert main(["sessions", "revoke", "--user", "1", "--handle", handle, "--store", url]) == 0
    assert "revoked 1 session" in capsys.readouterr().out
    assert main(["sessions", "revoke", "--user", "1", "--handle", handle, "--store", url]) == 1
    capsys.readouterr()
    assert main(["sessions", "revoke", "--user", "1", "--all", "--store", url]) == 0
    assert "revoked 1 session" in capsys.readouterr().out
    assert main(["sessions", "list", "--user", "1", "--store", url]) == 0
    assert "no live sessions" in capsys.readouterr().out


def test_revoke_needs_handle_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    """``sessions revoke`` refuses to guess: one of --handle or --all is required."""
    with pytest.raises(SystemExit) as exc:
        main(["sessions", "revoke", "--user", "1", "--store", "memory://"])
    assert exc.value.code == 2
    assert "--handle" in capsys.readouterr().err


def test_purge_removes_expired_records_with_a_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a large store purge removes every expired record, drawing a bar on stderr."""
    db = tmp_path / "big.sqlite3"
    past = time.time() - 3600

    async def fill() -> None:
        old = SQLiteStore(db, clock=lambda: past)
        live = SQLiteStore(db)
        try:
            for i in range(1200):
                await old.create(f"expired-{i}", {"c": "0", "a": "0"}, 60)
            await live.create("alive", {"c": "0", "a": "0"}, 600)
        finally:
            await old.close()
            await live.close()

    anyio.run(fill)
    assert main(["purge", "--store", f"sqlite:///{db}"]) == 0
    captured = capsys.readouterr()
    assert "removed 1200 expired session record(s)" in captured.out
    assert "1200/1200" in captured.err and "[" in captured.err

    async def remaining() -> int:
        store = SQLiteStore(db)
        try:
            return await store.count() + await store.count_expired()
        finally:
            await store.close()

    assert anyio.run(remaining) == 1


def test_redis_store_purge_and_listing(capsys: pytest.CaptureFixture[str]) -> None:
    """On Redis (which expires records itself) purge has nothing to do; an empty prefix
    lists no sessions, for every user or one."""
    import uuid

    url = f"redis://127.0.0.1:6379/0?prefix=swtcli{uuid.uuid4().hex[:8]}:"
    assert main(["purge", "--store", url]) == 0
    assert "expires records by itself" in capsys.readouterr().out
    assert main(["sessions", "list", "--store", url]) == 0
    assert capsys.readouterr().out.strip() == "no live sessions"
    assert main(["sessions", "list", "--user", "42", "--store", url]) == 0
    assert "no live sessions for user 42" in capsys.readouterr().out


def test_demo_makes_an_owner_only_secret_once(tmp_path: Path) -> None:
    """Without SESSION_SECRET the demo makes a secret file (0600) and reuses it."""
    first = DemoSettings.load({}, state_dir=tmp_path / ".sessionware")
    again = DemoSettings.load({}, state_dir=tmp_path / ".sessionware")
    path = tmp_path / ".sessionware" / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.secrets == again.secrets and len(first.secrets[0]) >= 32
    assert "made a session secret" in first.secret_note
    assert "made" not in again.secret_note


def test_demo_starts_and_serves(tmp_path: Path) -> None:
    """``sessionware demo`` prints its one-line notes and serves the landing page."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "REMEMBER_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionware.cli", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = ""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    body = r.read().decode()
                    assert r.headers.get("set-cookie") is None
                break
            except OSError:
                time.sleep(0.1)
        assert "sessionware" in body
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "made a session secret and saved it in .sessionware/secret (owner-only)" in out
    assert "unprefixed cookie names 'sid' and 'remember'" in out
    assert (tmp_path / "sessionware-demo.sqlite3").exists()
    assert stat.S_IMODE((tmp_path / ".sessionware" / "secret").stat().st_mode) == 0o600
