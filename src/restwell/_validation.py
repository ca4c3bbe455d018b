"""Validation of response bodies with pydantic (the ``pydantic`` extra), imported lazily.

``import restwell`` never imports pydantic: only the first ``Response.parse()`` does. One
``TypeAdapter`` is built per type and cached, since building one costs far more than using it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ._exceptions import ValidationError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from ._response import Response

__all__ = ["validate"]

_MAX_LISTED_ERRORS = 5


@functools.lru_cache(maxsize=256)
def _adapter(type_: Any) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter  # noqa: PLC0415 - optional dependency

    return TypeAdapter(type_)


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:_MAX_LISTED_ERRORS]:
        path = ".".join(str(part) for part in error.get("loc", ())) or "<body>"
        parts.append(f"{path}: {error.get('msg', 'invalid')}")
    more = len(errors) - _MAX_LISTED_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validate(response: Response, type_: Any) -> Any:
    """Validate ``response``'s JSON body into ``type_``.

    Raises:
        ImportError: pydantic is not installed (the message names the extra).
        ValidationError: the body does not match; the message names the failing fields.

    Example:
        >>> import httpx
        >>> from restwell import Response
        >>> validate(Response(httpx.Response(200, json=[1, 2])), list[int])
        [1, 2]
    """
    try:
        import pydantic  # noqa: PLC0415 - optional dependency
    except ImportError as exc:  # pragma: no cover - exercised in the no-extras CI session
        raise ImportError(
            'Response.parse() needs pydantic: pip install "restwell[pydantic]"'
        ) from exc
    try:
        hashable_type = hash(type_) is not None
    except TypeError:
        hashable_type = False
    adapter = _adapter(type_) if hashable_type else pydantic.TypeAdapter(type_)
    try:
        return adapter.validate_json(response.httpx.content)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        name = getattr(type_, "__name__", repr(type_))
        raise ValidationError(
            f"the response body does not match {name}: {_describe(errors)}",
            response=response,
            errors=errors,
            request=response._request_info,
        ) from exc
