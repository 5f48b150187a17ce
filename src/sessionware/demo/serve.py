"""``sessionware demo``: check the settings, say what is being used, serve with uvicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from sessionware.demo.app import create_app
from sessionware.demo.settings import STATE_DIR, DemoSettings
from sessionware.stores import redact_url

__all__ = ["serve"]


def _say(line: str) -> None:
    print(f"sessionware demo: {line}", file=sys.stderr, flush=True)


def serve(*, store: str | None, host: str, port: int, tls: bool) -> int:
    """Run the reference app until interrupted; configuration errors raise before serving."""
    import uvicorn

    settings = DemoSettings.load(store=store, tls=tls)
    app = create_app(settings, host=host)  # validates every setting and opens the store
    _say(settings.secret_note)
    cfg = app.state.demo.config
    _say(f"sessions in {redact_url(settings.store_url)}, users in {settings.users_db}")
    certfile: str | None = None
    keyfile: str | None = None
    if tls:
        from sessionware.demo.tls import ensure_certificate

        cert, key, made = ensure_certificate(Path(STATE_DIR))
        certfile, keyfile = str(cert), str(key)
        _say(
            f"{'made a' if made else 'using the'} self-signed certificate {cert} for 127.0.0.1: "
            "your browser will warn once; cookies are "
            f"{cfg.session.cookie_name} and {cfg.remember.cookie_name}, Secure"
        )
        scheme = "https"
    else:
        _say(
            "plain http for local development: using the unprefixed cookie names "
            f"{cfg.session.cookie_name!r} and {cfg.remember.cookie_name!r} without Secure "
            "(browsers refuse __Host- cookies over http); run with --tls to see the "
            "production set-up"
        )
        scheme = "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only compared
    _say(f"open {scheme}://{shown}:{port}/ (Ctrl+C to stop)")
    # Show the library's security events (sign-ins, revocations, refused CSRF posts):
    # they name users and short hashes, never ids, tokens or passwords.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)-9s %(name)s: %(message)s"))
    library = logging.getLogger("sessionware")
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,
        server_header=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    return 0
