"""A response body served piece by piece, with pauses and failures: for mocks and replays.

One class serves both clients (it is both an ``httpx.SyncByteStream`` and an
``httpx.AsyncByteStream``): the sync client sleeps with ``time.sleep``, the async one with
``anyio.sleep`` (so it runs on asyncio and trio, and a deadline's cancel scope interrupts it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import anyio
import httpx

__all__ = ["Piece", "ScriptedStream"]

Piece = tuple[float, "bytes | Callable[[], BaseException]"]
"""``(seconds to wait first, the bytes to yield or a factory of the exception to raise)``."""


class ScriptedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Yield each piece's bytes after its pause; a piece that is an error raises it.

    Example:
        >>> stream = ScriptedStream([(0.0, b"a"), (0.0, b"b")])
        >>> list(stream)
        [b'a', b'b']
    """

    def __init__(self, pieces: Sequence[Piece]) -> None:
        self._pieces = tuple(pieces)

    def __iter__(self) -> Iterator[bytes]:
        for delay, item in self._pieces:
            if delay > 0:
                time.sleep(delay)
            if isinstance(item, bytes):
                yield item
            else:
                raise item()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for delay, item in self._pieces:
            if delay > 0:
                await anyio.sleep(delay)
            if isinstance(item, bytes):
                yield item
            else:
                raise item()
