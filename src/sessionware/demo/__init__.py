"""The reference app: every part of sessionware working, served by ``sessionware demo``.

``create_app(DemoSettings.load())`` builds it; see :mod:`sessionware.demo.app`. The
same contract on Flask is :mod:`sessionware.demo.flask_app` (``--framework flask``).
"""

from __future__ import annotations

from sessionware.demo.app import create_app
from sessionware.demo.settings import DemoSettings

__all__ = ["DemoSettings", "create_app"]
