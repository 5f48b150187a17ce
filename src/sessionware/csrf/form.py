"""Finding the CSRF token field in a form body an adapter has read.

Only ``application/x-www-form-urlencoded`` and ``multipart/form-data`` are searched;
any other body must carry the token in the header. The reading itself (capped, and
handed on to the app unchanged) is the adapter's: the ASGI middleware buffers and
replays ``receive``, a WSGI adapter reads ``wsgi.input``.

python-multipart is a dependency of sessionware, imported here at module level: without
it a token in a multipart form could not be read and every such post would be refused
with 403. A broken installation therefore fails when the CSRF layer is imported (at
start-up), with the command that fixes it, never request by request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from sessionware._extras import requires

with requires("core"):
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = ["FORM_TYPES", "form_field", "is_form"]

#: The media types whose body is searched for the token field.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

#: A token field longer than this is not a token; stop collecting it.
_MAX_FIELD = 1024


def is_form(content_type: str) -> bool:
    """Whether a ``Content-Type`` value names a form body (urlencoded or multipart)."""
    return content_type.partition(";")[0].strip().lower() in FORM_TYPES


def form_field(body: bytes, content_type: str, name: str) -> str | None:
    """The first value of field ``name`` in a form body, or None."""
    media = content_type.partition(";")[0]
    media = media.strip().lower()
    if media == "application/x-www-form-urlencoded":
        return _urlencoded_field(body, name)
    if media == "multipart/form-data":
        return _multipart_field(body, content_type, name)
    return None


def _urlencoded_field(body: bytes, name: str) -> str | None:
    # WHATWG URL §5.1 application/x-www-form-urlencoded parsing, one field only.
    want = name.encode()
    for pair in body.split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == want or unquote_plus(key.decode("latin-1")) == name:
            if len(value) > _MAX_FIELD:
                return None
            return unquote_plus(value.decode("latin-1"))
    return None


def _multipart_field(body: bytes, content_type: str, name: str) -> str | None:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        return None
    want = name.encode()
    state: dict[str, Any] = {
        "field": b"",
        "value": b"",
        "disposition": None,
        "ours": False,
        "complete": False,
    }
    found: list[bytes] = []
    too_long = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        if state["field"].lower() == b"content-disposition":
            state["disposition"] = state["value"]
        state["field"] = state["value"] = b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(state["disposition"] or b"")
        # A file part named like the field is not the field (Starlette does the same).
        state["ours"] = not found and opts.get(b"name") == want and b"filename" not in opts
        state["disposition"] = None
        if state["ours"]:
            found.append(b"")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal too_long
        if state["ours"] and not too_long:
            found[0] += data[start:end]
            too_long = len(found[0]) > _MAX_FIELD

    def on_part_end() -> None:
        if state["ours"]:
            state["complete"] = True  # a part cut off by the body's end is not the field
        state["ours"] = False

    callbacks: MultipartCallbacks = {
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except (FormParserError, ValueError):
        return None
    if not found or too_long or not state["complete"]:
        return None
    return found[0].decode("latin-1")
