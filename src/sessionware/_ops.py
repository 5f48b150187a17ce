"""Operations written once, performed by a synchronous or an asynchronous driver.

An *operation* is a generator: it yields each request it needs performed (a SQL
statement, a Redis command, a store call) and receives the reply, then returns its
result. It does no I/O itself, so the same operation runs under ``await`` in an ASGI
app and under plain calls in a WSGI app; only the small ``perform`` function that
turns one request into I/O differs. This is the shape of httpx's auth flows and of
h11: the logic is a state machine, the caller owns the socket.

A failure of ``perform`` is thrown into the operation at its ``yield``, so an
operation can react to it (the core retries ``create`` on a key collision) or let
it propagate. A cancellation is not offered to the operation: it is closed at once
(its ``finally`` blocks run) and the cancellation goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeAlias, TypeVar

__all__ = ["Op", "adrive", "drive", "immediate"]

T = TypeVar("T")

#: An operation returning ``T``: yields requests, receives replies.
Op: TypeAlias = Generator[Any, Any, T]


def drive(op: Op[T], perform: Callable[[Any], Any]) -> T:
    """Run ``op`` to its end, performing each request with a plain call."""
    try:
        request = op.send(None)
        while True:
            try:
                reply = perform(request)
            except Exception as exc:  # handed to the operation, which decides
                request = op.throw(exc)
            else:
                request = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    except BaseException:
        op.close()  # cancelled (or a driver bug): run the operation's finally blocks now
        raise


async def adrive(op: Op[T], perform: Callable[[Any], Awaitable[Any]]) -> T:
    """Run ``op`` to its end, awaiting each request."""
    try:
        request = op.send(None)
        while True:
            try:
                reply = await perform(request)
            except Exception as exc:  # handed to the operation, which decides
                request = op.throw(exc)
            else:
                request = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    except BaseException:
        op.close()  # cancelled (or a driver bug): run the operation's finally blocks now
        raise


def immediate(value: T) -> Op[T]:
    """An operation that needs no I/O and returns ``value`` (the memory store's kind)."""
    return value
    yield  # unreachable: makes this function a generator
