"""Flash messages: a note for the next page ("Saved.", "That password is not right").

``flash(request, message, category)`` keeps a message in the session until a page
shows it with :func:`get_flashed_messages`. Both take the framework's request (or a
:class:`~sessionware.request.RequestView`), so they work alike in Starlette, FastAPI
and Flask, sync and async, and in Jinja through :func:`install_jinja`.

Each message is its own metadata field of the session (``f.<time><random>``), never a
list under one key: sessions merge parallel writes per field, so two requests that
flash at once both land, where a shared list would keep the last writer's only (the
lost flash of Flask's and connect-flash's list). Showing a message deletes just the
fields it showed, so a message flashed by a parallel request meanwhile stays for the
next page instead of vanishing. Two pages loaded at the very same instant can both
show a message that was waiting, as in every framework: each read what was there.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from sessionware.auth._view import RequestLike, as_view, base_session
from sessionware.session import loads

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from jinja2 import Environment

__all__ = ["flash", "get_flashed_messages", "install_jinja"]

_PREFIX = "f."
_TAKEN = "sessionware.flashes"  # this request's messages, once read (the view's state)
#: Longest message kept, in characters: a flash is a sentence, not a payload.
MAX_MESSAGE = 1000


def flash(request: RequestLike, message: str, category: str = "message") -> None:
    """Keep ``message`` for the next page that shows messages (``category``: e.g.
    ``"error"``, ``"info"``; templates style by it)."""
    if not isinstance(message, str) or not isinstance(category, str):
        raise TypeError("flash(request, message, category) takes text")
    if len(message) > MAX_MESSAGE or len(category) > 64:
        raise ValueError(f"a flash message is at most {MAX_MESSAGE} characters")
    session = base_session(as_view(request))
    # Time first, so names sort in the order messages were flashed, across requests.
    name = f"{_PREFIX}{time.time_ns() // 1000:014x}{secrets.token_hex(4)}"
    session.set_meta(name, json.dumps([category, message], ensure_ascii=False))


def get_flashed_messages(
    request: RequestLike,
    *,
    with_categories: bool = False,
    category_filter: Iterable[str] = (),
) -> list[Any]:
    """The waiting messages, oldest first, now taken from the session.

    ``with_categories=True`` gives ``(category, message)`` pairs; ``category_filter``
    keeps only those categories. As in Flask, the messages are taken once per request:
    later calls in the same request (a template that shows errors and notices apart)
    see the same list, and the next request sees none of them.
    """
    view = as_view(request)
    taken: list[tuple[str, str]] | None = view.state.get(_TAKEN)
    session = base_session(view)
    if taken is None:
        taken = []
        view.state[_TAKEN] = taken
    for name in session.meta_names(_PREFIX):
        pair = _decode(session.get_meta(name))
        session.set_meta(name, None)
        if pair is not None:
            taken.append(pair)
    wanted = set(category_filter)
    chosen: Sequence[tuple[str, str]] = [p for p in taken if p[0] in wanted] if wanted else taken
    if with_categories:
        return list(chosen)
    return [message for _, message in chosen]


def _decode(text: str | None) -> tuple[str, str] | None:
    try:
        value = loads(text) if text is not None else None
    except ValueError:
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    return None


def install_jinja(env: Environment) -> None:
    """Add ``get_flashed_messages(request, ...)`` as a Jinja2 global."""
    env.globals["get_flashed_messages"] = get_flashed_messages
