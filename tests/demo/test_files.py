"""The demo's files are owner-only: the state folder 0700; the secret, the TLS key and
certificate, and the SQLite file of users and sessions (with its -wal and -shm) 0600,
whatever the umask, and files left readable by an older version are tightened."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from sessionware.demo.files import private_dir, private_file, write_private
from sessionware.demo.settings import DemoSettings, ensure_secret
from sessionware.demo.tls import ensure_certificate
from sessionware.demo.users import UserDB
from tests.demo.conftest import Client


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    """Run each test under umask 000, so only the code under test can make a file private."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_private_dir_makes_and_tightens_a_folder(tmp_path: Path) -> None:
    """private_dir creates a 0700 folder and tightens an existing 0755 one."""
    fresh, old = tmp_path / "a" / "b", tmp_path / "old"
    old.mkdir(mode=0o755)
    private_dir(fresh)
    private_dir(old)
    assert mode(fresh) == 0o700
    assert mode(old) == 0o700


def test_private_file_creates_and_tightens(tmp_path: Path) -> None:
    """private_file creates an empty 0600 file, tightens a 0644 one and keeps its content."""
    fresh, old = tmp_path / "new", tmp_path / "old"
    old.write_text("kept")
    os.chmod(old, 0o644)
    private_file(fresh)
    private_file(old)
    assert (mode(fresh), fresh.read_bytes()) == (0o600, b"")
    assert (mode(old), old.read_text()) == (0o600, "kept")


def test_write_private_replaces_a_readable_file(tmp_path: Path) -> None:
    """write_private replaces a world-readable file with a 0600 one holding the new bytes."""
    path = tmp_path / "key.pem"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_private(path, b"new")
    assert (mode(path), path.read_bytes()) == (0o600, b"new")


def test_secret_and_state_folder_are_owner_only(tmp_path: Path) -> None:
    """The made secret is 0600 in a 0700 folder, and a readable old one is tightened on reuse."""
    folder = tmp_path / ".sessionware"
    value, made = ensure_secret(folder)
    assert made and (mode(folder), mode(folder / "secret")) == (0o700, 0o600)
    os.chmod(folder, 0o755)  # noqa: S103 - the loose folder an older version left
    os.chmod(folder / "secret", 0o644)
    assert ensure_secret(folder) == (value, False)
    assert (mode(folder), mode(folder / "secret")) == (0o700, 0o600)


def test_tls_key_and_certificate_are_owner_only(tmp_path: Path) -> None:
    """A made certificate and key are 0600 in a 0700 folder; reused readable ones are tightened."""
    folder = tmp_path / ".sessionware"
    cert, key, made = ensure_certificate(folder)
    assert made
    assert (mode(folder), mode(cert), mode(key)) == (0o700, 0o600, 0o600)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)
    assert ensure_certificate(folder) == (cert, key, False)
    assert (mode(cert), mode(key)) == (0o600, 0o600)


def test_user_db_file_is_owner_only_and_an_old_one_is_tightened(tmp_path: Path) -> None:
    """UserDB creates its file 0600 and tightens a 0644 file and journal left by older runs."""
    fresh = tmp_path / "users.sqlite3"
    UserDB(fresh).add("ann", "hash")
    assert mode(fresh) == 0o600
    old = tmp_path / "old.sqlite3"
    sqlite3.connect(old).close()
    wal = Path(f"{old}-wal")
    wal.write_bytes(b"")
    os.chmod(old, 0o644)
    os.chmod(wal, 0o644)
    UserDB(old)
    assert (mode(old), mode(wal)) == (0o600, 0o600)


@pytest.mark.anyio
async def test_demo_database_and_its_wal_and_shm_are_owner_only(
    tmp_path: Path, make_app: Callable[..., Starlette]
) -> None:
    """After a registration, the demo's SQLite file of users and sessions, and its -wal
    and -shm, are 0600 although the umask would allow anyone to read them."""
    app = make_app()
    client = Client(app)
    db = tmp_path / "demo.sqlite3"
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    try:
        response = await client.register("ann")
        assert response.status_code in (200, 303)
        assert all(f.exists() for f in files)  # while open: SQLite removes them on close
        assert [mode(f) for f in files] == [0o600] * 3
    finally:
        await client.aclose()
        await app.state.demo.store.close()


def test_settings_repr_shows_neither_secret_nor_store_password(tmp_path: Path) -> None:
    """repr(DemoSettings) leaves out the secrets and the store URL (it may hold a password)."""
    settings = DemoSettings.load(
        {"SESSION_SECRET": "x" * 40}, store="redis://:hunter2pw@127.0.0.1:6379/0"
    )
    assert "hunter2pw" not in repr(settings)
    assert "x" * 40 not in repr(settings)
