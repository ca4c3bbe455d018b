"""Reading the response headers restwell decides on: media type and length; checking ours.

One parser each, so that errors, ``Response.data``, downloads and event streams agree. And one
check of the header fields restwell sends (:func:`field_name_problem`,
:func:`field_value_problem`), run while a request is built: a value the wire would refuse is
refused there, with a message that names the header and never quotes the value (h11 quotes
it: ``Illegal header value b'sk-... '``, and the value is often a credential).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import httpx

__all__ = [
    "content_length",
    "field_name_problem",
    "field_value_problem",
    "is_json",
    "media_type",
    "shown_name",
]

# RFC 9110 §5.1: field-name = token; tchar as in §5.6.2.
_TOKEN: Final = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field-vchar = VCHAR / obs-text, with SP and HTAB only between two of them.
# A str is ASCII (httpx encodes it so); bytes are read as latin-1, so obs-text is 0x80-0xFF.
_FIELD_VALUE: Final = re.compile(
    r"(?:[\x21-\x7e\x80-\xff](?:[\x20-\x7e\t\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
)
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def field_name_problem(name: str | bytes) -> str | None:
    """Why ``name`` is not a valid header field name (RFC 9110 §5.1), or ``None``.

    Example:
        >>> field_name_problem("X-API-Key"), field_name_problem("X Key")
        (None, 'is not a token (RFC 9110 §5.1: no spaces, colons or control characters)')
    """
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    if _TOKEN.fullmatch(text):
        return None
    if not text:
        return "is empty"
    return "is not a token (RFC 9110 §5.1: no spaces, colons or control characters)"


def shown_name(name: str | bytes) -> str:
    """``name`` as an error may show it: cut at its first invalid character.

    What follows a bad character may be a value pasted into the name (``"Authorization:
    Bearer ..."``), so it is never shown.

    Example:
        >>> shown_name("Authorization: Bearer t")
        "'Authorization…'"
    """
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    match = _TOKEN.match(text)
    prefix = match.group(0) if match else ""
    return repr(prefix) if len(prefix) == len(text) else repr(prefix + "…")


def field_value_problem(value: str | bytes) -> str | None:
    """Why ``value`` is not a valid header field value (RFC 9110 §5.5), or ``None``.

    The reason never quotes the value: header values are often credentials.

    Example:
        >>> field_value_problem("Bearer t"), field_value_problem("t ")
        (None, 'has leading or trailing whitespace (RFC 9110 §5.5)')
    """
    if isinstance(value, bytes):
        text = value.decode("latin-1")
    elif value.isascii():
        text = value
    else:
        return "holds non-ASCII characters (pass bytes, or encode it as RFC 8187 describes)"
    if _FIELD_VALUE.fullmatch(text):
        return None
    if "\r" in text or "\n" in text:
        return "holds line breaks (CR or LF)"
    if _CONTROL.search(text):
        return "holds a control character (NUL, DEL or another)"
    return "has leading or trailing whitespace (RFC 9110 §5.5)"


def media_type(headers: httpx.Headers | Mapping[str, str]) -> str:
    """The ``Content-Type`` without parameters, lower-cased (``""`` when absent).

    Example:
        >>> media_type({"content-type": "Application/JSON; charset=utf-8"})
        'application/json'
    """
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    """Whether a media type is JSON, ``+json`` structured suffixes included (RFC 6839).

    Example:
        >>> is_json("application/problem+json"), is_json("text/plain")
        (True, False)
    """
    return media == "application/json" or media.endswith("+json")


def content_length(headers: httpx.Headers | Mapping[str, str]) -> int | None:
    """``Content-Length`` as an int, or ``None`` when absent or not ASCII digits.

    Example:
        >>> content_length({"content-length": "42"}), content_length({"content-length": "²"})
        (42, None)
    """
    length = headers.get("content-length")
    if length is None or not (length.isascii() and length.isdigit()):
        return None
    return int(length)
