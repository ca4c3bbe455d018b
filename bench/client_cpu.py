"""CPU per call of a restwell client over a MockTransport: the runner the layer benchmarks share.

``bench/middleware.py`` and ``bench/ratelimit.py`` measure one client option against the
bare client with these two functions, so both sides of a comparison run the same loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

import restwell

BASE_URL = "https://api.example.com"
TRANSPORT = httpx.MockTransport(lambda request: httpx.Response(200, json={"id": 1}))
WARM_UP = 200


def sync_us(options: dict[str, Any], requests: int) -> float:
    """CPU µs per ``Client.get`` with ``options``, after a warm-up."""
    with restwell.Client(BASE_URL, transport=TRANSPORT, **options) as client:
        for _ in range(WARM_UP):
            client.get("/users/1")
        started = time.process_time()
        for _ in range(requests):
            client.get("/users/1")
        return (time.process_time() - started) / requests * 1e6


def async_us(options: dict[str, Any], requests: int) -> float:
    """CPU µs per ``AsyncClient.get`` with ``options``, after a warm-up."""

    async def main() -> float:
        async with restwell.AsyncClient(BASE_URL, transport=TRANSPORT, **options) as client:
            for _ in range(WARM_UP):
                await client.get("/users/1")
            started = time.process_time()
            for _ in range(requests):
                await client.get("/users/1")
            return (time.process_time() - started) / requests * 1e6

    return asyncio.run(main())


RUNNERS: dict[str, Callable[[dict[str, Any], int], float]] = {"sync": sync_us, "async": async_us}
