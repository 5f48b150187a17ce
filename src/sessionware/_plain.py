"""A short plain-text ASGI response, for the answers the middlewares give themselves."""

from __future__ import annotations

from starlette.types import Send


async def send_plain(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    """Send ``body`` as an uncacheable ``text/plain`` response (503, 403...)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
