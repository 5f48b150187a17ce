"""WebSocket sessions through a real uvicorn server on real stores: what a handler
writes is saved, use keeps the session alive, and a socket whose session is revoked,
logged out or expired is closed with code 1008 — also for many sockets at once."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.helpers import SECRET
from tests.servers import free_port, serve, stop

ROOT = Path(__file__).resolve().parent.parent
# Generous bounds to wait for a check that runs every 0.3 s: never a timing assertion.
WAIT = 10.0


class Server:
    def __init__(self, base: str) -> None:
        self.base = base
        self.ws = base.replace("http://", "ws://")

    def login(self, user: str) -> str:
        with httpx.Client(base_url=self.base) as c:
            assert c.post("/login", params={"user": user}).status_code == 200
            return c.cookies["sid"]

    def me(self, cookie: str) -> dict[str, Any]:
        with httpx.Client(base_url=self.base, cookies={"sid": cookie}) as c:
            answer = c.get("/me")
            assert answer.status_code == 200
            data: dict[str, Any] = answer.json()
            return data

    def socket(self, cookie: str | None, path: str = "/ws") -> ClientConnection:
        headers = {"Cookie": f"sid={cookie}"} if cookie else {}
        return connect(self.ws + path, additional_headers=headers, open_timeout=WAIT)


def _start(tmp_path: Path, url: str, **env: str) -> Any:
    port = free_port()
    app = env.pop("APP", "tests.ws_app:app")
    args = ["-m", "uvicorn", app, "--factory" if "example" in app else "--no-access-log"]
    args += ["--port", str(port), "--log-level", "warning"]
    environ = {**os.environ, "SESSION_STORE": url, "SESSION_SECRET": SECRET, **env}
    base = f"http://127.0.0.1:{port}"
    return base, serve(args, ROOT, environ, tmp_path / "server.log", base)


def _url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'ws.sqlite3'}"
    if kind == "postgres":
        return "postgresql://postgres@127.0.0.1:5432/test"
    return "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(kind: str, tmp_path: Path) -> Iterator[Server]:
    base, proc = _start(tmp_path, _url(kind, tmp_path))
    try:
        yield Server(base)
    finally:
        stop(proc)


def _until(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _closed_code(ws: ClientConnection) -> int | None:
    """Read until the server closes the socket; its close code (None: still open)."""
    try:
        while True:
            ws.recv(timeout=WAIT)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return None


def test_what_a_handler_writes_is_saved_before_its_next_message(server: Server) -> None:
    cookie = server.login(f"u-{uuid.uuid4().hex[:8]}")
    with server.socket(cookie) as ws:
        for expected in ("1", "2", "3"):
            ws.send("inc:count")
            assert ws.recv(timeout=WAIT) == expected
        # Still open: the value is in the store already, for any HTTP request to see.
        assert server.me(cookie)["data"]["count"] == 3


def test_a_write_with_no_answer_is_saved_when_the_socket_ends(server: Server) -> None:
    cookie = server.login(f"u-{uuid.uuid4().hex[:8]}")
    with server.socket(cookie) as ws:
        ws.send("set:colour=teal")
    assert _until(lambda: server.me(cookie)["data"].get("colour") == "teal")


def test_a_login_before_accept_hands_its_cookie_out_in_the_handshake(server: Server) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    with server.socket(None, f"/ws-login?user={user}") as ws:
        assert ws.recv(timeout=WAIT) == "hello"
        assert ws.response is not None
        set_cookie = ws.response.headers["set-cookie"]
    assert set_cookie.startswith("sid=") and "httponly" in set_cookie.lower()
    assert server.me(set_cookie.split(";")[0][4:])["user"] == user


def test_an_anonymous_socket_saves_nothing_and_says_why(server: Server, tmp_path: Path) -> None:
    with server.socket(None) as ws:
        ws.send("inc:n")
        assert ws.recv(timeout=WAIT) == "1"
    log = (tmp_path / "server.log").read_text()
    assert "changes made on a WebSocket after its handshake are not saved" in log


@pytest.mark.parametrize("end", ["logout", "everywhere"])
def test_a_socket_is_closed_with_1008_when_its_session_ends(server: Server, end: str) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    cookie = server.login(user)
    with server.socket(cookie) as ws:
        ws.send("user")
        assert ws.recv(timeout=WAIT) == user
        with httpx.Client(base_url=server.base, cookies={"sid": cookie}) as c:
            if end == "logout":
                assert c.post("/logout").status_code == 200
            else:
                assert c.post("/everywhere", params={"user": user}).text == "1"
        assert _closed_code(ws) == 1008
    # The socket's last look wrote nothing back: the session stays ended.
    assert server.me(cookie) == {"user": None, "data": {}}


def test_a_socket_of_another_user_stays_open(server: Server) -> None:
    mine, theirs = f"u-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    with server.socket(server.login(mine)) as ws:
        with httpx.Client(base_url=server.base) as c:
            assert c.post("/everywhere", params={"user": theirs}).status_code == 200
        time.sleep(1.0)  # three checks
        ws.send("user")
        assert ws.recv(timeout=WAIT) == mine


def test_many_sockets_of_one_user_are_all_closed_by_one_revocation(server: Server) -> None:
    """20 devices of one user, each with a socket writing its own key in a loop, while
    the user signs out everywhere: every socket is closed with 1008 and no write brings
    any session back."""
    user = f"u-{uuid.uuid4().hex[:8]}"
    cookies = [server.login(user) for _ in range(20)]
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(server.socket(c)) for c in cookies]

        def hammer(i: int) -> int | None:
            ws = sockets[i]
            try:
                for _ in range(200):
                    ws.send(f"inc:k{i}")
                    ws.recv(timeout=WAIT)
            except ConnectionClosed:
                pass
            return _closed_code(ws)

        with ThreadPoolExecutor(21) as pool:
            codes = [pool.submit(hammer, i) for i in range(20)]
            time.sleep(0.3)
            with httpx.Client(base_url=server.base) as c:
                ended = int(c.post("/everywhere", params={"user": user}).text)
            results = [f.result() for f in codes]
    assert ended == 20
    assert results == [1008] * 20
    assert all(server.me(c) == {"user": None, "data": {}} for c in cookies)


def test_parallel_sockets_of_one_session_each_keep_their_writes(server: Server) -> None:
    """Ten sockets on one session, each counting its own key to 30 at once: the
    per-key merge keeps all 300 writes."""
    cookie = server.login(f"u-{uuid.uuid4().hex[:8]}")

    def count(i: int) -> str:
        with server.socket(cookie) as ws:
            last = ""
            for _ in range(30):
                ws.send(f"inc:k{i}")
                last = ws.recv(timeout=WAIT)
            return last

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(count, range(10))) == ["30"] * 10
    data = server.me(cookie)["data"]
    assert {k: data[k] for k in data if k.startswith("k")} == {f"k{i}": 30 for i in range(10)}


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_use_keeps_a_session_alive_and_silence_ends_it(kind: str, tmp_path: Path) -> None:
    """With a 2 s idle timeout: a socket used every 0.2 s keeps its session for 4 s; a
    silent one is closed with 1008 once the session expires, and the cookie is dead."""
    base, proc = _start(tmp_path, _url(kind, tmp_path), IDLE="2", WS_CHECK="0.2")
    server = Server(base)
    try:
        busy = server.login(f"u-{uuid.uuid4().hex[:8]}")
        quiet = server.login(f"u-{uuid.uuid4().hex[:8]}")
        with server.socket(busy) as used, server.socket(quiet) as silent:
            for _ in range(20):
                used.send("inc:n")
                used.recv(timeout=WAIT)
                time.sleep(0.2)
            assert server.me(busy)["data"]["n"] == 20
            assert _closed_code(silent) == 1008
        assert server.me(quiet)["user"] is None
    finally:
        stop(proc)


def test_the_websocket_example_counts_messages_and_is_closed_by_a_sign_out(
    tmp_path: Path,
) -> None:
    """examples/websocket_app.py, as the README quotes it, under uvicorn."""
    base, proc = _start(tmp_path, _url("sqlite", tmp_path), APP="tests.ws_app:example")
    server = Server(base)
    try:
        with pytest.raises(InvalidStatus) as refused, server.socket(None, "/chat"):
            pass
        assert refused.value.response.status_code == 403
        cookie = server.login("ignored")
        with server.socket(cookie, "/chat") as ws:
            ws.send("hi")
            assert ws.recv(timeout=WAIT) == "hi (your message 1)"
            ws.send("again")
            assert ws.recv(timeout=WAIT) == "again (your message 2)"
            with httpx.Client(base_url=base, cookies={"sid": cookie}) as c:
                assert c.post("/logout-everywhere").text == "1 sessions ended"
            assert _closed_code(ws) == 1008
    finally:
        stop(proc)
