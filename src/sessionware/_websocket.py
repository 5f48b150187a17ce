"""WebSocket sessions for the ASGI adapter.

A WebSocket outlives the request that opened it, so the HTTP rule "write when the
response starts" does not fit. Here:

- at ``websocket.accept`` the session is finished as a response would be (a login
  before accepting gets its cookie in the handshake's ``Set-Cookie``);
- afterwards, what the handler writes is saved before its next message goes out,
  at each check, and when the handler returns (not when it raised: half-done work
  is not saved, as a 5xx saves nothing);
- every ``websocket_check_interval`` seconds a watcher looks at the stored record:
  it refreshes the idle expiry when the socket was used, and closes the socket with
  code 1008 once the session was revoked, destroyed or expired.

No cookie can be set after the handshake, so a session with no stored record then
(anonymous, or regenerated on the socket) cannot be saved: that is logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from sessionware.exceptions import StoreUnavailableError
from sessionware.session import Session

if TYPE_CHECKING:
    from sessionware.core import OutageLog, SessionCore

__all__ = ["CLOSE_SESSION_ENDED", "serve_websocket"]

log = logging.getLogger("sessionware")
security_log = logging.getLogger("sessionware.security")

#: The close code of a socket whose session ended (RFC 6455: policy violation).
CLOSE_SESSION_ENDED = 1008
_CLOSE_STORE_DOWN = 1011
_warned: set[int] = set()


class _Socket:
    """One connection's state, shared by the app's send/receive and the watcher."""

    __slots__ = ("accepted", "active", "closed", "core", "lock", "outage", "send", "session")

    def __init__(self, core: SessionCore, session: Session, send: Send, outage: OutageLog):
        self.core = core
        self.session = session
        self.send = send
        self.outage = outage
        self.accepted = False
        self.closed = False
        self.active = False
        self.lock = asyncio.Lock()

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):  # the client may be gone already
            await self.send({"type": "websocket.close", "code": code, "reason": reason})

    async def end(self) -> None:
        """Close the socket of a session that was revoked, logged out or expired."""
        if not self.closed:
            security_log.info("websocket closed: its session was revoked or expired")
        await self.close(CLOSE_SESSION_ENDED, "session ended")

    async def save(self) -> bool:
        """Store what the handler changed since the last save (nothing if unchanged);
        False when the stored session turned out to be gone (revoked or expired)."""
        session = self.session
        if session.unchanged():
            return True
        if session.is_new:
            if not (session.destroyed or session.vanished) and id(self.core) not in _warned:
                _warned.add(id(self.core))
                log.warning(
                    "session changes made on a WebSocket after its handshake are not saved: "
                    "the session has no stored record, and only the handshake can set the "
                    "cookie of a new one. Log in over HTTP, or before websocket.accept()"
                )
            return not session.vanished
        async with self.lock:
            await self.core.arun(self.core.write(session))
        return not session.vanished

    async def look(self) -> bool:
        """Save, then ask the store whether the session is still live."""
        if not await self.save():
            return False
        if self.session.is_new:
            return True  # destroyed by the handler itself: nothing stored to watch
        async with self.lock:
            active, self.active = self.active, False
            return await self.core.arun(self.core.watch(self.session, active))


def _interval(core: SessionCore) -> float:
    interval = float(core.config.websocket_check_interval)  # type: ignore[arg-type]
    if core.config.rotate_every is not None:
        # Follow a rotation while the old id's pointer still lives.
        interval = min(interval, float(core.config.rotate_grace) / 2)  # type: ignore[arg-type]
    return interval


async def _watch(sock: _Socket) -> None:
    interval = _interval(sock.core)
    while not sock.closed:
        await asyncio.sleep(interval)
        try:
            live = await sock.look()
        except StoreUnavailableError as exc:
            sock.outage(exc)  # keep the socket: the next look may reach the store
            continue
        except Exception:
            log.exception("the WebSocket session check failed; this socket is no longer watched")
            return
        if not live:
            await sock.end()
            return


async def serve_websocket(
    app: ASGIApp,
    core: SessionCore,
    outage: OutageLog,
    scope: Scope,
    session: Session,
    receive: Receive,
    send: Send,
) -> None:
    """Run a WebSocket app with its session saved, refreshed and watched."""
    sock = _Socket(core, session, send, outage)
    watcher: asyncio.Task[None] | None = None

    async def receive_wrapper() -> Message:
        if sock.closed:
            return {"type": "websocket.disconnect", "code": CLOSE_SESSION_ENDED}
        message = await receive()
        if message["type"] == "websocket.receive":
            sock.active = True
        return message

    async def send_wrapper(message: Message) -> None:
        nonlocal watcher
        kind = message["type"]
        if sock.closed:
            if kind == "websocket.close":
                return
            raise WebSocketDisconnect(CLOSE_SESSION_ENDED, "session ended")
        try:
            if kind == "websocket.accept" and not sock.accepted:
                sock.accepted = True
                headers = list(message.get("headers", ()))
                finish = core.finish(session, 200, scope["headers"], scope.get("scheme", "ws"))
                for value in await core.arun(finish):
                    headers.append((b"set-cookie", value.encode("latin-1")))
                message = {**message, "headers": headers}
                await send(message)
                if not session.is_new:
                    watcher = asyncio.create_task(_watch(sock))
                return
            if kind == "websocket.send":
                sock.active = True
            if not await sock.save():
                await sock.end()
                raise WebSocketDisconnect(CLOSE_SESSION_ENDED, "session ended")
        except StoreUnavailableError as exc:
            outage(exc)
            await sock.close(_CLOSE_STORE_DOWN, "session store unavailable")
            raise WebSocketDisconnect(_CLOSE_STORE_DOWN, "session store unavailable") from None
        await send(message)

    try:
        await app(scope, receive_wrapper, send_wrapper)
        if not sock.closed:
            try:
                await sock.save()
            except StoreUnavailableError as exc:
                outage(exc)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
