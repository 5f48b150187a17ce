"""Compact JSON for what sessionware stores, from one C encoder built once.

``json.JSONEncoder.encode`` builds a new C encoder on every call, which costs more
than encoding a small value; session values and the SQLite record are encoded on
every write, so the encoder here is built once. It keeps no table of the containers
it is inside (one shared table would stay dirty after a failed call), so a value that
contains itself ends on the recursion limit, reported as ``json`` reports it: a
ValueError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["dumps"]

_slow = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
# ensure_ascii=False: the C string writer that leaves non-ASCII text as it is.
_string: Callable[[str], str] = json.encoder.encode_basestring


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _c_encoder() -> Callable[[Any, int], Iterable[str]] | None:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None  # an interpreter without the C accelerator: the plain encoder
    try:
        # (markers, default, encoder, indent, key_separator, item_separator, sort_keys,
        # skipkeys, allow_nan), as json.encoder's own one-shot call passes them
        encoder: Callable[[Any, int], Iterable[str]] = make(
            None, _refuse, _string, None, ":", ",", False, False, False
        )
    except TypeError:
        return None  # a Python whose C encoder takes other arguments
    return encoder


_encoder = _c_encoder()


def dumps(value: Any) -> str:
    """``value`` as compact JSON; ValueError for NaN, infinities and cycles, TypeError
    for what JSON has no form for."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is int:
        return int.__repr__(value)
    if _encoder is None:
        return _slow(value)
    try:
        return "".join(_encoder(value, 0))
    except RecursionError:
        raise ValueError("Circular reference detected") from None
