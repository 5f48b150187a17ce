"""Signed and masked tokens: nothing but a token this app made verifies. Real tokens
mutated (a byte changed, cut, extended, joined, made under another salt or a retired
secret) never verify, and no input raises anything but the documented error."""

from __future__ import annotations

import secrets
import time

from hypothesis import given
from hypothesis import strategies as st

from sessionware.auth.series import read_token
from sessionware.csrf import token as csrf
from sessionware.exceptions import InvalidSignatureError
from sessionware.signing import Signer
from sessionware.tokens import is_valid_id, new_session_id, new_split_token, parse_split_token
from tests.fuzz.conftest import FUZZ

CURRENT, OLD, STRANGER = "a" * 40, "b" * 40, "c" * 40
SIGNER = Signer([CURRENT, OLD], salt="session")


def _mutations(token: str) -> st.SearchStrategy[str]:
    """Every single-character change of ``token``, cuts, extensions and splices."""
    n = len(token)
    alphabet = st.characters(codec="utf-8")
    changed = st.tuples(st.integers(0, n - 1), alphabet).map(
        lambda p: token[: p[0]] + p[1] + token[p[0] + 1 :]
    )
    cut = st.integers(0, n - 1).map(lambda i: token[:i])
    grown = st.text(min_size=1, max_size=8).map(lambda t: token + t)
    dropped = st.integers(0, n - 1).map(lambda i: token[:i] + token[i + 1 :])
    return st.one_of(changed, cut, grown, dropped).filter(lambda t: t != token)


def _verifies(signer: Signer, text: str) -> bool:
    try:
        signer.unsign(text)
    except InvalidSignatureError:
        return False
    return True


@FUZZ
@given(st.data())
def test_a_signed_session_id_changed_anywhere_never_verifies(data: st.DataObject) -> None:
    token = SIGNER.sign(new_session_id())
    assert _verifies(SIGNER, token)
    assert not _verifies(SIGNER, data.draw(_mutations(token)))


@FUZZ
@given(st.text(max_size=300))
def test_any_text_is_refused_with_the_one_error_only(text: str) -> None:
    assert not _verifies(SIGNER, text)


@FUZZ
@given(st.text(min_size=1, max_size=60).filter(lambda v: "." not in v))
def test_other_salts_and_strange_secrets_never_verify(value: str) -> None:
    assert _verifies(SIGNER, Signer([OLD], salt="session").sign(value))  # retired: verifies
    assert not _verifies(SIGNER, Signer([CURRENT], salt="remember").sign(value))
    assert not _verifies(SIGNER, Signer([STRANGER], salt="session").sign(value))


@FUZZ
@given(st.data())
def test_a_remember_me_cookie_changed_anywhere_is_no_token(data: st.DataObject) -> None:
    signer = Signer([CURRENT], salt="remember")
    selector, validator = new_split_token()
    cookie = signer.sign(f"{selector}.{validator}")
    assert read_token(cookie, signer) == (selector, validator)
    assert read_token(data.draw(_mutations(cookie)), signer) is None


@FUZZ
@given(st.text(max_size=200))
def test_split_tokens_parse_or_are_none(text: str) -> None:
    parsed = parse_split_token(text)
    if parsed is not None:
        selector, validator = parsed
        assert 16 <= len(selector) <= 64 and 16 <= len(validator) <= 64
        assert text in (f"{selector}.{validator}", f"{selector}:{validator}")


@FUZZ
@given(st.data())
def test_a_masked_csrf_token_changed_anywhere_does_not_match(data: st.DataObject) -> None:
    secret = secrets.token_bytes(32)
    token = csrf.mask(secret)
    assert csrf.matches(token, secret)
    assert csrf.matches(csrf.mask(secret), secret)  # a fresh mask each time, same secret
    assert not csrf.matches(data.draw(_mutations(token)), secret)
    assert not csrf.matches(token, secrets.token_bytes(32))


@FUZZ
@given(st.text(max_size=200))
def test_any_text_as_a_csrf_token_matches_nothing(text: str) -> None:
    assert not csrf.matches(text, secrets.token_bytes(32))
    assert csrf.unmask(text) is None or len(csrf.unmask(text) or b"") == 32


@FUZZ
@given(st.data())
def test_an_anonymous_csrf_token_changed_anywhere_is_refused(data: st.DataObject) -> None:
    signer = Signer([CURRENT], salt="csrf-anon")
    now = time.time()
    token = csrf.issue_anonymous(signer, now)
    assert csrf.verify_anonymous(signer, token, now, 3600)
    assert not csrf.verify_anonymous(signer, data.draw(_mutations(token)), now, 3600)
    assert not csrf.verify_anonymous(signer, token, now + 7200, 3600)  # too old


def test_ids_are_new_and_shaped() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(is_valid_id(i) and len(i) == 43 for i in ids)
