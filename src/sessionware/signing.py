"""HMAC-SHA256 signing with secret rotation and a salt per purpose.

The **first** secret signs and **every** secret verifies, so a new secret goes at the
front of the list and an old one is dropped once its cookies have expired (as in
express-session and Django; itsdangerous orders them the other way round).
Each purpose (``"session"``, ``"csrf"``, ``"remember"``) derives its own key, so a
value signed for one never verifies for another.

Wire format: ``<value>.<signature>`` where the signature is the 43-character
base64url (unpadded) HMAC-SHA256 of ``value`` under the derived key.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence

from sessionware.exceptions import InvalidSignatureError

__all__ = ["Signer"]

_SIG_LEN = 43


def _derive(secret: str, salt: str) -> bytes:
    return hmac.digest(secret.encode(), b"sessionware.signing." + salt.encode(), "sha256")


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Signer:
    """Sign and verify short ASCII values for one purpose."""

    __slots__ = ("_keys", "salt")

    def __init__(self, secrets: Sequence[str], *, salt: str) -> None:
        if not secrets:
            raise ValueError("Signer needs at least one secret")
        self.salt = salt
        self._keys = tuple(_derive(s, salt) for s in secrets)

    def signature(self, value: str) -> str:
        """Return the signature of ``value`` under the first (current) secret."""
        return _b64(hmac.digest(self._keys[0], value.encode(), "sha256"))

    def sign(self, value: str) -> str:
        """Return ``value.signature``."""
        return f"{value}.{self.signature(value)}"

    def unsign(self, signed: str) -> str:
        """Return the value if its full signature verifies under any secret.

        Raises :class:`InvalidSignatureError` for every kind of failure alike.
        """
        value, sep, sig = signed.rpartition(".")
        if not sep or len(sig) != _SIG_LEN or not value or not sig.isascii():
            raise InvalidSignatureError("bad signature")
        try:
            data = value.encode()
        except UnicodeEncodeError:  # a lone surrogate: no text sign() could have signed
            raise InvalidSignatureError("bad signature") from None
        sig_b = sig.encode()
        ok = False
        for key in self._keys:
            # Compare the whole MAC, never a prefix (tinyhttp GHSA-63x4-8g8c-vhww);
            # keep checking every key so timing says nothing about which matched.
            expected = base64.urlsafe_b64encode(hmac.digest(key, data, "sha256"))[:_SIG_LEN]
            ok |= hmac.compare_digest(expected, sig_b)
        if not ok:
            raise InvalidSignatureError("bad signature")
        return value

    def verify(self, value: str, signature: str) -> bool:
        """Say whether ``signature`` is valid for ``value`` under any secret."""
        try:
            self.unsign(f"{value}.{signature}")
        except InvalidSignatureError:
            return False
        return True
