"""The ``sessionware`` command."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessionware`` console script."""
    parser = argparse.ArgumentParser(prog="sessionware", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("secret", help="print a new strong secret for SESSION_SECRET")
    args = parser.parse_args(argv)
    if args.command == "secret":
        print(secrets.token_urlsafe(48))
    return 0


if __name__ == "__main__":
    sys.exit(main())
