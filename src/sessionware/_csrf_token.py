"""Transitional: the CSRF token formats moved to :mod:`sessionware.csrf.token`.

Kept only until ``auth/login.py`` imports ``new_secret`` from there; then deleted.
"""

from __future__ import annotations

from sessionware.csrf.token import new_secret

__all__ = ["new_secret"]
