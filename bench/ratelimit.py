"""Benchmark: what the client-side rate limit costs, in one run.

Two figures, both CPU time (``time.process_time()``), so waiting costs nothing:

- ``acquire_us``: one :meth:`restwell.RateLimit.reserve` on the in-memory store that needs
  no wait (the limiter's own cost: a lock, a few float operations, one frozen record), and
  ``acquire_with_wait_us``, one that reserves a future slot (same work; nothing sleeps);
- ``sync_*`` / ``async_*``: CPU per call of a client on ``httpx.MockTransport`` (no
  network) with ``rate_limit=RateLimit(1e9)`` (never waits) and without, measured in
  interleaved rounds; ``*_added_us`` is the difference of medians, so drifts of the machine
  cancel out. It includes reading every response's headers for pauses and quotas.

Run it as ``python bench/ratelimit.py [--quick]``: 7 rounds (2 with ``--quick``) of 20,000
calls per side, and 200,000 bare acquires per round.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from client_cpu import RUNNERS

import restwell

SIDES: dict[str, Callable[[], dict[str, Any]]] = {
    "plain": dict,
    "rate_limit": lambda: {"rate_limit": restwell.RateLimit(1e9)},
}


def _acquire(count: int, *, wait: bool) -> float:
    # rate 1e9 never waits; rate 1 with burst 1 hands out slots ever further ahead.
    limit = restwell.RateLimit(1, burst=1) if wait else restwell.RateLimit(1e9)
    reserve = limit.reserve
    now = time.monotonic()
    started = time.process_time()
    for _ in range(count):
        reserve("api.example.com:443", now)
    return (time.process_time() - started) / count * 1e6


def run(quick: bool = False) -> dict[str, float]:
    """Median µs of each measure, and the rate limit's added µs per call."""
    requests, rounds, acquires = (3000, 2, 50_000) if quick else (20000, 7, 200_000)
    runners = RUNNERS
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        samples.setdefault("acquire_us", []).append(_acquire(acquires, wait=False))
        samples.setdefault("acquire_with_wait_us", []).append(_acquire(acquires, wait=True))
        for flavour, runner in runners.items():
            for side, options in SIDES.items():
                samples.setdefault(f"{flavour}_{side}_us", []).append(runner(options(), requests))
    figures = {name: statistics.median(values) for name, values in samples.items()}
    for flavour in runners:
        figures[f"{flavour}_rate_limit_added_us"] = (
            figures[f"{flavour}_rate_limit_us"] - figures[f"{flavour}_plain_us"]
        )
    return figures


if __name__ == "__main__":
    for key, value in run(quick="--quick" in sys.argv[1:]).items():
        print(f"  {key:<32} {value:10.3f}")
