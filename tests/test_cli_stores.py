"""The operator's commands against every store, with typos and with servers down.

Each command either does its job or prints one line on stderr and exits 1 (could not
be done) or 2 (a mistake in the command); the commands that read or change sessions
never create a file, a database or a table.
"""

from __future__ import annotations

import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import psycopg
import pytest

from sessionware.cli import main
from sessionware.demo import DemoSettings, create_app
from tests.demo.conftest import SECRET, Client

PG = "postgresql://127.0.0.1:5432/test"
STORE_COMMANDS = [
    ["sessions", "list"],
    ["sessions", "list", "--user", "1"],
    ["sessions", "revoke", "--user", "1", "--all"],
    ["purge"],
]
IDS = ["list", "list-user", "revoke", "purge"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test runs in an empty folder with no SESSION_* variables."""
    for var in ("SESSION_SECRET", "SESSION_STORE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _populate(url: str) -> None:
    """ann signs in on two browsers and ben on one, through the real demo app."""

    async def run() -> None:
        settings = DemoSettings.load({"SESSION_SECRET": SECRET}, store=url, users_db="users.db")
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


def _listed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The USER column of the table ``sessions list`` printed."""
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:2] == ["USER", "HANDLE"]
    return sorted(r.split()[0] for r in rows[1:])


# -- SQLite --------------------------------------------------------------------------


@pytest.mark.parametrize("argv", STORE_COMMANDS, ids=IDS)
def test_a_mistyped_sqlite_path_creates_nothing(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite file that does not exist is "no sessionware store at <path>" (exit 1),
    and the command leaves no file behind."""
    assert main([*argv, "--store", "sqlite:///sesions.sqlite3"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"no sessionware store at {tmp_path / 'sesions.sqlite3'}" in line
    assert list(tmp_path.iterdir()) == []


def test_relative_vs_absolute_sqlite_urls_get_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three slashes is relative and four absolute; a URL whose other reading names an
    existing file says so, in both directions."""
    _populate(f"sqlite:///{tmp_path / 'app.db'}")  # an absolute path: four slashes
    absolute = tmp_path / "app.db"
    assert absolute.exists()
    # The absolute path written with three slashes is read relative to the current folder.
    assert main(["sessions", "list", "--store", f"sqlite:///{str(absolute).lstrip('/')}"]) == 1
    assert f"did you mean sqlite:////{str(absolute).lstrip('/')}?" in capsys.readouterr().err
    # A file in the current folder written with four slashes is read as /app.db.
    assert main(["sessions", "list", "--store", "sqlite:////app.db"]) == 1
    assert "did you mean sqlite:///app.db? three slashes" in capsys.readouterr().err
    assert main(["sessions", "list", "--store", "sqlite:///app.db"]) == 0
    assert _listed(capsys) == ["1", "1", "2"]


def test_a_file_that_is_not_a_sessionware_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Some other file, or another app's SQLite database, is not touched: exit 1 naming it."""
    (tmp_path / "notes.txt").write_text("not a database at all " * 20)
    assert main(["sessions", "list", "--store", "sqlite:///notes.txt"]) == 1
    assert "no sessionware store at" in _one_line(capsys.readouterr().err)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.close()
    assert main(["purge", "--store", "sqlite:///other.db"]) == 1
    assert "has no sessionware tables" in _one_line(capsys.readouterr().err)
    with sqlite3.connect(other) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert tables == {"orders"}


# -- memory --------------------------------------------------------------------------


@pytest.mark.parametrize("argv", STORE_COMMANDS, ids=IDS)
def test_memory_store_is_refused_with_the_reason(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """memory:// lives in the app's process: a command in its own process refuses it."""
    assert main([*argv, "--store", "memory://"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "inside one process" in line and "redis://" in line


# -- PostgreSQL ----------------------------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A store URL on a fresh, empty schema of the test database (dropped afterwards)."""
    name = f"swcli_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{PG}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def _pg_tables(schema_url: str) -> set[str]:
    schema = schema_url.rsplit("%3D", 1)[1]
    with psycopg.connect(PG) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("argv", STORE_COMMANDS, ids=IDS)
def test_an_empty_postgres_database_is_no_store_and_stays_empty(
    argv: list[str], pg_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database without sessionware's tables is "no sessionware store" (exit 1), and
    the command creates no table."""
    assert main([*argv, "--store", pg_schema]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "no sessionware store at postgresql://127.0.0.1:5432/test" in line
    assert "sessionware_sessions" in line
    assert _pg_tables(pg_schema) == set()


def test_postgres_lists_every_user_without_user(
    pg_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once an app made the store, ``sessions list`` without --user lists every user's
    sessions from the user index; revoking one user leaves the other."""
    _populate(pg_schema)
    assert main(["sessions", "list", "--store", pg_schema]) == 0
    assert _listed(capsys) == ["1", "1", "2"]
    assert main(["sessions", "revoke", "--user", "1", "--all", "--store", pg_schema]) == 0
    assert "revoked 2 session(s)" in capsys.readouterr().out
    assert main(["sessions", "list", "--store", pg_schema]) == 0
    assert _listed(capsys) == ["2"]


def test_postgres_typos_and_outages_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A database name that does not exist, and a server that is not there, each give one
    line and exit 1, within a few seconds, with no pool noise before it."""
    started = time.monotonic()
    assert main(["sessions", "list", "--store", "postgresql://127.0.0.1:5432/no_such_db"]) == 1
    assert "no such database" in _one_line(capsys.readouterr().err)
    assert main(["purge", "--store", "postgresql://127.0.0.1:1/test"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "cannot be reached" in line and "127.0.0.1:1" in line
    assert time.monotonic() - started < 10


def test_a_postgres_password_is_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    """The error line shows the URL with its password masked."""
    url = "postgresql://nobody:hunter2-secret@127.0.0.1:5432/test"
    assert main(["sessions", "list", "--store", url]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "hunter2-secret" not in line and "nobody:***@" in line


# -- Redis ---------------------------------------------------------------------------


def test_redis_lists_every_user_without_user(capsys: pytest.CaptureFixture[str]) -> None:
    """``sessions list`` without --user on Redis lists every user from the user index
    under the store's prefix (and no other app's users)."""
    url = f"redis://127.0.0.1:6379/0?prefix=swcli{uuid.uuid4().hex[:8]}:"
    _populate(url)
    _populate(f"redis://127.0.0.1:6379/0?prefix=swcliother{uuid.uuid4().hex[:8]}:")
    try:
        assert main(["sessions", "list", "--store", url]) == 0
        assert _listed(capsys) == ["1", "1", "2"]
    finally:
        assert main(["sessions", "revoke", "--user", "1", "--all", "--store", url]) == 0
        assert main(["sessions", "revoke", "--user", "2", "--all", "--store", url]) == 0
        capsys.readouterr()
    assert main(["sessions", "list", "--store", url]) == 0
    assert capsys.readouterr().out.strip() == "no live sessions"


@pytest.mark.parametrize("argv", STORE_COMMANDS, ids=IDS)
def test_an_unreachable_redis_is_reported_as_unreachable(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """No server on the port: one line saying the store cannot be reached, exit 1."""
    assert main([*argv, "--store", "redis://127.0.0.1:1/0"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "cannot be reached" in line and "127.0.0.1:1" in line


# -- the demo's port -----------------------------------------------------------------


def test_a_busy_port_is_reported_before_serving(capsys: pytest.CaptureFixture[str]) -> None:
    """``sessionware demo`` on a port another server holds says so with the fix, exit 1,
    and never prints "open http://"."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--port", str(port)]) == 1
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert f"port {port} on 127.0.0.1 is already in use" in line and "--port" in line
    assert "open http" not in captured.out + captured.err
