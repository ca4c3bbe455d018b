"""Reading the response headers restwell decides on: media type and length.

One parser each, so that errors, ``Response.data``, downloads and event streams agree.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

__all__ = ["content_length", "is_json", "media_type"]


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
