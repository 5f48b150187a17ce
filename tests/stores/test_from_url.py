"""stores.from_url: SESSION_STORE URLs become stores, and bad ones say what works."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionware.exceptions import ConfigurationError
from sessionware.stores import MemoryStore, SQLiteStore, from_url


@pytest.mark.anyio
async def test_memory_url() -> None:
    """memory:// gives a MemoryStore."""
    store = from_url("memory://", development=True)
    assert isinstance(store, MemoryStore)


@pytest.mark.anyio
async def test_sqlite_absolute_url(tmp_path: Path) -> None:
    """sqlite:////abs/path.db opens that absolute file."""
    store = from_url(f"sqlite:///{tmp_path}/s.db")
    try:
        assert isinstance(store, SQLiteStore)
        assert Path(store.path) == tmp_path / "s.db"
    finally:
        await store.close()


@pytest.mark.anyio
async def test_sqlite_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///name.db opens name.db relative to the working directory."""
    monkeypatch.chdir(tmp_path)
    store = from_url("sqlite:///rel.db")
    try:
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / "rel.db").exists()
    finally:
        await store.close()


@pytest.mark.parametrize("url", ["", "sessions.db", "ftp://x", "sqlite://", "sqlite:///"])
def test_bad_urls_list_the_forms_that_work(url: str) -> None:
    """A URL no store understands is refused with the forms that do work."""
    with pytest.raises(ConfigurationError, match=r"sqlite:///"):
        from_url(url)


def test_sqlite_url_in_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    """A sqlite URL whose folder does not exist fails as a ConfigurationError naming the URL."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        from_url(f"sqlite:///{tmp_path}/nope/s.db")
