"""restwell against raw httpx, requests and aiohttp: client CPU per request, on one machine.

Run it as ``python bench/compare.py`` (``--quick`` for a short run). It needs ``requests``
and ``aiohttp`` besides restwell and httpx (``pip install requests aiohttp``); a client
whose library is missing is left out. It writes ``bench/results/compare.json``, which
``bench/plots.py`` turns into the plots of ``docs/benchmarks.md``.

The method is ``bench/run.py``'s, reused from it: a local uvicorn server in its own process
(``GET /json``, a ~100-byte JSON body), a fresh interpreter per measured run, process CPU
time per request (the client's own cost, not the server's), runs of the different clients
interleaved, medians of the runs. Every response body is decoded as JSON by every client.
Sync clients make sequential requests; async clients run 16 concurrent tasks on one
connection pool of 16.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import _child_env, running_server

RESULTS = Path(__file__).resolve().parent / "results" / "compare.json"
SYNC = ["httpx", "restwell", "requests"]
ASYNC = ["httpx", "restwell", "aiohttp"]
CONCURRENCY = 16
LIBRARIES = {"httpx": "httpx", "restwell": "restwell", "requests": "requests", "aiohttp": "aiohttp"}


def _sync_worker(kind: str, base_url: str, requests: int) -> float:
    if kind == "requests":
        import requests as library  # noqa: PLC0415

        session = library.Session()
        get = lambda path: session.get(base_url + path)  # noqa: E731
    elif kind == "httpx":
        import httpx  # noqa: PLC0415

        session = httpx.Client(base_url=base_url)
        get = session.get
    else:
        import restwell  # noqa: PLC0415

        session = restwell.Client(base_url)
        get = session.get
    with session:
        for _ in range(200):  # warm-up: connection, caches
            get("/json").json()
        started = time.process_time()
        for _ in range(requests):
            get("/json").json()
        return (time.process_time() - started) / requests * 1e6


async def _async_worker(kind: str, base_url: str, requests: int) -> float:
    per_task = requests // CONCURRENCY
    if kind == "aiohttp":
        import aiohttp  # noqa: PLC0415

        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(base_url, connector=connector) as session:

            async def one() -> None:
                async with session.get("/json") as response:
                    await response.json()

            return await _drive(one, per_task)
    if kind == "httpx":
        import httpx  # noqa: PLC0415

        limits = httpx.Limits(max_connections=CONCURRENCY)
        client: Any = httpx.AsyncClient(base_url=base_url, limits=limits)
    else:
        import restwell  # noqa: PLC0415

        limits = restwell.Limits(max_connections=CONCURRENCY)
        client = restwell.AsyncClient(base_url, limits=limits)
    async with client:

        async def one() -> None:
            (await client.get("/json")).json()

        return await _drive(one, per_task)


async def _drive(one: Any, per_task: int) -> float:
    async def task(count: int) -> None:
        for _ in range(count):
            await one()

    await asyncio.gather(*(task(20) for _ in range(CONCURRENCY)))  # warm-up
    started = time.process_time()
    await asyncio.gather(*(task(per_task) for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / (per_task * CONCURRENCY) * 1e6


def _installed(kind: str) -> str | None:
    try:
        return importlib.metadata.version(LIBRARIES[kind])
    except importlib.metadata.PackageNotFoundError:
        return None


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--worker", nargs=4, metavar=("MODE", "KIND", "URL", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        mode, kind, url, count = args.worker
        if mode == "sync":
            value = _sync_worker(kind, url, int(count))
        else:
            value = asyncio.run(_async_worker(kind, url, int(count)))
        print(json.dumps(value))
        return 0
    rounds = args.rounds or (2 if args.quick else 5)
    counts = {"sync": 500 if args.quick else 3000, "async": 1600 if args.quick else 8000}
    plan = [("sync", kind) for kind in SYNC] + [("async", kind) for kind in ASYNC]
    plan = [(mode, kind) for mode, kind in plan if _installed(kind)]
    runs: dict[str, list[float]] = {f"{mode}/{kind}": [] for mode, kind in plan}
    with running_server(None) as url:
        for round_ in range(rounds):
            order = plan if round_ % 2 == 0 else plan[::-1]  # interleaved, alternating
            for mode, kind in order:
                command = [sys.executable, __file__, "--worker", mode, kind, url, str(counts[mode])]
                output = subprocess.run(
                    command, check=True, capture_output=True, text=True, env=_child_env()
                ).stdout
                value = json.loads(output.strip().splitlines()[-1])
                runs[f"{mode}/{kind}"].append(value)
                print(f"round {round_ + 1}/{rounds} {mode:5} {kind:9} {value:7.1f} µs")
    results = {
        "machine": _machine(),
        "versions": {kind: _installed(kind) for kind in LIBRARIES},
        "method": "client CPU µs per request (median of runs); sync sequential, "
        f"async {CONCURRENCY} tasks; local uvicorn server, ~100-byte JSON body",
        "requests_per_run": counts,
        "results": {
            name: {"median_us": statistics.median(values), "runs_us": values}
            for name, values in runs.items()
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
