"""Flask's ``flash`` and ``get_flashed_messages``, kept safe under parallel requests.

Flask keeps flashes as one list in the session, so two requests flashing at once keep
only one message. These have Flask's signatures and store each message on its own
(:mod:`sessionware.flash`). The extension makes the templates' ``get_flashed_messages``
this one; it also shows what ``flask.flash`` queued, so code not yet moved over loses
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import request, session

from sessionware import flash as _flash
from sessionware.request import RequestView
from sessionware.wsgi import WsgiView

__all__ = ["flash", "get_flashed_messages"]


def current_view() -> RequestView:
    """The view of the Flask request being served (the extension's, without importing it)."""
    return WsgiView(request.environ)

_STATE = "sessionware.flask_flashes"


def flash(message: str, category: str = "message") -> None:
    """Keep ``message`` for the next page (Flask's signature)."""
    _flash.flash(current_view(), message, category)


def get_flashed_messages(
    with_categories: bool = False, category_filter: Iterable[str] = ()
) -> list[Any]:
    """The waiting messages, oldest first, taken once per request (Flask's signature)."""
    view = current_view()
    if _STATE not in view.state:
        # flask.flash's own list, after ours: messages queued before the move are not lost.
        legacy = session.pop("_flashes", None) if "_flashes" in session else None
        for pair in legacy or ():
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                _flash.flash(view, str(pair[1]), str(pair[0]))
        view.state[_STATE] = True
    return _flash.get_flashed_messages(
        view, with_categories=with_categories, category_filter=category_filter
    )
