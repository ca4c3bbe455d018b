"""Validation of response bodies with pydantic (the ``pydantic`` extra), imported lazily.

``import restwell`` never imports pydantic: only the first ``Response.parse()`` does. One
``TypeAdapter`` is built per type and cached, since building one costs far more than using it.
A failure names the failing field paths and never quotes the body: a body may hold secrets
(a token response, say), and pydantic's own message quotes the input, so it is kept off the
traceback (``__cause__`` is suppressed; the error list, without inputs, stays on ``.errors``
and the body on ``.response``).
"""

from __future__ import annotations

import functools
import types
import typing
from typing import TYPE_CHECKING, Any

from ._exceptions import ValidationError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from ._response import Response

__all__ = ["validate"]

_MAX_LISTED_ERRORS = 5
_INSTALL_HINT = 'Response.parse() needs pydantic: pip install "restwell[pydantic]"'


@functools.lru_cache(maxsize=256)
def _adapter(type_: Any) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter  # noqa: PLC0415 - optional dependency

    return TypeAdapter(type_)


def _type_name(type_: Any) -> str:
    """A readable name: ``list[User]``, ``Admin | User`` (no module paths)."""
    origin, args = typing.get_origin(type_), typing.get_args(type_)
    if origin is None or not args:
        if type_ is type(None):
            return "None"
        if isinstance(type_, type):
            return type_.__name__
        return "..." if type_ is Ellipsis else repr(type_).replace("typing.", "")
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_type_name(arg) for arg in args)
    if origin is typing.Literal:
        return repr(type_).replace("typing.", "")
    name = getattr(origin, "__name__", None) or repr(origin)
    return f"{name}[{', '.join(_type_name(arg) for arg in args)}]"


def _location(loc: tuple[Any, ...]) -> str:
    """Render pydantic's ``("items", 2, "price")`` as ``items[2].price`` (root: ``<body>``)."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "<body>"


def _describe(errors: list[Any]) -> str:
    parts = [
        f"{_location(tuple(error.get('loc', ())))}: {error.get('msg', 'invalid')}"
        for error in errors[:_MAX_LISTED_ERRORS]
    ]
    more = len(errors) - _MAX_LISTED_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validate(response: Response, type_: Any) -> Any:
    """Validate ``response``'s JSON body into ``type_``; an empty body is validated as ``None``.

    Raises:
        ImportError: pydantic is not installed (the message names the extra).
        ValidationError: the body is not JSON, or does not match; the message names the
            failing fields.

    Example:
        >>> import httpx
        >>> from restwell import Response
        >>> validate(Response(httpx.Response(200, json=[1, 2])), list[int])
        [1, 2]
    """
    try:
        import pydantic  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT, name="pydantic") from exc
    try:
        hash(type_)
    except TypeError:  # e.g. Annotated[...] with unhashable metadata: not cacheable
        adapter = pydantic.TypeAdapter(type_)
    else:
        adapter = _adapter(type_)
    content = response.httpx.content
    try:
        # An empty body means "no value", as Response.data has it: parse(User | None) works
        # for a 204 or an empty 200.
        if not content:
            return adapter.validate_python(None)
        return adapter.validate_json(content)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0].get("type") == "json_invalid":
            message = f"the response body is not valid JSON: {errors[0].get('msg')}"
        else:
            message = f"the response body does not match {_type_name(type_)}: "
            message += _describe(errors)
        error = ValidationError(message, response=response, errors=errors, request=response._info())
    # Outside the except block, so pydantic's message (which quotes the input) is not chained.
    raise error
