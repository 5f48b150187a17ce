"""Security events an app can subscribe to: logins, failures, lockouts, revocations.

The app builds one :class:`Events`, subscribes handlers to event names and passes it
in (``SessionMiddleware(..., events=events)``, or ``SESSIONWARE_EVENTS`` for Flask):
there is no global registry. Every event is also a line on the ``sessionware.security``
logger, subscribed or not. An :class:`Event` carries the user id, the session's public
device handle, the client address and a reason; never a session id, a token or a
store key, so a handler may forward it anywhere.

A handler is a plain function or a coroutine function taking the :class:`Event`. Its
exception is logged and goes no further: an audit sink that is down never breaks a
login. Under an async (ASGI) app an async handler runs as a task on the running loop,
so the request does not wait for it (:meth:`Events.drain` waits, for tests and
shutdown); in sync (WSGI, Flask) code, where no loop runs, it runs to completion on a
fresh loop before the request goes on, so prefer plain functions there.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, get_args

from sessionware.exceptions import ConfigurationError

__all__ = ["EVENT_NAMES", "Event", "EventName", "Events", "Handler"]

EventName: TypeAlias = Literal[
    "session_created",
    "session_destroyed",
    "session_revoked",
    "login",
    "login_failed",
    "logout",
    "throttled",
    "remember_restored",
    "remember_theft",
    "password_changed",
    "csrf_refused",
]
EVENT_NAMES: frozenset[str] = frozenset(get_args(EventName))

#: What a handler is: a plain or an async function of one :class:`Event`.
Handler: TypeAlias = Callable[["Event"], "Awaitable[None] | None"]

security_log = logging.getLogger("sessionware.security")

#: Events an attacker is behind more often than a user; the others log at INFO, the
#: session lifecycle ones (one per new visitor) at DEBUG.
_WARN = frozenset({"login_failed", "throttled", "remember_theft", "csrf_refused"})
_DEBUG = frozenset({"session_created", "session_destroyed"})


@dataclass(frozen=True, slots=True)
class Event:
    """One security event: what happened, to whom, from where, why and when.

    ``handle`` is the session's public device handle (what the device list shows and
    ``revoke()`` takes), never its id. Fields the library cannot know are None.
    """

    name: EventName
    user_id: str | None
    handle: str | None
    client: str | None
    reason: str | None
    time: float


class Events:
    """The app's subscribers, by event name; passed to the session middleware.

    ``Events({"login": audit})`` or ``@events.on("login")``. Names are checked when
    subscribing, so a typo fails at start-up.
    """

    __slots__ = ("_handlers", "_tasks", "clock")

    def __init__(
        self,
        handlers: Mapping[str, Handler | Iterable[Handler]] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.clock = clock
        for name, given in (handlers or {}).items():
            for handler in [given] if callable(given) else list(given):
                self.subscribe(name, handler)

    def subscribe(self, name: str, handler: Handler) -> None:
        """Call ``handler`` on every event called ``name`` (``"*"``: every event)."""
        if name != "*" and name not in EVENT_NAMES:
            raise ConfigurationError(
                f"no event is called {name!r}: use one of {', '.join(sorted(EVENT_NAMES))} "
                "or '*' for all"
            )
        if not callable(handler):
            raise ConfigurationError(f"the handler for {name!r} must be a function of one Event")
        self._handlers.setdefault(name, []).append(handler)

    def on(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`subscribe`."""

        def register(handler: Handler) -> Handler:
            self.subscribe(name, handler)
            return handler

        return register

    def emit(
        self,
        name: EventName,
        *,
        user_id: str | None = None,
        handle: str | None = None,
        client: str | None = None,
        reason: str | None = None,
        logged: bool = False,
    ) -> Event:
        """Build the event, log it on ``sessionware.security`` (unless the caller ``logged``
        a richer line of its own) and hand it to its handlers."""
        event = Event(name, user_id, handle, client, reason, self.clock())
        if not logged:
            log(event)
        for handler in (*self._handlers.get(name, ()), *self._handlers.get("*", ())):
            self._call(handler, event)
        return event

    def _call(self, handler: Handler, event: Event) -> None:
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                self._await(result, event)
        except Exception:
            _failed(event)

    def _await(self, result: Awaitable[None], event: Event) -> None:
        async def run() -> None:
            try:
                await result
            except Exception:
                _failed(event)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # sync code: no loop to leave it on
            asyncio.run(run())
            return
        task = loop.create_task(run())
        self._tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the async handlers still running (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks)


def _failed(event: Event) -> None:
    security_log.exception("an event handler for %s failed (the request went on)", event.name)


def log(event: Event) -> None:
    """The ``sessionware.security`` line of ``event``: no handle, no id, no token."""
    level = (
        logging.WARNING
        if event.name in _WARN
        else logging.DEBUG
        if event.name in _DEBUG
        else logging.INFO
    )
    if security_log.isEnabledFor(level):
        security_log.log(
            level,
            "%s user=%s client=%s reason=%s",
            event.name,
            event.user_id or "-",
            event.client or "-",
            event.reason or "-",
        )


def emit(
    events: Events | None,
    name: EventName,
    *,
    user_id: str | None = None,
    handle: str | None = None,
    client: str | None = None,
    reason: str | None = None,
    logged: bool = False,
) -> None:
    """Emit through the app's ``events``, or only log when it subscribed none."""
    if events is not None:
        events.emit(
            name, user_id=user_id, handle=handle, client=client, reason=reason, logged=logged
        )
    elif not logged:
        log(Event(name, user_id, handle, client, reason, time.time()))


def of(obj: Any) -> Events | None:
    """The ``events`` of a session or a config (None when it has none)."""
    config = getattr(obj, "config", obj)
    found: Events | None = getattr(config, "events", None)
    return found


#: How to read whose a session is (user id, device handle, client address): the auth
#: layer appends its reader, as it appends to ``session.ON_END`` (the core and the CSRF
#: check sit below auth and do not import it).
WHO: list[Callable[[Any], tuple[str | None, str | None, str | None]]] = []


def who(session: Any) -> tuple[str | None, str | None, str | None]:
    """``(user id, handle, client address)`` recorded in ``session`` at login, or Nones."""
    return WHO[-1](session) if WHO else (None, None, None)


def lifecycle(events: Events | None, name: EventName, session: Any, reason: str) -> None:
    """Emit ``session_created`` / ``session_destroyed`` for ``session`` (the core's call).

    A session stored under a new id (login, ``regenerate()``) is created with the reason
    ``"new id"``: its old record went without a ``session_destroyed``. With nobody
    subscribed this costs one level check: the line is at DEBUG, one per visitor.
    """
    if events is None and not security_log.isEnabledFor(logging.DEBUG):
        return
    if name == "session_created" and getattr(session, "regenerated", False):
        reason = "new id"
    user, handle, client = who(session)
    emit(events, name, user_id=user, handle=handle, client=client, reason=reason)
