"""JSON encoding and decoding of bodies: the standard library's, or orjson's when installed.

The client resolves its ``json_dumps`` / ``json_loads`` once at construction
(:func:`default_json`): orjson (the ``orjson`` extra) when it can be imported, else the
standard library. orjson is imported then, never at ``import restwell``.

Both backends mean the same thing. The standard library is the reference: it decides every
case orjson would decide differently, and orjson is only a faster way to reach the same
result when it certainly does (see :mod:`restwell._orjson`). Beyond the standard types,
``json=`` accepts what :func:`json_default` converts: pydantic models, dataclasses,
datetimes, dates, times, UUIDs, Decimals and enums, nested anywhere in lists and dicts.

Encoding happens before any network I/O, so a value that cannot be serialised fails with a
``TypeError`` naming its type and where it sits (``json['items'][2]['when']``), never with a
half-sent request. Messages name types and paths, never values: a body may hold secrets.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import json
import math
import sys
import uuid
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "JSONDumps",
    "JSONLoads",
    "default_json",
    "encode_json",
    "json_default",
    "stdlib_dumps",
    "stdlib_loads",
]

JSONDumps = Callable[[Any], "bytes | str"]
"""A JSON serializer: takes a Python value, returns ``bytes`` or ``str``."""
JSONLoads = Callable[["bytes | str"], Any]
"""A JSON deserializer: takes the body as ``bytes`` (or ``str``), returns a Python value."""

_MAX_DEPTH: Final = 500
"""How deep :func:`_find_problem` looks; deeper values fail as "nested too deeply"."""


def _isoformat(value: datetime.date | datetime.time) -> str:
    return value.isoformat()


def _is_decimal(value: Any) -> bool:
    # No Decimal exists unless decimal was imported: import restwell need not load it.
    module = sys.modules.get("decimal")
    return module is not None and isinstance(value, module.Decimal)


def _decimal(value: Any) -> str:
    # A string keeps every digit (a float would round); pydantic's JSON mode does the same.
    # NaN and infinities are refused like float ones (RFC 8259 §6 has no such numbers).
    if not value.is_finite():
        raise ValueError("a non-finite Decimal has no JSON representation")
    return str(value)


# Exact types first (one dict lookup on the hot path), subclasses through isinstance below.
_CONVERTERS: Final[dict[type, Callable[[Any], Any]]] = {
    datetime.datetime: _isoformat,
    datetime.date: _isoformat,
    datetime.time: _isoformat,
    uuid.UUID: str,
}


def json_default(value: Any) -> Any:
    """Convert a value the JSON encoders do not know into one they do.

    pydantic models become ``model.model_dump(mode="json")`` (pydantic's own rules and the
    model's configuration apply); dataclasses a dict of their fields; datetimes, dates and
    times ISO 8601 strings; UUIDs their canonical string; Decimals a string with every digit;
    enums their value.

    Raises:
        TypeError: anything else (the message names the type, never the value).

    Example:
        >>> import datetime, decimal
        >>> json_default(datetime.date(2024, 6, 1)), json_default(decimal.Decimal("9.90"))
        ('2024-06-01', '9.90')
    """
    converter = _CONVERTERS.get(type(value))
    if converter is not None:
        return converter(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Shallow: the encoder recurses into the fields and converts them in turn.
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    pydantic = sys.modules.get("pydantic")  # no model exists unless pydantic was imported
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if _is_decimal(value):
        return _decimal(value)
    raise TypeError(f"an object of type {type(value).__qualname__} is not JSON serializable")


# allow_nan=False: NaN and Infinity are not JSON (RFC 8259 §6); a peer may reject or misread
# them, so they fail here, before anything is sent.
_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=json_default
)


def stdlib_dumps(value: Any) -> bytes:
    r"""Compact UTF-8 JSON, with the types :func:`json_default` converts.

    Example:
        >>> import uuid
        >>> stdlib_dumps({"name": "Zoë", "id": uuid.UUID(int=1)})
        b'{"name":"Zo\xc3\xab","id":"00000000-0000-0000-0000-000000000001"}'
    """
    return _encoder.encode(value).encode("utf-8")


def stdlib_loads(data: bytes | str) -> Any:
    """Decode JSON with the standard library.

    Raises:
        ValueError: the text is not JSON, or nests too deeply to decode.

    Example:
        >>> stdlib_loads(b'{"a": 1}')
        {'a': 1}
    """
    try:
        return json.loads(data)
    except RecursionError:
        # A hostile or broken body must give an error the caller expects, not a crash.
        raise ValueError("the JSON text nests too deeply to decode") from None


@functools.lru_cache(maxsize=1)
def default_json() -> tuple[JSONDumps, JSONLoads]:
    """The ``(dumps, loads)`` pair a client uses when given none: orjson's when installed.

    Resolved once per process (the import is tried once), at the first client construction.

    Example:
        >>> dumps, loads = default_json()
        >>> loads(dumps({"a": [1, 2.5, None]}))
        {'a': [1, 2.5, None]}
    """
    try:
        from ._orjson import orjson_dumps, orjson_loads  # noqa: PLC0415 - optional extra
    except ImportError:
        return stdlib_dumps, stdlib_loads
    return orjson_dumps, orjson_loads


def encode_json(value: Any, dumps: JSONDumps) -> bytes:
    """Serialise ``value`` for ``json=``, turning a serializer's failure into a clear TypeError.

    With restwell's own serializers the message says where the offending value sits and what
    its type is; a custom ``json_dumps`` has its own rules, so its error is passed on.

    Example:
        >>> encode_json({"tags": {2}}, stdlib_dumps)
        Traceback (most recent call last):
        ...
        TypeError: json['tags'] cannot be serialised: an object of type set is not JSON serializable
    """
    try:
        body = dumps(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        if dumps is stdlib_dumps or getattr(dumps, "__module__", None) == "restwell._orjson":
            found = _find_problem(value, (), set())
            if found is not None:
                path, reason = found
                raise TypeError(f"{_render(path)} cannot be serialised: {reason}") from exc
            reason = f"{type(exc).__name__}"  # pragma: no cover - every known failure is found
        else:
            reason = f"json_dumps raised {type(exc).__name__}: {exc}"
        raise TypeError(f"json= could not be serialised: {reason}") from exc
    return body.encode("utf-8") if isinstance(body, str) else body


def _render(path: tuple[Any, ...]) -> str:
    """``json['items'][2]``, eliding the middle of a very deep path."""
    if not path:
        return "json="
    parts = [f"[{part!r}]" for part in path]
    if len(parts) > 12:
        parts = [*parts[:6], "[...]", *parts[-5:]]
    return "json" + "".join(parts)


def _find_problem(
    value: Any, path: tuple[Any, ...], active: set[int]
) -> tuple[tuple[Any, ...], str] | None:
    """Find the first value the standard library's encoder refuses: ``(path, reason)``.

    Runs only after an encoder failed (so it costs nothing on the hot path) and follows the
    encoder's rules: ``json.JSONEncoder`` with ``allow_nan=False`` and :func:`json_default`.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            int.__repr__(value)
        except ValueError:  # Python 3.11+ caps the digits of an int written as text
            return path, "the int has more digits than sys.get_int_max_str_digits() allows"
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, "the str holds a lone surrogate, which UTF-8 cannot encode"
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return path, f"{value!r} is not a JSON number (RFC 8259 §6)"
    if len(path) >= _MAX_DEPTH:
        return path, f"the value nests more than {_MAX_DEPTH} levels deep"
    if id(value) in active:
        return path, "the value contains itself (a circular reference)"
    active.add(id(value))
    try:
        if isinstance(value, dict):
            for key, item in value.items():
                if key is not None and not isinstance(key, str | int | float | bool):
                    return path, (
                        f"a key of type {type(key).__qualname__}: JSON object keys must be "
                        "str, int, float, bool or None"
                    )
                if isinstance(key, float) and not math.isfinite(key):
                    return path, f"the key {key!r} is not a JSON number (RFC 8259 §6)"
                if isinstance(key, str) and (found := _find_problem(key, path, active)):
                    return found[0], "a key holds a lone surrogate, which UTF-8 cannot encode"
                found = _find_problem(item, (*path, key), active)
                if found is not None:
                    return found
            return None
        if isinstance(value, list | tuple):
            for index, item in enumerate(value):
                found = _find_problem(item, (*path, index), active)
                if found is not None:
                    return found
            return None
        try:
            converted = json_default(value)
        except TypeError as exc:
            return path, str(exc)
        except ValueError as exc:
            # json_default's own ValueErrors name no values; pydantic's serialisation
            # errors might quote one, so only their type is reported (the cause has it all).
            own = _is_decimal(value)
            return path, str(exc) if own else f"{type(value).__qualname__}: {type(exc).__name__}"
        return _find_problem(converted, path, active)
    finally:
        active.discard(id(value))
