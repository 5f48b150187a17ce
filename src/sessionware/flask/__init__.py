"""sessionware for Flask: ``Sessionware(app)`` makes ``flask.session`` a server-side
sessionware session; login, remember-me, the throttle and CSRF come from the same
neutral layers as on the ASGI side, run with plain calls.

Modules: ``extension`` (the extension and Flask's session interface).
"""

from __future__ import annotations

from sessionware.flask.extension import FlaskSession, Sessionware, current_view, extension

__all__ = ["FlaskSession", "Sessionware", "current_view", "extension"]
