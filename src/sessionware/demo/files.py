"""The demo's files on disk, owner-only: its state folder (0700) and every file in it
or next to it that holds a secret, a key or user data (0600).

A file is created with its final mode (never briefly world-readable), and one left
readable by an earlier version is tightened when the demo starts.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["private_dir", "private_file", "tighten", "write_private"]

_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def tighten(path: Path, mode: int = 0o600) -> None:
    """Set ``path`` to ``mode`` if it exists and its group or others have any access."""
    try:
        current = path.stat().st_mode
    except FileNotFoundError:
        return
    if current & _OTHERS:
        os.chmod(path, mode)


def private_dir(folder: Path) -> None:
    """Make ``folder`` (and missing parents) and leave it readable by its owner only."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tighten(folder, 0o700)


def private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if missing, else tighten it to 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        tighten(path)
    else:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in a file only its owner can read, from its first byte."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
