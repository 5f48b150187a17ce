"""Write ``csrf_tokens.json``: test vectors for both CSRF token formats.

Run ``python tests/vectors/make_csrf_vectors.py`` from the repository root after a
deliberate format change; ``tests/test_csrf.py`` checks the file still matches what
this script builds, so an accidental change fails. Every input (secrets, masks,
nonces, times) is fixed here, nothing is random.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from sessionware.csrf.token import ANON_SALT, issue_anonymous, mask
from sessionware.signing import Signer

OUT = Path(__file__).with_name("csrf_tokens.json")

SECRETS = ["vector-secret-current-0123456789abcdef", "vector-secret-previous-0123456789abcdef"]
RETIRED = "vector-secret-retired-0123456789abcdefgh"
NOW = 1_700_000_000
MAX_AGE = 7200
SESSION_SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(100, 132))
PAD_1 = bytes(range(200, 232))
PAD_2 = b"\x5a" * 32
NONCE = "AAAAAAAAAAAAAAAA"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _flip(token: str, at: int) -> str:
    """Change one character (to another base64url character) at position ``at``."""
    swap = "B" if token[at] != "B" else "C"
    return token[:at] + swap + token[at + 1 :]


def build() -> dict[str, Any]:
    """Every vector, as the JSON document."""
    stored = _b64(SESSION_SECRET)
    token = mask(SESSION_SECRET, PAD_1)
    anon_signer = Signer(SECRETS, salt=ANON_SALT)
    anon = issue_anonymous(anon_signer, NOW, NONCE)
    old = issue_anonymous(Signer(SECRETS[1:], salt=ANON_SALT), NOW, NONCE)
    retired = issue_anonymous(Signer([RETIRED], salt=ANON_SALT), NOW, NONCE)
    payload = f"{NOW}.{NONCE}"

    def session(name: str, tok: str, valid: bool, secret: str = stored) -> dict[str, Any]:
        return {"name": name, "kind": "session", "secret": secret, "token": tok, "valid": valid}

    def anonymous(name: str, tok: str, valid: bool, now: int = NOW + 60) -> dict[str, Any]:
        return {"name": name, "kind": "anonymous", "token": tok, "now": now, "valid": valid}

    cases = [
        session("valid", token, True),
        session("valid, second render with another mask", mask(SESSION_SECRET, PAD_2), True),
        session("tampered", _flip(token, 40), False),
        session("tampered spare bits of the last character", _flip(token, 85), False),
        session("truncated", token[:-2], False),
        session("padded", token + "==", False),
        session("from another session", mask(OTHER_SECRET, PAD_1), False),
        session("secret kept malformed in the session", token, False, secret=stored[:-1]),
        session("wrong purpose: an anonymous token", anon, False),
        session("wrong purpose: a signed session cookie", Signer(SECRETS, salt="session").sign(
            "A" * 43), False),
        anonymous("valid", anon, True),
        anonymous("valid, signed with the previous secret", old, True),
        anonymous("signed with a retired secret", retired, False),
        anonymous("tampered signature", _flip(anon, len(anon) - 5), False),
        anonymous("tampered time", anon.replace(str(NOW), str(NOW + 1), 1), False),
        anonymous("truncated", anon[:-1], False),
        anonymous("expired", anon, False, now=NOW + MAX_AGE + 1),
        anonymous("at the end of its life", anon, True, now=NOW + MAX_AGE),
        anonymous("from the future", anon, False, now=NOW - 3600),
        anonymous("wrong purpose: signed for the session cookie",
                  Signer(SECRETS, salt="session").sign(payload), False),
        anonymous("wrong purpose: signed with the csrf salt",
                  Signer(SECRETS, salt="csrf").sign(payload), False),
        anonymous("wrong purpose: a session token", token, False),
    ]
    return {
        "description": (
            "sessionware CSRF tokens. kind=session: token = base64url(mask || mask XOR "
            "secret), secret is the session's base64url 32-byte secret. kind=anonymous: "
            "token = '<issued>.<nonce>.<HMAC-SHA256 signature>' signed by sessionware.signing "
            "with salt 'csrf-anon' under 'secrets' (first signs, all verify), valid for "
            "max_age seconds at 'now'."
        ),
        "secrets": SECRETS,
        "max_age": MAX_AGE,
        "cases": cases,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT.name}")
