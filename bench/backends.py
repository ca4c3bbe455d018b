"""Async backends under load: requests per second and CPU per request, against raw clients.

Run from the repository root (``--quick`` for a smoke run)::

    PYTHONPATH=src python bench/backends.py [--quick] [--rounds N]

Method: a local server in its own process (with two or more CPUs, pinned to another CPU than
the clients) answers ``GET /json`` for every run: nginx when the machine has it (``--server
nginx``, Debian's package), else the uvicorn app of ``bench/run.py`` (``--server uvicorn``),
which is slower than the fastest client here and so sets the pace for it. Each run is a
fresh interpreter that imports only the client it measures, keeps ``concurrency`` tasks
sending GETs back to back (each body decoded with ``.json()``), and after a warm-up measures
``requests`` of them: wall-clock requests per second and process CPU per request. Runs of
all the clients alternate round by round (so a drift of the machine hits every client
alike) and the table gives the medians and each candidate's ratio to its baseline: the
aiohttp backend against raw aiohttp, the default backend against raw httpx.

Kinds: ``aiohttp`` (raw ``aiohttp.ClientSession``), ``restwell-aiohttp``
(``AsyncClient(backend="aiohttp")``), ``httpx`` (raw ``httpx.AsyncClient``), ``restwell``
(``AsyncClient()``), and ``restwell-nosniffio`` (``AsyncClient()`` with ``import sniffio``
failing, as it does where anyio >= 4.16 did not pull sniffio in).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from run import BODY, PAYLOAD, _child_env, running_nginx, running_server  # noqa: E402

KINDS = ("aiohttp", "restwell-aiohttp", "httpx", "restwell", "restwell-nosniffio")
PAIRS = {"restwell-aiohttp": "aiohttp", "restwell": "httpx", "restwell-nosniffio": "httpx"}


class _NoSniffio:
    """A meta-path finder that makes ``import sniffio`` fail after a real search of the path."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "sniffio":
            from importlib.machinery import PathFinder  # noqa: PLC0415

            PathFinder.find_spec("sniffio_not_installed")  # the cost of a failed search
            raise ModuleNotFoundError("No module named 'sniffio'", name="sniffio")


def _client(kind: str, base_url: str, concurrency: int) -> Any:
    if kind == "httpx":
        import httpx  # noqa: PLC0415 - a worker imports only the client it measures

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        return httpx.AsyncClient(base_url=base_url, limits=limits)
    if kind == "aiohttp":
        import aiohttp  # noqa: PLC0415

        connector = aiohttp.TCPConnector(limit=concurrency)
        return aiohttp.ClientSession(base_url, connector=connector)
    if kind == "restwell-nosniffio":
        sys.modules.pop("sniffio", None)
        sys.meta_path.insert(0, _NoSniffio())  # type: ignore[arg-type]
    import restwell  # noqa: PLC0415

    limits = restwell.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    if kind == "restwell-aiohttp":
        return restwell.AsyncClient(base_url, limits=limits, backend="aiohttp")
    return restwell.AsyncClient(base_url, limits=limits)


def worker(
    kind: str, base_url: str, concurrency: int, requests: int, warmup: int
) -> dict[str, float]:
    """``concurrency`` tasks sending GETs back to back; the figures of ``requests`` of them."""
    import asyncio  # noqa: PLC0415

    raw_aiohttp = kind == "aiohttp"

    async def main() -> dict[str, float]:
        async with _client(kind, base_url, concurrency) as client:
            if raw_aiohttp:

                async def get() -> Any:
                    async with client.get("/json") as response:
                        return await response.json()
            else:

                async def get() -> Any:
                    return (await client.get("/json")).json()

            if await get() != PAYLOAD:
                raise RuntimeError("unexpected first response")
            done = 0
            total = warmup + requests
            started = asyncio.Event()
            start: tuple[float, float] = (0.0, 0.0)
            end: tuple[float, float] = (0.0, 0.0)

            async def task() -> None:
                nonlocal done, start, end
                while done < total:
                    await get()
                    done += 1
                    if done == warmup:
                        start = (time.process_time(), time.perf_counter())
                        started.set()
                    elif done == total:
                        end = (time.process_time(), time.perf_counter())

            await asyncio.gather(*(task() for _ in range(concurrency)))
            cpu = end[0] - start[0]
            wall = end[1] - start[1]
            return {"rps": requests / wall, "cpu_us": cpu / requests * 1e6}

    return asyncio.run(main())


def _run_worker(
    kind: str, base_url: str, concurrency: int, requests: int, warmup: int
) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", kind, base_url, str(concurrency),
               str(requests), str(warmup)]  # fmt: skip
    env = _child_env()
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if len(cpus) >= 2:
        command = ["taskset", "-c", str(min(cpus)), *command]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{out.stderr}")
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    """Run every kind at each concurrency, round after round, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--concurrency", default="64,256")
    parser.add_argument("--worker", nargs=5, metavar="ARG")
    default_server = "nginx" if shutil.which("nginx") else "uvicorn"
    parser.add_argument("--server", choices=("nginx", "uvicorn"), default=default_server)
    args = parser.parse_args()
    if args.worker:
        kind, base_url, concurrency, requests, warmup = args.worker
        print(json.dumps(worker(kind, base_url, int(concurrency), int(requests), int(warmup))))
        return
    rounds = args.rounds or (1 if args.quick else 5)
    requests, warmup = (1000, 200) if args.quick else (6000, 1000)
    kinds = args.kinds.split(",")
    levels = [int(level) for level in args.concurrency.split(",")]
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    server_cpu = max(cpus) if len(cpus) >= 2 else None
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    running = running_nginx if args.server == "nginx" else running_server
    with running(server_cpu) as base_url:
        assert BODY
        for round_ in range(rounds):
            for level in levels:
                for kind in kinds if round_ % 2 == 0 else reversed(kinds):
                    figures = _run_worker(kind, base_url, level, requests, warmup)
                    results.setdefault((kind, level), []).append(figures)
    print(f"{rounds} round(s), {requests} measured requests per run (medians), {args.server}")
    header = ("client", "tasks", "req/s", "CPU µs/req", "ratio req/s", "ratio CPU")
    print("{:<22}{:>6}{:>10}{:>12}{:>13}{:>11}".format(*header))
    for level in levels:
        for kind in kinds:
            runs = results[(kind, level)]
            rps = statistics.median(r["rps"] for r in runs)
            cpu = statistics.median(r["cpu_us"] for r in runs)
            ratio = ""
            base = PAIRS.get(kind)
            if base in kinds:
                base_runs = results[(base, level)]
                base_rps = statistics.median(r["rps"] for r in base_runs)
                base_cpu = statistics.median(r["cpu_us"] for r in base_runs)
                ratio = f"{rps / base_rps:>12.2f}x{cpu / base_cpu:>10.2f}x  vs {base}"
            print(f"{kind:<22}{level:>6}{rps:>10.0f}{cpu:>12.0f} {ratio}")


if __name__ == "__main__":
    main()
