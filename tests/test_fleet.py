"""A fleet of processes sharing rate limits and circuit breakers through a real Redis.

Each test starts separate processes (``multiprocessing`` with ``spawn``: fresh interpreters,
as separate deployments are) running :mod:`fleet_worker` against the suite's test server,
each with its own :class:`restwell.RedisStore` on one redis-server. The server's own records
(every arrival, per key) are the evidence.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import Counter
from typing import Any

import fleet_worker
from servers import RedisServer, TestApp

SPAWN = multiprocessing.get_context("spawn")


def run_processes(targets: list[tuple[Any, tuple[Any, ...]]], timeout: float) -> list[Any]:
    """Run each ``(function, args)`` in its own process; their results, once all are done."""
    results = SPAWN.Queue()
    processes = [SPAWN.Process(target=fn, args=(*args, results)) for fn, args in targets]
    for process in processes:
        process.start()
    collected = [results.get(timeout=timeout) for _ in processes]
    for process in processes:
        process.join(timeout=10)
        assert process.exitcode == 0, f"a fleet process exited with {process.exitcode}"
    return collected


def max_in_window(times: list[float], window: float) -> int:
    """The most arrivals in any half-open interval ``[t, t + window)``."""
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_four_processes_share_one_quota_without_a_429(
    server: str, server_app: TestApp, redis_url: str
) -> None:
    # The server allows 100 requests per sliding 10 s; the fleet's shared limit is 9.5/s.
    key = uuid.uuid4().hex
    path = f"/quota/{key}?limit=100&window=10"
    start = time.time() + 4.0  # the processes are up and connected by then
    stop = start + 11.0
    targets = [
        (fleet_worker.run_quota, (kind, server, path, redis_url, 9.5, 8, start, stop))
        for kind in ("sync", "sync", "async", "async")
    ]
    summaries = run_processes(targets, timeout=60)
    outcomes = sum((Counter(s["outcomes"]) for s in summaries), Counter())
    log = server_app.quota_log(key)
    arrivals = [t for t, _ in log]
    first = arrivals[0]
    assert outcomes == Counter({"200": len(log)}), outcomes  # no 429, no error, none lost
    assert max_in_window(arrivals, 10.0) <= 100
    used = sum(1 for t in arrivals if t < first + 10.0)
    assert used >= 90, f"only {used} of the quota's 100 requests in the first 10 s"
    print(f"{len(log)} requests from 4 processes: {used} in the first 10 s, at most "
          f"{max_in_window(arrivals, 10.0)} in any 10 s, none refused")  # fmt: skip
    assert {s["kind"] for s in summaries} == {"sync", "async"}


def test_a_circuit_opened_in_one_process_refuses_in_the_others(
    server: str, server_app: TestApp, redis_url: str
) -> None:
    (opener,) = run_processes(
        [(fleet_worker.open_circuit, (server, "/status/503", redis_url))], timeout=60
    )
    assert opener["outcomes"] == ["ServerError", "ServerError", "ServerError", "CircuitOpenError"]
    key = uuid.uuid4().hex
    others = run_processes(
        [(fleet_worker.call_once, (kind, server, f"/flaky/{key}", redis_url))
         for kind in ("sync", "async", "sync")],
        timeout=60,
    )  # fmt: skip
    assert [o["outcome"] for o in others] == ["CircuitOpenError"] * 3
    assert server_app.attempts_for(key)[0] == 0  # refused without a request


def test_eight_processes_make_exactly_one_half_open_probe_per_trial(
    server: str, server_app: TestApp, redis_url: str
) -> None:
    key, trials, processes = uuid.uuid4().hex, 200, 8
    barrier = SPAWN.Barrier(processes)
    targets = [
        (fleet_worker.probe_trials, (index, server, key, redis_url, trials, 0.15, barrier))
        for index in range(processes)
    ]
    summaries = run_processes(targets, timeout=300)
    probes = [server_app.attempts_for(f"{key}-{trial}")[0] for trial in range(1, trials + 1)]
    assert probes == [1] * trials, Counter(probes)
    print(f"{trials} trials of {processes} processes: probes per trial {Counter(probes)}")
    outcomes = sum((Counter(s["outcomes"]) for s in summaries), Counter())
    assert outcomes == Counter(ServerError=trials, CircuitOpenError=trials * (processes - 1))


def test_redis_killed_mid_run_loses_no_request_and_the_limits_come_back(
    server: str, server_app: TestApp, private_redis: RedisServer
) -> None:
    key = uuid.uuid4().hex
    path = f"/quota/{key}?limit=100000&window=10"
    rate = 20.0
    start = time.time() + 4.0
    down_at, up_at, stop = start + 3.0, start + 5.0, start + 9.0
    targets = [
        (fleet_worker.run_quota, (kind, server, path, private_redis.url, rate, 8, start, stop))
        for kind in ("sync", "sync", "async", "async")
    ]
    results = SPAWN.Queue()
    procs = [SPAWN.Process(target=fn, args=(*args, results)) for fn, args in targets]
    for process in procs:
        process.start()
    time.sleep(max(0.0, down_at - time.time()))
    private_redis.stop()
    time.sleep(max(0.0, up_at - time.time()))
    private_redis.start()
    summaries = [results.get(timeout=60) for _ in procs]
    for process in procs:
        process.join(timeout=10)
    outcomes = sum((Counter(s["outcomes"]) for s in summaries), Counter())
    assert set(outcomes) == {"200"}, outcomes  # no Redis error, no lost request
    now_to_monotonic = time.monotonic() - time.time()
    log = [t - now_to_monotonic for t, _ in server_app.quota_log(key)]  # wall-clock times
    recovered = [t for t in log if up_at + 1.0 <= t < stop]
    # Shared again within a second of Redis returning: the fleet's rate, not 4 processes'.
    assert len(recovered) <= rate * (stop - up_at - 1.0) + 3
    before = [t for t in log if start + 0.5 <= t < down_at]
    assert len(before) <= rate * (down_at - start - 0.5) + 3
    down = [t for t in log if down_at <= t < up_at]
    print(f"{sum(outcomes.values())} calls, all 200; per second: {len(before) / 2.5:.1f} "
          f"before the kill, {len(down) / 2:.1f} while Redis was down (local limits), "
          f"{len(recovered) / 3:.1f} from 1 s after the restart")  # fmt: skip
