"""Timeouts are required, and a cookie set to outlive its session is reported at start-up."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from sessionware import SessionConfig, SessionMiddleware
from sessionware.exceptions import ConfigurationError
from sessionware.stores import MemoryStore
from tests.helpers import SECRET


@pytest.mark.parametrize("option", ["idle_timeout", "absolute_timeout"])
def test_none_timeout_is_refused_at_start_up_with_the_fix(option: str) -> None:
    """idle_timeout=None / absolute_timeout=None fail at start-up saying what to pass."""
    with pytest.raises(ConfigurationError, match=f"{option}=timedelta"):
        SessionConfig(secrets=[SECRET], **{option: None})


def test_cookie_outliving_the_session_is_warned_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Starlette's 14-day max_age with the default 12-hour absolute timeout logs the fix."""
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        SessionMiddleware(
            None,  # type: ignore[arg-type]
            store=MemoryStore(development=True),
            secrets=[SECRET],
            max_age=14 * 86400,
        )
    warned = [r.getMessage() for r in caplog.records if "max_age" in r.getMessage()]
    assert len(warned) == 1
    assert "absolute_timeout=43200s" in warned[0] and "raise absolute_timeout" in warned[0]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_age": 3600},
        {"max_age": timedelta(days=14), "absolute_timeout": timedelta(days=14)},
    ],
)
def test_cookie_within_the_session_lifetime_is_not_warned(
    caplog: pytest.LogCaptureFixture, options: dict[str, object]
) -> None:
    """No warning when the cookie ends no later than the session (or is a browser cookie)."""
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        SessionMiddleware(
            None,  # type: ignore[arg-type]
            store=MemoryStore(development=True),
            secrets=[SECRET],
            **options,  # type: ignore[arg-type]
        )
    assert not [r for r in caplog.records if "max_age" in r.getMessage()]
    assert SessionConfig(secrets=[SECRET], **options).lifetime_warning() is None  # type: ignore[arg-type]
