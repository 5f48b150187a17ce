"""Signed and masked tokens: nothing but a token this app made verifies. Real tokens
mutated (any one character changed, bits flipped, cut, extended, spliced, joined to
another, made under another salt or a retired or unknown secret) never verify, and no
input, lone surrogates included, raises anything but the documented error."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from sessionware.auth import _device_cookie as device
from sessionware.auth.series import read_token
from sessionware.config import SessionConfig
from sessionware.cookies import cookie_values
from sessionware.core import SessionCore
from sessionware.csrf import token as csrf
from sessionware.exceptions import InvalidSignatureError
from sessionware.session import Session
from sessionware.signing import Signer
from sessionware.stores import MemoryStore
from sessionware.tokens import (
    is_valid_handle,
    is_valid_id,
    new_handle,
    new_session_id,
    new_split_token,
    parse_split_token,
)
from tests.fuzz.conftest import FUZZ
from tests.test_auth_support import HandView

CURRENT, OLD, STRANGER = "a" * 40, "b" * 40, "c" * 40
SIGNER = Signer([CURRENT, OLD], salt="session")

#: Any text a str can hold, lone surrogates included (what a badly decoded header or a
#: command-line argument may carry); plain ``st.text()`` never draws those.
any_char = st.characters(exclude_categories=())
any_text = st.text(alphabet=any_char, max_size=300)
#: Every character a header can carry (ASCII headers are read as latin-1) and a few more.
SUBSTITUTES = [chr(c) for c in range(256)] + ["\u2024", "\uff0e", "\ud800", "\udcff", "\U0001f600"]


@st.composite
def mutated(draw: st.DrawFn, token: str, others: list[str] | None = None) -> str:
    """``token`` changed by one to three edits: a character replaced, bits of a byte
    flipped, a cut, a character dropped or inserted, a slice repeated or swapped, a case
    flipped, or a splice with another real token; never one of those tokens whole."""
    text = token
    for _ in range(draw(st.integers(1, 3))):
        n = len(text)
        kind = draw(st.sampled_from(["replace", "flip", "cut", "drop", "insert", "repeat",
                                     "swap", "case", "splice", "append"]))  # fmt: skip
        if n == 0:
            kind = "append"
        i = draw(st.integers(0, max(0, n - 1)))
        if kind == "replace":
            text = text[:i] + draw(any_char) + text[i + 1 :]
        elif kind == "flip":
            byte = text[i].encode("utf-8", "surrogatepass")[0] ^ (1 << draw(st.integers(0, 7)))
            text = text[:i] + chr(byte) + text[i + 1 :]
        elif kind == "cut":
            text = text[:i] if draw(st.booleans()) else text[i + 1 :]
        elif kind == "drop":
            text = text[:i] + text[i + 1 :]
        elif kind == "insert":
            text = text[:i] + draw(any_char) + text[i:]
        elif kind == "repeat":
            j = draw(st.integers(i, n))
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "swap":
            text = text[i:] + text[:i]
        elif kind == "case":
            text = text[:i] + text[i].swapcase() + text[i + 1 :]
        elif kind == "splice" and others:
            other = draw(st.sampled_from(others))
            j = draw(st.integers(0, len(other)))
            text = text[:i] + other[j:]
        else:
            text = text + draw(st.text(alphabet=any_char, min_size=1, max_size=8))
    if text == token or text in (others or []):  # a real token whole is no mutation
        text += "."
    event("mutated")
    return text


def every_single_change(token: str) -> Iterator[str]:
    """``token`` with one character replaced by each of :data:`SUBSTITUTES`, at every
    position: the exhaustive form of "any single byte changed"."""
    for i, was in enumerate(token):
        for c in SUBSTITUTES:
            if c != was:
                yield token[:i] + c + token[i + 1 :]


def _verifies(signer: Signer, text: str) -> bool:
    try:
        signer.unsign(text)
    except InvalidSignatureError:
        return False
    return True


# -- the signed session id ---------------------------------------------------------------


@FUZZ
@given(st.data())
def test_a_signed_session_id_mutated_never_verifies(data: st.DataObject) -> None:
    token = SIGNER.sign(new_session_id())
    others = [SIGNER.sign(new_session_id()), Signer([OLD], salt="session").sign(new_session_id())]
    assert _verifies(SIGNER, token)
    assert not _verifies(SIGNER, data.draw(mutated(token, others)))


def test_a_signed_session_id_with_any_one_character_changed_never_verifies() -> None:
    """Every position, every latin-1 character and a few others: about 22,000 tokens."""
    token = SIGNER.sign(new_session_id())
    changed = [t for t in every_single_change(token) if _verifies(SIGNER, t)]
    assert changed == []


@FUZZ
@given(any_text)
def test_any_text_is_refused_with_the_one_error_only(text: str) -> None:
    assert not _verifies(SIGNER, text)


@FUZZ
@given(st.text(min_size=1, max_size=60).filter(lambda v: "." not in v), st.data())
def test_rotation_salts_and_strange_secrets(value: str, data: st.DataObject) -> None:
    """A value signed with a retired secret verifies while the secret is listed and
    never after; another purpose's or an unknown secret's never does; a signature moved
    onto another value never does."""
    by_old = Signer([OLD], salt="session").sign(value)
    assert _verifies(SIGNER, by_old)
    assert not _verifies(Signer([CURRENT], salt="session"), by_old)  # OLD retired
    assert not _verifies(SIGNER, Signer([CURRENT], salt="remember").sign(value))
    assert not _verifies(SIGNER, Signer([STRANGER], salt="session").sign(value))
    other = data.draw(st.text(min_size=1, max_size=60).filter(lambda v: v != value))
    assert not _verifies(SIGNER, f"{other}.{SIGNER.signature(value)}")


# -- remember-me cookies and split tokens ----------------------------------------------

REMEMBER = Signer([CURRENT, OLD], salt="remember")


def _remember_cookie() -> str:
    selector, validator = new_split_token()
    return REMEMBER.sign(f"{selector}:{validator}")


@FUZZ
@given(st.data())
def test_a_remember_me_cookie_mutated_is_no_token(data: st.DataObject) -> None:
    cookie = _remember_cookie()
    assert read_token(cookie, REMEMBER) is not None
    assert read_token(data.draw(mutated(cookie, [_remember_cookie()])), REMEMBER) is None


def test_a_remember_me_cookie_with_any_one_character_changed_is_no_token() -> None:
    cookie = _remember_cookie()
    assert [t for t in every_single_change(cookie) if read_token(t, REMEMBER)] == []


@FUZZ
@given(any_text)
def test_any_text_as_a_remember_me_cookie_is_no_token(text: str) -> None:
    assert read_token(text, REMEMBER) is None


def test_a_split_token_signed_for_another_purpose_is_no_remember_me_cookie() -> None:
    selector, validator = new_split_token()
    for salt in ("session", "csrf-anon", "device"):
        other = Signer([CURRENT], salt=salt).sign(f"{selector}:{validator}")
        assert read_token(other, REMEMBER) is None


@FUZZ
@given(any_text)
def test_split_tokens_parse_or_are_none(text: str) -> None:
    parsed = parse_split_token(text)
    if parsed is not None:
        selector, validator = parsed
        assert 16 <= len(selector) <= 64 and 16 <= len(validator) <= 64
        assert text in (f"{selector}.{validator}", f"{selector}:{validator}")


@FUZZ
@given(st.one_of(any_text, st.integers(), st.none(), st.binary(max_size=20)))
def test_ids_and_handles_are_shaped_or_refused(value: object) -> None:
    """A value of any type or text is a handle or not, and text an id or not; no raise."""
    assert is_valid_handle(value) in (True, False)
    if isinstance(value, str):
        plain = value.replace("-", "a").replace("_", "a")
        shaped = value.isascii() and plain.isalnum() and 32 <= len(value) <= 128
        assert is_valid_id(value) == shaped


def test_ids_and_handles_are_new_and_shaped() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(is_valid_id(i) and len(i) == 43 for i in ids)
    assert all(is_valid_handle(new_handle()) for _ in range(100))


# -- CSRF tokens --------------------------------------------------------------------------


@FUZZ
@given(st.data())
def test_a_masked_csrf_token_mutated_does_not_match(data: st.DataObject) -> None:
    secret = secrets.token_bytes(32)
    token = csrf.mask(secret)
    assert csrf.matches(token, secret)
    assert csrf.matches(csrf.mask(secret), secret)  # a fresh mask each time, same secret
    assert not csrf.matches(data.draw(mutated(token, [csrf.mask(secret)])), secret)
    assert not csrf.matches(token, secrets.token_bytes(32))


def test_a_masked_csrf_token_with_any_one_character_changed_does_not_match() -> None:
    """Unpadded base64 has spare bits in its last character: only one spelling counts."""
    secret = secrets.token_bytes(32)
    token = csrf.mask(secret)
    assert [t for t in every_single_change(token) if csrf.matches(t, secret)] == []


@FUZZ
@given(any_text)
def test_any_text_as_a_csrf_token_matches_nothing(text: str) -> None:
    assert not csrf.matches(text, secrets.token_bytes(32))
    carried = csrf.unmask(text)
    assert carried is None or len(carried) == 32
    assert csrf.decode_secret(text) is None or len(text) == 43


ANON = Signer([CURRENT, OLD], salt="csrf-anon")


@FUZZ
@given(st.data())
def test_an_anonymous_csrf_token_mutated_is_refused(data: st.DataObject) -> None:
    now = time.time()
    token = csrf.issue_anonymous(ANON, now)
    assert csrf.verify_anonymous(ANON, token, now, 3600)
    others = [csrf.issue_anonymous(ANON, now - 10), SIGNER.sign(f"{int(now)}.{'n' * 16}")]
    assert not csrf.verify_anonymous(ANON, data.draw(mutated(token, others)), now, 3600)
    assert not csrf.verify_anonymous(ANON, token, now + 7200, 3600)  # too old
    assert not csrf.verify_anonymous(ANON, token, now - 3600, 3600)  # from the future


def test_an_anonymous_csrf_token_with_any_one_character_changed_is_refused() -> None:
    now = time.time()
    token = csrf.issue_anonymous(ANON, now)
    changed = [t for t in every_single_change(token) if csrf.verify_anonymous(ANON, t, now, 3600)]
    assert changed == []


@FUZZ
@given(any_text, st.floats(allow_nan=True, allow_infinity=True))
def test_any_text_as_an_anonymous_csrf_token_is_refused(text: str, now: float) -> None:
    assert not csrf.verify_anonymous(ANON, text, now, 3600)


# -- the login throttle's device cookie ------------------------------------------------


@pytest.fixture(scope="module")
def device_reader() -> tuple[str, Callable[[str], str | None]]:
    """A device cookie for alice, and a reader of any cookie value as alice's device."""
    core = SessionCore(SessionConfig(secrets=[CURRENT, OLD]), MemoryStore())
    session = Session(core, None, None)
    issued = device.issue(HandView(session), session, "device", "alice", 600)
    value = issued.split(";", 1)[0].split("=", 1)[1]

    def read(cookie: str) -> str | None:
        view = HandView(session, headers=[(b"cookie", f"device={cookie}".encode("latin-1"))])
        return device.read(view, session, "device", "alice")

    assert read(value) is not None
    return value, read


@FUZZ
@given(st.data())
def test_a_device_cookie_mutated_is_no_device(
    device_reader: tuple[str, Callable[[str], str | None]], data: st.DataObject
) -> None:
    value, read = device_reader
    text = data.draw(mutated(value, [REMEMBER.sign("n" * 22 + ":" + "t" * 32)]))
    try:
        header_text = text.encode("latin-1").decode("latin-1")
    except UnicodeEncodeError:
        event("not a header")
        return  # no header can carry it
    if value in cookie_values(f"device={header_text}", "device"):
        event("the same cookie, header syntax around it")  # "value;", '"value"', " value"
        return
    assert read(header_text) is None


def test_a_device_cookie_with_any_one_character_changed_is_no_device(
    device_reader: tuple[str, Callable[[str], str | None]],
) -> None:
    value, read = device_reader
    latin = [t for t in every_single_change(value) if max(map(ord, t)) < 256]
    assert [t for t in latin if read(t) is not None] == []


def test_a_device_cookie_is_bound_to_its_user(
    device_reader: tuple[str, Callable[[str], str | None]],
) -> None:
    """Bob's device cookie, signed with the same secrets, is no device of alice's."""
    core = SessionCore(SessionConfig(secrets=[CURRENT]), MemoryStore())
    session = Session(core, None, None)
    bobs = device.issue(HandView(session), session, "device", "bob", 600)
    _, read = device_reader
    assert read(bobs.split(";", 1)[0].split("=", 1)[1]) is None
