"""Benchmark: what the client-side rate limit costs, in one run.

Two figures, both CPU time (``time.process_time()``), so waiting costs nothing:

- ``acquire_us``: one :meth:`restwell.RateLimit.reserve` on the in-memory store that needs
  no wait (the limiter's own cost: a lock, a few float operations, one frozen record), and
  ``acquire_with_wait_us``, one that reserves a future slot (same work; nothing sleeps);
- ``sync_*`` / ``async_*``: CPU per call of a client on ``httpx.MockTransport`` (no
  network) with ``rate_limit=RateLimit(1e9)`` (never waits) and without, measured in
  interleaved rounds; ``*_added_us`` is the difference of medians, so drifts of the machine
  cancel out. It includes reading every response's headers for pauses and quotas.

- ``redis_*``: with Debian's ``redis-server`` on the PATH (started here on a free loopback
  port) and the ``redis`` package, the wall-clock latency of a ``Client.get`` on the mock
  transport with ``RateLimit(1e9, store=RedisStore(redis.Redis(...)))`` against the same call
  without a limit, sampled call by call: ``redis_acquire_p50_ms`` / ``_p99_ms`` are the
  percentiles of the call with the Redis limit minus the plain call's median, an upper bound
  on what one acquire through Redis (one EVALSHA round trip) costs.

Run it as ``python bench/ratelimit.py [--quick]``: 7 rounds (2 with ``--quick``) of 20,000
calls per side, and 200,000 bare acquires per round; 5,000 (1,000) calls per Redis side.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _latencies_ms(client: restwell.Client, calls: int) -> list[float]:
    for _ in range(200):
        client.get("/users/1")
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        client.get("/users/1")
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)


def _redis(calls: int) -> dict[str, float]:
    """Per-call latency with the limit on a loopback Redis, beside the plain call."""
    try:
        import redis  # noqa: PLC0415 - optional: only this section needs it
    except ImportError:
        return {}
    if shutil.which("redis-server") is None:
        return {}
    from client_cpu import BASE_URL, TRANSPORT  # noqa: PLC0415 - the same mock as the rest

    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        connection = redis.Redis(port=port, socket_timeout=1.0)
        for _ in range(100):
            try:
                connection.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        limit = restwell.RateLimit(1e9, store=restwell.RedisStore(connection))
        with restwell.Client(BASE_URL, transport=TRANSPORT) as plain_client:
            plain = _latencies_ms(plain_client, calls)
        with restwell.Client(BASE_URL, transport=TRANSPORT, rate_limit=limit) as limited_client:
            limited = _latencies_ms(limited_client, calls)
        connection.close()
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    def pct(samples: list[float], p: float) -> float:
        return samples[min(len(samples) - 1, int(p / 100 * len(samples)))]

    base = statistics.median(plain)
    return {
        "redis_plain_call_p50_ms": base,
        "redis_call_p50_ms": pct(limited, 50),
        "redis_call_p99_ms": pct(limited, 99),
        "redis_acquire_p50_ms": pct(limited, 50) - base,
        "redis_acquire_p99_ms": pct(limited, 99) - base,
    }


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
    figures.update(_redis(1000 if quick else 5000))
    return figures


if __name__ == "__main__":
    for key, value in run(quick="--quick" in sys.argv[1:]).items():
        print(f"  {key:<32} {value:10.3f}")
