"""JSON encoding and decoding of bodies.

The client resolves its ``json_dumps`` / ``json_loads`` once at construction; these are the
defaults. Encoding happens before any network I/O, so a value that cannot be serialised fails
with a ``TypeError`` naming it, not with a half-sent request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["JSONDumps", "JSONLoads", "encode_json", "stdlib_dumps", "stdlib_loads"]

JSONDumps = Callable[[Any], "bytes | str"]
"""A JSON serializer: takes a Python value, returns ``bytes`` or ``str``."""
JSONLoads = Callable[["bytes | str"], Any]
"""A JSON deserializer: takes the body as ``bytes`` (or ``str``), returns a Python value."""

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def stdlib_dumps(value: Any) -> bytes:
    r"""Compact UTF-8 JSON, the same bytes httpx would send for ``json=``.

    Example:
        >>> stdlib_dumps({"name": "Zoë"})
        b'{"name":"Zo\xc3\xab"}'
    """
    return _encoder.encode(value).encode("utf-8")


def stdlib_loads(data: bytes | str) -> Any:
    """Decode JSON with the standard library.

    Example:
        >>> stdlib_loads(b'{"a": 1}')
        {'a': 1}
    """
    return json.loads(data)


def encode_json(value: Any, dumps: JSONDumps) -> bytes:
    """Serialise ``value`` for ``json=``, turning a serializer's failure into a clear TypeError.

    Example:
        >>> encode_json({1, 2}, stdlib_dumps)
        Traceback (most recent call last):
        ...
        TypeError: json= could not be serialised: Object of type set is not JSON serializable
    """
    try:
        body = dumps(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"json= could not be serialised: {exc}") from exc
    return body.encode("utf-8") if isinstance(body, str) else body
