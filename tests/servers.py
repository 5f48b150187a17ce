"""Starting and stopping real servers for the end-to-end and attack tests.

Not a test module: ``tests/e2e`` and ``tests/attack`` start the demo as a subprocess
on 127.0.0.1 and share these pieces.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    """Poll ``url``/healthz until it answers 200; fail with the server's log otherwise."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the demo's own self-signed certificate
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the demo exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1, context=context) as r:  # noqa: S310 - 127.0.0.1
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the demo did not start in {seconds:.0f} s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process we started; if it hangs, kill it (and, when it leads its
    own session, the workers in its group)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(timeout=5)


def serve(args: list[str], cwd: Path, env: dict[str, str], log: Path, url: str) -> Any:
    """Start ``python args...`` in ``cwd`` with ``env``, its output in ``log``; return
    the process once ``url``/healthz answers (stopped again if it never does)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(url, proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc


def start_demo(folder: Path, framework: str, env: dict[str, str]) -> tuple[str, Any]:
    """``sessionware demo --tls --framework F`` in ``folder`` on a free port, with the
    environment minus any SESSION_* / REMEMBER_* plus ``env``; returns (url, process)
    once it answers (its output in ``folder/server.log``)."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "REMEMBER_"))}
    full.update(env)
    url = f"https://127.0.0.1:{port}"
    args = ["-m", "sessionware.cli", "demo", "--tls", "--framework", framework]
    args += ["--port", str(port), "--store", f"sqlite:///{folder / 'demo.sqlite3'}"]
    return url, serve(args, folder, full, folder / "server.log", url)
