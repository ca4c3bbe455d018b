"""orjson as a faster road to exactly what the standard library's ``json`` would give.

Imported only when a client resolves its JSON functions and the ``orjson`` extra is
installed; ``import restwell`` never imports it. orjson and ``json`` disagree in a few
places, and in each the standard library's answer wins, so installing the extra never
changes what a program sends or receives:

* Encoding. orjson writes NaN and infinities as ``null`` where ``json`` (with
  ``allow_nan=False``) refuses them, so output containing ``null`` is re-encoded by the
  standard library, which either refuses a NaN or writes the same document. Everything
  orjson refuses (non-str keys, ints beyond 64 bits, nesting beyond 254 levels, types it
  does not know) is handed to the standard library, which decides. Datetimes and
  dataclasses pass through to :func:`~restwell._serialization.json_default`, so both write
  them identically.
* Decoding. orjson reads integers beyond 64 bits as floats, silently losing digits, where
  ``json`` returns the exact int: bodies with a run of 19 or more digits are decoded by the
  standard library. Everything orjson refuses (``NaN`` literals, ``1e400``, a UTF-8 BOM,
  UTF-16 bodies, lone surrogate escapes, deep nesting) is decoded, or refused, by it too.

The fallbacks cost a second pass only for those rare inputs; the common case pays one
C-speed scan of the body for long digit runs (about 1.5 ms per MB).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ._serialization import json_default, stdlib_dumps, stdlib_loads

__all__ = ["orjson_dumps", "orjson_loads"]

_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

# Every digit becomes "0", so one substring search finds any run of digits.
_DIGITS_TO_ZERO: Final = bytes.maketrans(b"0123456789", b"0" * 10)
# 2**64 has 20 digits and -2**63 - 1 has 19: shorter integers fit orjson's 64-bit ints.
_LONG_POSITIVE: Final = b"0" * 20
_LONG_NEGATIVE: Final = b"-" + b"0" * 19


def orjson_dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON through orjson, meaning exactly what :func:`stdlib_dumps` writes.

    Example:
        >>> import datetime
        >>> orjson_dumps({"at": datetime.date(2024, 6, 1), "n": [1, 2.5]})
        b'{"at":"2024-06-01","n":[1,2.5]}'
    """
    try:
        body = orjson.dumps(value, default=json_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return stdlib_dumps(value)
    if b"null" in body:  # perhaps a NaN or an infinity, which must be refused
        return stdlib_dumps(value)
    return body


def orjson_loads(data: bytes | str) -> Any:
    """Decode JSON through orjson, with exactly the result :func:`stdlib_loads` gives.

    Example:
        >>> orjson_loads(b'{"big": 123456789012345678901234567890, "pi": 3.14}')
        {'big': 123456789012345678901234567890, 'pi': 3.14}
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    digits = raw.translate(_DIGITS_TO_ZERO)
    if _LONG_POSITIVE in digits or _LONG_NEGATIVE in digits:
        return stdlib_loads(data)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return stdlib_loads(data)
