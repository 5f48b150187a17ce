"""``sessionware._json.dumps``: the stdlib's compact encoding, from an encoder built once."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings

from sessionware import _json
from sessionware._json import dumps
from tests.fuzz.test_fuzz_records import json_values

_stdlib = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode




@settings(max_examples=300)
@given(json_values)
def test_dumps_writes_what_the_stdlib_writes(value: Any) -> None:
    """Same text as ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``."""
    assert dumps(value) == _stdlib(value)
    assert json.loads(dumps(value)) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (None, "null"), (7, "7"), ("é\n", '"é\\n"'), (1.5, "1.5")],
)
def test_dumps_of_scalars(value: Any, text: str) -> None:
    """bool is not taken for an int, text keeps non-ASCII and escapes controls."""
    assert dumps(value) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, [-math.inf]])
def test_dumps_refuses_what_json_cannot_carry(value: Any) -> None:
    with pytest.raises(ValueError, match="Out of range"):
        dumps(value)


def test_a_value_containing_itself_is_a_value_error_and_later_calls_work() -> None:
    """No shared table of containers is left dirty by a failure."""
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        dumps(loop)
    loop.pop()
    assert dumps(loop) == "[1]"
    assert dumps({"a": loop}) == '{"a":[1]}'


def test_an_object_json_has_no_form_for_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        dumps({"a": {1, 2}})
    with pytest.raises(TypeError):
        dumps({1.5j: 1})


def test_without_the_c_encoder_the_plain_one_answers_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An interpreter without json's C accelerator gets the same text."""
    monkeypatch.setattr(_json, "_encoder", None)
    assert dumps({"a": [1, 2.5, None, "é"]}) == '{"a":[1,2.5,null,"é"]}'
    with pytest.raises(ValueError):
        dumps(math.nan)
