"""Transitional: the allowed-hosts check moved to :mod:`sessionware.csrf.host`.

Kept only until ``demo/config.py`` imports ``AllowedHosts`` from there; then deleted.
"""

from __future__ import annotations

from sessionware.csrf.host import AllowedHosts

__all__ = ["AllowedHosts"]
