"""Give every restwell client built without ``transport=`` a test transport, for a while.

The hook is the one place where a client opens its connection pool
(``BaseClient._open_pool``): while a patch is active, a client built without a transport
(and without ``mounts=``) gets the active one. Nothing is checked on the production path:
the method is replaced for the length of the patch and put back afterwards.

The patch is process-wide (clients built in other threads get the transport too), and
patches nest: the innermost active one wins.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from .._base import BaseClient

__all__ = ["patch_clients"]

_LOCK = threading.Lock()
_ACTIVE: list[Any] = []
_ORIGINAL = BaseClient._open_pool

T = TypeVar("T", bound="httpx.BaseTransport | httpx.AsyncBaseTransport")


def _open_pool(self: BaseClient[Any], options: Mapping[str, Any]) -> Any:
    active = _ACTIVE[-1] if _ACTIVE else None
    if active is not None and options["transport"] is None and not options["mounts"]:
        options = {**options, "transport": active}
    return _ORIGINAL(self, options)


@contextmanager
def patch_clients(transport: T) -> Iterator[T]:
    """While active, every client built without ``transport=`` uses ``transport``.

    ``transport`` is a :class:`MockRouter`, a :class:`Recorder` or any transport that is
    both sync and async (for ``Client`` and ``AsyncClient`` alike).

    Clients built before the patch keep their pool; clients built with their own
    ``transport=`` or ``mounts=`` are left alone.

    Example:
        >>> import restwell
        >>> from restwell.testing import MockRouter, patch_clients
        >>> router = MockRouter()
        >>> _ = router.get("/ping").respond(json={"pong": True})
        >>> with patch_clients(router):
        ...     with restwell.Client("https://api.example.com") as client:
        ...         client.get("/ping").json()
        {'pong': True}
    """
    if not (isinstance(transport, (httpx.BaseTransport, httpx.AsyncBaseTransport))):
        raise TypeError(f"patch_clients needs an httpx transport, got {type(transport).__name__}")
    with _LOCK:
        if not _ACTIVE:
            BaseClient._open_pool = _open_pool  # type: ignore[method-assign]
        _ACTIVE.append(transport)
    try:
        yield transport
    finally:
        with _LOCK:
            # The last occurrence: patches of one transport may nest.
            del _ACTIVE[len(_ACTIVE) - 1 - _ACTIVE[::-1].index(transport)]
            if not _ACTIVE:
                BaseClient._open_pool = _ORIGINAL  # type: ignore[method-assign]
