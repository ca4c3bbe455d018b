"""What each process of a fleet test runs (tests/test_fleet.py starts them with ``spawn``).

Every function builds its own clients and its own :class:`restwell.RedisStore` on the redis-
server the test started, as a separate deployment of the same service would, and puts a
JSON-able summary on ``results``. Nothing here asserts: the test reads the summaries and the
test server's own records.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from functools import partial
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import redis
import redis.asyncio

import restwell


def _sync_store(redis_url: str) -> restwell.RedisStore:
    return restwell.RedisStore(redis.Redis.from_url(redis_url, socket_timeout=0.25))


def _async_store(redis_url: str) -> restwell.RedisStore:
    return restwell.RedisStore(redis.asyncio.Redis.from_url(redis_url, socket_timeout=0.25))


def _outcome(call: Any) -> str:
    """``"200"``, ``"429"`` ... or the name of the exception the call raised."""
    try:
        return str(call().status_code)
    except Exception as exc:  # every failure is reported, not raised: the test judges
        return type(exc).__name__


async def _aoutcome(call: Any) -> str:
    try:
        return str((await call()).status_code)
    except Exception as exc:  # as _outcome
        return type(exc).__name__


def run_quota(
    kind: str,
    server: str,
    path: str,
    redis_url: str,
    rate: float,
    workers: int,
    start_at: float,
    stop_at: float,
    results: Queue[dict[str, Any]],
) -> None:
    """``workers`` threads (``kind="sync"``) or tasks (``"async"``) GET ``path`` back to back
    from ``start_at`` to ``stop_at`` (wall clock) under one shared ``RateLimit(rate)``."""
    outcomes: Counter[str] = Counter()
    if kind == "sync":
        limit = restwell.RateLimit(rate, burst=1, store=_sync_store(redis_url))
        lock = threading.Lock()
        with restwell.Client(server, rate_limit=limit, retry=False, raise_for_status=False) as c:

            def worker() -> None:
                while time.time() < stop_at:
                    outcome = _outcome(lambda: c.get(path))
                    with lock:
                        outcomes[outcome] += 1

            time.sleep(max(0.0, start_at - time.time()))
            threads = [threading.Thread(target=worker) for _ in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    else:

        async def main() -> None:
            limit = restwell.RateLimit(rate, burst=1, store=_async_store(redis_url))
            async with restwell.AsyncClient(
                server, rate_limit=limit, retry=False, raise_for_status=False
            ) as c:

                async def worker() -> None:
                    while time.time() < stop_at:
                        outcomes[await _aoutcome(lambda: c.get(path))] += 1

                await asyncio.sleep(max(0.0, start_at - time.time()))
                await asyncio.gather(*(worker() for _ in range(workers)))

        asyncio.run(main())
    results.put({"kind": kind, "outcomes": dict(outcomes)})


def open_circuit(server: str, path: str, redis_url: str, results: Queue[dict[str, Any]]) -> None:
    """Fail ``path`` (a 503) until this process's breaker opens; report what it saw."""
    breaker = restwell.CircuitBreaker(failure_threshold=3, recovery_timeout=60.0,
                                      store=_sync_store(redis_url))  # fmt: skip
    seen = []
    with restwell.Client(server, circuit_breaker=breaker, retry=False) as client:
        for _ in range(4):
            seen.append(_outcome(lambda: client.get(path)))
    results.put({"outcomes": seen})


def call_once(
    kind: str, server: str, path: str, redis_url: str, results: Queue[dict[str, Any]]
) -> None:
    """One call through a breaker on the shared store: its outcome and how long it took."""
    started = time.perf_counter()
    if kind == "sync":
        breaker = restwell.CircuitBreaker(failure_threshold=3, recovery_timeout=60.0,
                                          store=_sync_store(redis_url))  # fmt: skip
        with restwell.Client(server, circuit_breaker=breaker, retry=False) as client:
            outcome = _outcome(lambda: client.get(path))
    else:

        async def main() -> str:
            breaker = restwell.CircuitBreaker(failure_threshold=3, recovery_timeout=60.0,
                                              store=_async_store(redis_url))  # fmt: skip
            async with restwell.AsyncClient(server, circuit_breaker=breaker, retry=False) as c:
                return await _aoutcome(lambda: c.get(path))

        outcome = asyncio.run(main())
    results.put({"kind": kind, "outcome": outcome, "seconds": time.perf_counter() - started})


def probe_trials(
    index: int,
    server: str,
    key: str,
    redis_url: str,
    trials: int,
    recovery: float,
    barrier: Barrier,
    results: Queue[dict[str, Any]],
) -> None:
    """Trial after trial, call a failing host at the same moment as the other processes.

    Trial 0 opens the circuit (every process fails). In each later trial the circuit is due
    for its half-open probe: exactly one call of the fleet may go, fails (503), and opens it
    again for ``recovery`` seconds; the others are refused. The server counts the calls
    that reached it per trial (``/flaky/{key}-{trial}``).
    """
    store = _sync_store(redis_url)
    breaker = restwell.CircuitBreaker(
        failure_threshold=1, recovery_timeout=recovery, half_open_max_calls=1, store=store
    )
    outcomes: Counter[str] = Counter()
    with restwell.Client(server, circuit_breaker=breaker, retry=False) as client:
        for trial in range(trials + 1):
            path = f"/flaky/{key}-{trial}"
            barrier.wait(timeout=60)
            outcome = _outcome(partial(client.get, path, params={"fail": 10**6}))
            if trial:
                outcomes[outcome] += 1
            barrier.wait(timeout=60)
            time.sleep(recovery * 1.2)  # the circuit is due for its probe again
    results.put({"index": index, "outcomes": dict(outcomes)})
