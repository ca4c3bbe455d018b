"""Benchmark: restwell's own CPU per request, without a network, versus raw httpx.

``httpx.MockTransport`` answers in-process, so what is measured is the client library
alone: building the request, merging configuration, the send loop, the response wrapper,
``.json()``. Against a real server (``bench/run.py``) the same overhead is diluted in
socket and pool work and hidden by their noise; here it is the whole figure.

Run it as ``python bench/overhead.py [--quick]``; ``bench/run.py`` calls :func:`run`.
Each side runs 5 times (2 with ``--quick``), interleaved; medians of process CPU time.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

import restwell

BASE_URL = "https://api.example.com"


def _handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": 1, "name": "x" * 50})


TRANSPORT = httpx.MockTransport(_handler)


def _sync(make: Callable[[], Any], requests: int) -> float:
    with make() as client:
        for _ in range(200):
            client.get("/users/1").json()
        started = time.process_time()
        for _ in range(requests):
            client.get("/users/1").json()
        return (time.process_time() - started) / requests * 1e6


def _async(make: Callable[[], Any], requests: int) -> float:
    async def main() -> float:
        async with make() as client:
            for _ in range(200):
                (await client.get("/users/1")).json()
            started = time.process_time()
            for _ in range(requests):
                (await client.get("/users/1")).json()
            return (time.process_time() - started) / requests * 1e6

    return asyncio.run(main())


def run(quick: bool = False) -> dict[str, float]:
    """Median µs of CPU per request for each client, and the ratios restwell / httpx."""
    requests, rounds = (3000, 2) if quick else (20000, 5)
    sides: dict[str, Callable[[], float]] = {
        "sync_httpx_us": lambda: _sync(
            lambda: httpx.Client(base_url=BASE_URL, transport=TRANSPORT), requests
        ),
        "sync_restwell_us": lambda: _sync(
            lambda: restwell.Client(BASE_URL, transport=TRANSPORT), requests
        ),
        "async_httpx_us": lambda: _async(
            lambda: httpx.AsyncClient(base_url=BASE_URL, transport=TRANSPORT), requests
        ),
        "async_restwell_us": lambda: _async(
            lambda: restwell.AsyncClient(BASE_URL, transport=TRANSPORT), requests
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            samples[name].append(side())
    figures = {name: statistics.median(values) for name, values in samples.items()}
    figures["sync_ratio_restwell_over_httpx"] = (
        figures["sync_restwell_us"] / figures["sync_httpx_us"]
    )
    figures["async_ratio_restwell_over_httpx"] = (
        figures["async_restwell_us"] / figures["async_httpx_us"]
    )
    return figures


if __name__ == "__main__":
    for key, value in run(quick="--quick" in sys.argv[1:]).items():
        print(f"  {key:<36} {value:10.3f}")
