"""The reference app: every part of sessionware working, served by ``sessionware demo``.

``create_app(DemoSettings.load())`` builds it; see :mod:`sessionware.demo.app`.
"""

from __future__ import annotations

from sessionware.demo.app import create_app
from sessionware.demo.settings import DemoSettings

__all__ = ["DemoSettings", "create_app"]
