"""Write ``signed_cookies.json``: test vectors for the signed session cookie.

Run once (``python -m tests.vectors.make_vectors``) and commit the JSON; afterwards the
tests check the current code against the file, so the wire format cannot drift (the
WSGI adapter and any port must agree with it). Modelled on cryptography's Fernet
vectors: each case names the secrets, the purpose (salt), the cookie value and
whether it must verify.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sessionware.signing import Signer

HERE = Path(__file__).parent
OUT = HERE / "signed_cookies.json"

SECRET_A = "vector-secret-A-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_B = "vector-secret-B-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210"
# Fixed 43-character ids, shaped like secrets.token_urlsafe(32) output.
ID_1 = "Qm9vbS1zZXNzaW9uLWlkLW9uZS0xMjM0NTY3ODkwYWI"
ID_2 = "U2Vjb25kLXNlc3Npb24taWQtdHdvLWZlZWRmYWNlMDA"


def _flip(text: str, index: int) -> str:
    """Change one character of ``text`` to another url-safe character."""
    c = text[index]
    return text[:index] + ("A" if c != "A" else "B") + text[index + 1 :]


def build() -> list[dict[str, Any]]:
    """All vectors, computed with the current code."""
    session_a = Signer([SECRET_A], salt="session")
    session_b = Signer([SECRET_B], salt="session")
    good = session_a.sign(ID_1)
    value, sig = good.split(".")
    cases: list[dict[str, Any]] = [
        {"description": "valid", "secrets": [SECRET_A], "salt": "session",
         "value": ID_1, "cookie": good, "valid": True},
        {"description": "valid, second id", "secrets": [SECRET_A], "salt": "session",
         "value": ID_2, "cookie": session_a.sign(ID_2), "valid": True},
        {"description": "valid: signed by an older secret, still in the list",
         "secrets": [SECRET_B, SECRET_A], "salt": "session",
         "value": ID_1, "cookie": good, "valid": True},
        {"description": "tampered value", "secrets": [SECRET_A], "salt": "session",
         "value": None, "cookie": f"{_flip(value, 5)}.{sig}", "valid": False},
        {"description": "tampered signature (last character)", "secrets": [SECRET_A],
         "salt": "session", "value": None, "cookie": f"{value}.{_flip(sig, -1)}",
         "valid": False},
        {"description": "truncated signature", "secrets": [SECRET_A], "salt": "session",
         "value": None, "cookie": good[:-1], "valid": False},
        {"description": "truncated value", "secrets": [SECRET_A], "salt": "session",
         "value": None, "cookie": f"{value[1:]}.{sig}", "valid": False},
        {"description": "extra trailing data", "secrets": [SECRET_A], "salt": "session",
         "value": None, "cookie": good + "tampered", "valid": False},
        {"description": "signature only", "secrets": [SECRET_A], "salt": "session",
         "value": None, "cookie": f".{sig}", "valid": False},
        {"description": "unsigned id", "secrets": [SECRET_A], "salt": "session",
         "value": None, "cookie": ID_1, "valid": False},
        {"description": "wrong secret", "secrets": [SECRET_B], "salt": "session",
         "value": None, "cookie": good, "valid": False},
        {"description": "wrong purpose (signed for csrf)", "secrets": [SECRET_A],
         "salt": "session", "value": None,
         "cookie": Signer([SECRET_A], salt="csrf").sign(ID_1), "valid": False},
        {"description": "wrong purpose (session cookie checked as remember)",
         "secrets": [SECRET_A], "salt": "remember", "value": None, "cookie": good,
         "valid": False},
        {"description": "signed by another secret for the same purpose",
         "secrets": [SECRET_A], "salt": "session", "value": None,
         "cookie": session_b.sign(ID_1), "valid": False},
    ]
    return cases


def main() -> None:
    """Write the JSON file next to this script."""
    OUT.write_text(json.dumps(build(), indent=2, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
