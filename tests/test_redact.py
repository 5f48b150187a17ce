"""Store URLs never show their passwords: ``redact_url`` itself, the errors of
``from_url``, the ``sessionware`` command's output and the demo's start-up notes."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from sessionware.cli import main
from sessionware.exceptions import ConfigurationError
from sessionware.stores import from_url, redact_url

PW = "hunter2pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{PW}@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
        (f"rediss://app:{PW}@cache:6380/1?prefix=a:", "rediss://app:***@cache:6380/1?prefix=a:"),
        (
            f"redis+sentinel://:{PW}@s1:26379,s2/mymaster/0",
            "redis+sentinel://:***@s1:26379,s2/mymaster/0",
        ),
        (f"postgresql://app:{PW}@db:5432/sessions", "postgresql://app:***@db:5432/sessions"),
        (
            f"postgresql://app@db/s?sslmode=require&password={PW}",
            "postgresql://app@db/s?sslmode=require&password=***",
        ),
        (f"redis://h/0?PassWord={PW}&db=1", "redis://h/0?PassWord=***&db=1"),
        (f"postgresql://db/s?sslpassword={PW}", "postgresql://db/s?sslpassword=***"),
        (f"redis://:pa/ss?wo#rd{PW}@h:6379/0", "redis://:***@h:6379/0"),
        (f"host=db dbname=s password={PW} user=app", "host=db dbname=s password=*** user=app"),
        (f"host=db password='{PW} x\\'y' user=app", "host=db password=*** user=app"),
    ],
)
def test_redact_url_masks_every_password(url: str, shown: str) -> None:
    """Passwords in the userinfo, in query parameters and in conninfo strings become ***."""
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?prefix=app:",
        "postgresql://app@db:5432/sessions",
        "sqlite:///var/lib/app/sessions.db",
        "memory://",
        "redis+cluster://h1:7000,h2:7001",
    ],
)
def test_redact_url_keeps_urls_without_a_password(url: str) -> None:
    """A URL with nothing secret comes back unchanged, user names and prefixes included."""
    assert redact_url(url) == url


BAD_URLS = [
    f"redis://:{PW}/x@127.0.0.1:6379/0",
    f"redis://u:{PW[:3]}#{PW[3:]}@h/0",
    f"redis://:{PW}@127.0.0.1:port/0",
    f"redis://:{PW}@[::1/0",
    f"redis://:{PW}@127.0.0.1/0?socket_timeout={PW}",
    f"redis+sentinel://:{PW}@h:x/m",
    f"redis+cluster://:{PW}@h/1",
    f"postgresql://u:{PW}@h:5432:9/db x=y z",
    f"mongodb://u:{PW}@h/db",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_from_url_errors_never_quote_the_password(url: str) -> None:
    """A malformed URL is a ConfigurationError whose message holds no piece of the password."""
    with pytest.raises(ConfigurationError) as info:
        from_url(url)
    message = str(info.value)
    assert PW not in message and PW[:3] not in message and PW[3:] not in message


@pytest.fixture
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run in an empty folder with no SESSION_* variables."""
    for var in ("SESSION_SECRET", "SESSION_STORE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("_in_tmp")
@pytest.mark.parametrize(
    ("url", "code"),
    [
        *((u, 2) for u in BAD_URLS),
        (f"redis://:{PW}@127.0.0.1:1/0", 1),
        (f"postgresql://postgres:{PW}@127.0.0.1:1/test?connect_timeout=1", 1),
        (f"redis://nobody:{PW}@127.0.0.1:6379/0", 1),
    ],
)
def test_cli_output_never_shows_the_password(
    url: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sessions list` and `revoke` with a bad, unreachable or refused URL exit with a code
    and one message, never a traceback, and the password appears nowhere."""
    assert main(["sessions", "list", "--user", "1", "--store", url]) == code
    assert main(["sessions", "revoke", "--user", "1", "--all", "--store", url]) == code
    out = capsys.readouterr()
    assert PW not in out.out + out.err
    assert PW[:3] not in out.err and "Traceback" not in out.err
    assert out.err.count("sessionware ") == 2


@pytest.mark.usefixtures("_in_tmp")
def test_demo_start_up_shows_the_store_url_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sessionware demo` names its Redis store with the password masked."""
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    # serve() points the library's logger at stderr: put it back afterwards.
    library = logging.getLogger("sessionware")
    monkeypatch.setattr(library, "handlers", list(library.handlers))
    monkeypatch.setattr(library, "propagate", library.propagate)
    monkeypatch.setattr(library, "level", library.level)
    url = f"redis://:{PW}@127.0.0.1:6379/0?prefix=swtredact{uuid.uuid4().hex[:6]}:"
    assert main(["demo", "--store", url]) == 0
    err = capsys.readouterr().err
    assert len(served) == 1
    assert "sessions in redis://:***@127.0.0.1:6379/0?prefix=swtredact" in err
    assert PW not in err
