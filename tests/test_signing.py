"""signing.py: HMAC-SHA256 signing with rotation and purpose salts, pinned by vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sessionware.exceptions import InvalidSignatureError
from sessionware.signing import Signer
from tests.vectors import make_vectors

OLD = "old-secret-" + "o" * 40
NEW = "new-secret-" + "n" * 40
OTHER = "other-secret-" + "x" * 40
VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "signed_cookies.json").read_text()
)


def test_first_secret_signs() -> None:
    """With several secrets, the first one makes the signature."""
    both = Signer([NEW, OLD], salt="session")
    assert both.sign("value") == Signer([NEW], salt="session").sign("value")
    assert both.sign("value") != Signer([OLD], salt="session").sign("value")


def test_every_secret_verifies() -> None:
    """A value signed under any secret in the list verifies after rotation."""
    rotated = Signer([NEW, OLD], salt="session")
    assert rotated.unsign(Signer([OLD], salt="session").sign("v")) == "v"
    assert rotated.unsign(Signer([NEW], salt="session").sign("v")) == "v"


def test_dropped_secret_no_longer_verifies() -> None:
    """Once a secret leaves the list, what it signed is refused."""
    signed = Signer([OLD], salt="session").sign("v")
    with pytest.raises(InvalidSignatureError):
        Signer([NEW], salt="session").unsign(signed)


@pytest.mark.parametrize(("signer_salt", "checker_salt"), [
    ("session", "csrf"), ("csrf", "session"), ("session", "remember"), ("remember", "csrf"),
])
def test_purpose_salts_do_not_cross(signer_salt: str, checker_salt: str) -> None:
    """A value signed for one purpose never verifies for another, under the same secret."""
    signed = Signer([NEW], salt=signer_salt).sign("v")
    with pytest.raises(InvalidSignatureError):
        Signer([NEW], salt=checker_salt).unsign(signed)


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda s: s[:-1], id="truncated"),
    pytest.param(lambda s: s[:-10], id="truncated-more"),
    pytest.param(lambda s: s + "x", id="extra-char"),
    pytest.param(lambda s: s + ".x", id="extra-part"),
    pytest.param(lambda s: s + "tampered", id="extra-word"),
    pytest.param(lambda s: "X" + s[1:], id="value-changed"),
    pytest.param(lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"), id="sig-last-char"),
    pytest.param(lambda s: s.split(".")[0], id="unsigned"),
    pytest.param(lambda s: "." + s.split(".")[1], id="no-value"),
    pytest.param(lambda s: s.replace(".", ""), id="no-dot"),
    pytest.param(lambda s: "", id="empty"),
    pytest.param(lambda s: s[:-1] + "é", id="non-ascii"),
    pytest.param(lambda s: "\ud800" + s, id="lone-surrogate-in-value"),
    pytest.param(lambda s: s.split(".")[0] + "." + "\udc80" * 43, id="lone-surrogate-sig"),
])
def test_tampered_values_are_refused(mangle: Any) -> None:
    """Any change to a signed value (tampered, truncated, extra data) raises the one error."""
    signer = Signer([NEW], salt="session")
    signed = signer.sign("some-session-id")
    with pytest.raises(InvalidSignatureError):
        signer.unsign(mangle(signed))


def test_wrong_secret_is_refused() -> None:
    """A value signed under a secret not in the list is refused."""
    with pytest.raises(InvalidSignatureError):
        Signer([NEW], salt="session").unsign(Signer([OTHER], salt="session").sign("v"))


def test_error_message_carries_no_input() -> None:
    """The error says only "bad signature", never the value it was given."""
    with pytest.raises(InvalidSignatureError) as info:
        Signer([NEW], salt="session").unsign("secret-session-id.notasignature")
    assert "secret-session-id" not in str(info.value)


def test_verify_says_yes_or_no() -> None:
    """verify() is the boolean form of unsign()."""
    signer = Signer([NEW], salt="csrf")
    assert signer.verify("v", signer.signature("v"))
    assert not signer.verify("w", signer.signature("v"))


def test_values_with_dots_round_trip() -> None:
    """The signature splits at the last dot, so values may contain dots."""
    signer = Signer([NEW], salt="session")
    assert signer.unsign(signer.sign("a.b.c")) == "a.b.c"


def test_signer_needs_a_secret() -> None:
    """A Signer with no secret is refused."""
    with pytest.raises(ValueError):
        Signer([], salt="session")


@pytest.mark.parametrize("case", VECTORS, ids=[c["description"] for c in VECTORS])
def test_vectors(case: dict[str, Any]) -> None:
    """The current code agrees with every stored vector for the signed cookie format."""
    signer = Signer(case["secrets"], salt=case["salt"])
    if case["valid"]:
        assert signer.unsign(case["cookie"]) == case["value"]
    else:
        with pytest.raises(InvalidSignatureError):
            signer.unsign(case["cookie"])


def test_vectors_are_what_the_generator_makes() -> None:
    """Regenerating the vectors with the current code gives exactly the stored file."""
    assert make_vectors.build() == VECTORS


def test_vectors_cover_every_failure_kind() -> None:
    """The vector file has valid, tampered, truncated, wrong-secret and wrong-purpose cases."""
    kinds = " ".join(c["description"] for c in VECTORS)
    for word in ("valid", "tampered", "truncated", "wrong secret", "wrong purpose"):
        assert word in kinds
