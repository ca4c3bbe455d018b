"""restwell's benchmark: the client-side CPU cost of a request, restwell versus raw httpx.

Run it as ``python bench/run.py`` (``--quick`` for a short smoke run, ``--json PATH`` to also
write the figures). It is a benchmark, not a test: it prints figures and never fails on them.

Method
------
* **A local server in its own process.** A minimal ASGI app (``GET /json`` returns a ~100-byte
  JSON body) runs under uvicorn (``http="h11"``, one worker, no access log) in a separate
  process, on a socket the parent binds to ``127.0.0.1:0`` and hands over, so the port is free
  and known before the server starts. The server's CPU is never counted. It is stopped at the
  end, also on Ctrl-C or an error, and it exits by itself if this process dies.
* **A fresh process per run.** Each measured run is a new interpreter that imports only the
  client it measures, so no run inherits another's warm caches, heap or garbage-collector
  state, and import and connection set-up stay outside the measurement (a warm-up precedes it).
* **Process CPU time, not wall time.** A run reports ``time.process_time()`` spent in its
  request loop divided by the number of requests. Waiting for the server or for the scheduler
  costs no CPU, so the figure is the client library's own cost, largely independent of how
  fast the server answers. Every request's body is decoded with ``.json()`` in both clients so
  both do the same work.
* **Interleaved runs.** The two sides alternate (and the side that goes first alternates from
  pair to pair), so a slow drift of the machine (frequency scaling, other load) hits both
  sides alike instead of biasing one.
* **Medians.** The table reports the median of each side's runs, and their ratio: a median
  ignores the odd run that another process disturbed, which a mean would absorb. The "pair
  ratio" column gives the median, lowest and highest restwell/baseline ratio of the pairs
  (the two runs of a pair ran back to back, under much the same conditions): a difference
  smaller than that spread is not a difference.
* **Pinning.** On a machine with two or more CPUs the server is pinned to one CPU and the
  measured clients to another (``--no-pin`` turns this off), so they do not compete.
* **Noise.** The run ends with the share of the machine's CPU that other processes took
  meanwhile (from ``/proc/stat``): on a shared machine, figures within a few per cent of each
  other are equal.
* **Async runs measure a steady state.** The 64 tasks run continuously; measuring starts
  after a settling time longer than the pools' 5 s keep-alive expiry. The per-request CPU of
  an ``AsyncClient`` is dominated by httpcore's connection pool, whose bookkeeping grows with
  the square of its idle connections, and the pool size follows the peak number of requests
  in flight over the last 5 s. So one server stall (another process taking its CPU) grows
  the pool and raises the client's CPU per request for 5 s, on either side: each async run
  prints the most pooled connections it saw, and the async line is the noisiest.

Comparisons: sync (``httpx.Client`` vs ``restwell.Client``, default configuration: the
default retry policy and timeout), async (``httpx.AsyncClient`` vs ``restwell.AsyncClient``,
64 concurrent tasks and a 64-connection pool on both sides), and the retry policy on the
success path (``restwell.Client(retry=False)`` vs the default ``Retry()``). If
``bench/sse_decoder.py`` exists and exposes ``run(events) -> dict[str, float]``, its figures
are printed too.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SSE_DECODER = BENCH_DIR / "sse_decoder.py"

PAYLOAD: dict[str, Any] = {
    "id": 12345,
    "name": "John Doe",
    "email": "john@example.com",
    "active": True,
    "roles": ["admin", "user"],
    "score": 98.5,
}
BODY = json.dumps(PAYLOAD, separators=(",", ":")).encode()
CONCURRENCY = 64
SYNC_TARGET = 1.05
ASYNC_TARGET = 1.05
RETRY_TARGET = 1.02
WORKER_TIMEOUT = 600.0
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")

# -- the server ---------------------------------------------------------------------------


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """A minimal ASGI app: ``GET /json`` returns :data:`BODY`, anything else 404."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/json":
        status, body = 200, BODY
    else:
        status, body = 404, b'{"error":"not found"}'
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve(fd: int, parent: int) -> None:
    """Serve :func:`app` on the listening socket ``fd`` until told to stop or orphaned."""
    import asyncio  # noqa: PLC0415 - server process only

    import uvicorn  # noqa: PLC0415

    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(
        app,
        http="h11",
        loop="asyncio",
        lifespan="off",
        log_level="warning",
        access_log=False,
        workers=1,
    )
    server = uvicorn.Server(config)

    async def watch_parent() -> None:
        while not server.should_exit:
            if os.getppid() != parent:  # the benchmark died without stopping us
                server.should_exit = True
            await asyncio.sleep(0.5)

    async def main() -> None:
        watcher = asyncio.ensure_future(watch_parent())
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    asyncio.run(main())


@contextlib.contextmanager
def running_server(cpu: int | None) -> Iterator[str]:
    """Start the server process; yield its base URL; stop it whatever happens."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    command = [sys.executable, __file__, "--serve", str(fd), "--parent", str(os.getpid())]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    # Own session: Ctrl-C reaches only this process, which then stops the server cleanly.
    process = subprocess.Popen(command, pass_fds=(fd,), start_new_session=True, env=_child_env())
    listener.close()
    with _serving(process, port) as base_url:
        yield base_url


_NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location = /json {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""


@contextlib.contextmanager
def running_nginx(cpu: int | None) -> Iterator[str]:
    """Start nginx (one process) answering ``GET /json`` with :data:`BODY`; yield its URL.

    Needs ``nginx`` on the PATH (Debian's package). No Python runs in the server's process,
    so the figures do not depend on how fast a Python server is.
    """
    import tempfile  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="restwell-bench-nginx-") as folder:
        conf = Path(folder) / "nginx.conf"
        body = BODY.decode().replace("\\", "\\\\").replace("'", "\\'")
        conf.write_text(_NGINX_CONF.format(dir=folder, port=port, body=body))
        command = ["nginx", "-c", str(conf), "-p", folder, "-e", f"{folder}/error.log"]
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]
        process = subprocess.Popen(command, start_new_session=True, env=_child_env())
        with _serving(process, port) as base_url:
            yield base_url


@contextlib.contextmanager
def _serving(process: subprocess.Popen[bytes], port: int) -> Iterator[str]:
    """Yield the server's URL once it answers; stop it whatever happens."""
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, process)
        yield base_url
    finally:
        _stop(process)


def _wait_until_serving(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20.0
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} at start-up")
        try:
            with opener.open(base_url + "/json", timeout=1.0) as response:
                if response.status == 200 and response.read() == BODY:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {base_url} did not answer within 20 s")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _child_env() -> dict[str, str]:
    """This environment minus proxy variables: every request must go straight to 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env["PYTHONHASHSEED"] = "0"
    return env


# -- the measured workers (each runs in a fresh process) ------------------------------------


def _measure(loop: Callable[[], None], requests: int) -> dict[str, float]:
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    loop()
    cpu1, wall1 = time.process_time(), time.perf_counter()
    return {
        "cpu_us_per_request": (cpu1 - cpu0) / requests * 1e6,
        "wall_s": wall1 - wall0,
        "requests_per_s": requests / (wall1 - wall0),
    }


def _check_first(status: int, data: object) -> None:
    if status != 200 or data != PAYLOAD:
        raise RuntimeError(f"unexpected first response: {status} {data!r}")


def _sync_client(kind: str, base_url: str) -> Any:
    if kind == "httpx":
        import httpx  # noqa: PLC0415 - a worker imports only the client it measures

        return httpx.Client(base_url=base_url)
    import restwell  # noqa: PLC0415

    if kind == "restwell":
        return restwell.Client(base_url)
    if kind == "restwell-retry-default":
        return restwell.Client(base_url, retry=restwell.Retry())
    if kind == "restwell-retry-off":
        return restwell.Client(base_url, retry=False)
    raise ValueError(f"unknown sync client {kind!r}")


def sync_worker(kind: str, base_url: str, requests: int, warmup: int) -> dict[str, float]:
    """Sequential GETs with one sync client; returns CPU µs per request."""
    with _sync_client(kind, base_url) as client:
        get = client.get
        first = get("/json")
        _check_first(first.status_code, first.json())
        for _ in range(warmup):
            get("/json").json()

        def loop() -> None:
            for _ in range(requests):
                get("/json").json()

        return _measure(loop, requests)


def _async_client(kind: str, base_url: str) -> Any:
    if kind == "httpx":
        import httpx  # noqa: PLC0415

        pool = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        return httpx.AsyncClient(base_url=base_url, limits=pool)
    import restwell  # noqa: PLC0415

    if kind == "restwell":
        limits = restwell.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        return restwell.AsyncClient(base_url, limits=limits)
    raise ValueError(f"unknown async client {kind!r}")


def _pool_size(client: Any) -> float:
    """How many connections the client's httpcore pool holds (NaN if it cannot be seen)."""
    pool = getattr(client, "_pool", client)  # restwell wraps an httpx client
    connections = getattr(getattr(getattr(pool, "_transport", None), "_pool", None),
                          "_connections", None)  # fmt: skip
    return float("nan") if connections is None else float(len(connections))


def async_worker(
    kind: str, base_url: str, requests: int, warmup: int, settle: float
) -> dict[str, float]:
    """``CONCURRENCY`` tasks sending GETs back to back on one async client, in steady state.

    The tasks run continuously. Measuring starts once ``warmup`` requests are done and
    ``settle`` seconds have passed, and stops at the request that completes ``requests``
    more. The settling matters: the pool opens ``CONCURRENCY`` connections when the tasks
    start, but a CPU-bound client has far fewer requests in flight afterwards, and the
    surplus connections linger until the keep-alive expiry (5 s in httpx and restwell)
    closes them. httpcore's pool does work proportional to the square of its idle
    connections on every request, so measuring across that transition would make a run's
    figure depend on when it started rather than on the client.
    """
    import asyncio  # noqa: PLC0415

    async def main() -> dict[str, float]:
        async with _async_client(kind, base_url) as client:
            get = client.get
            first = await get("/json")
            _check_first(first.status_code, first.json())
            done = 0
            target = -1  # the request count at which measuring stops, once known
            warmed, finished = asyncio.Event(), asyncio.Event()
            end: tuple[float, float] = (0.0, 0.0)
            stopping = False

            async def task() -> None:
                nonlocal done, end
                while not stopping:
                    (await get("/json")).json()
                    done += 1
                    if done == warmup:
                        warmed.set()
                    if done == target:
                        end = (time.process_time(), time.perf_counter())
                        finished.set()

            tasks = [asyncio.ensure_future(task()) for _ in range(CONCURRENCY)]
            try:
                await asyncio.sleep(settle)
                await warmed.wait()
                gc.collect()
                start, target = done, done + requests
                connections = _pool_size(client)  # the most seen while measuring
                cpu0, wall0 = time.process_time(), time.perf_counter()
                waiter = asyncio.ensure_future(finished.wait())
                while not waiter.done():
                    await asyncio.wait({waiter}, timeout=0.25)
                    connections = max(connections, _pool_size(client))
            finally:
                stopping = True
                await asyncio.gather(*tasks, return_exceptions=True)
            cpu1, wall1 = end
            measured = target - start
            return {
                "cpu_us_per_request": (cpu1 - cpu0) / measured * 1e6,
                "wall_s": wall1 - wall0,
                "requests_per_s": measured / (wall1 - wall0),
                "pool_connections": connections,
            }

    return asyncio.run(main())


def sse_worker(events: int) -> dict[str, float]:
    """Run ``bench/sse_decoder.py``'s ``run(events)`` and return its figures."""
    sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location("sse_decoder", SSE_DECODER)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {SSE_DECODER}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if not callable(run):
        raise RuntimeError("bench/sse_decoder.py has no run(events) function")
    figures = run(events)
    if not isinstance(figures, dict):
        raise RuntimeError(f"run() returned {type(figures).__name__}, not a dict")
    return {str(k): float(v) for k, v in figures.items()}


# -- the driver -----------------------------------------------------------------------------


@dataclass
class Plan:
    """How much to run."""

    pairs: int
    sync_requests: int
    sync_warmup: int
    async_requests: int
    async_warmup: int
    async_settle: float  # seconds: past the pools' 5 s keep-alive expiry for a steady state
    sse_events: int


FULL = Plan(pairs=5, sync_requests=3000, sync_warmup=200, async_requests=5120,
            async_warmup=256, async_settle=6.0, sse_events=20000)  # fmt: skip
QUICK = Plan(pairs=2, sync_requests=300, sync_warmup=50, async_requests=640,
             async_warmup=128, async_settle=0.5, sse_events=2000)  # fmt: skip


@dataclass
class Comparison:
    """One line of the table: a baseline and a candidate, run in interleaved pairs."""

    name: str
    mode: str  # "sync" or "async"
    baseline: str
    candidate: str
    target: float
    baseline_runs: list[float] = field(default_factory=list)
    candidate_runs: list[float] = field(default_factory=list)
    baseline_rps: list[float] = field(default_factory=list)
    candidate_rps: list[float] = field(default_factory=list)

    @property
    def baseline_us(self) -> float:
        return statistics.median(self.baseline_runs)

    @property
    def candidate_us(self) -> float:
        return statistics.median(self.candidate_runs)

    @property
    def ratio(self) -> float:
        return self.candidate_us / self.baseline_us

    @property
    def pair_ratios(self) -> list[float]:
        return [c / b for b, c in zip(self.baseline_runs, self.candidate_runs, strict=True)]

    @property
    def meets_target(self) -> bool:
        return self.ratio <= self.target

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            baseline_us_per_request=self.baseline_us,
            candidate_us_per_request=self.candidate_us,
            ratio=self.ratio,
            pair_ratios=self.pair_ratios,
            meets_target=self.meets_target,
        )
        return data


def _worker_command(args: Sequence[str], cpu: int | None) -> list[str]:
    command = [sys.executable, __file__, *args]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    return command


def _run_worker(args: Sequence[str], cpu: int | None) -> dict[str, float]:
    completed = subprocess.run(
        _worker_command(args, cpu),
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT,
        env=_child_env(),
        start_new_session=True,
        check=False,
    )
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"worker {' '.join(args)} failed ({completed.returncode}):\n{tail}")
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run_comparison(comparison: Comparison, plan: Plan, base_url: str, cpu: int | None) -> None:
    """Run ``plan.pairs`` interleaved pairs of fresh worker processes."""
    if comparison.mode == "sync":
        options = ["--requests", str(plan.sync_requests), "--warmup", str(plan.sync_warmup)]
    else:
        options = ["--requests", str(plan.async_requests), "--warmup", str(plan.async_warmup),
                   "--settle", str(plan.async_settle)]  # fmt: skip
    for pair in range(plan.pairs):
        sides = [(comparison.baseline, "baseline"), (comparison.candidate, "candidate")]
        if pair % 2:
            sides.reverse()
        for kind, side in sides:
            figures = _run_worker(
                ["--worker", comparison.mode, "--client", kind, "--url", base_url, *options], cpu
            )
            getattr(comparison, f"{side}_runs").append(figures["cpu_us_per_request"])
            getattr(comparison, f"{side}_rps").append(figures["requests_per_s"])
            print(
                f"  {comparison.mode:<5} {kind:<24} pair {pair + 1}/{plan.pairs}: "
                f"{figures['cpu_us_per_request']:8.1f} µs/req CPU "
                f"({figures['requests_per_s']:7.0f} req/s wall"
                + (
                    f", up to {figures['pool_connections']:.0f} pooled connections)"
                    if "pool_connections" in figures
                    else ")"
                ),
                flush=True,
            )


def run_sse(plan: Plan, cpu: int | None) -> dict[str, float] | str:
    """The SSE decoder figures, or the reason there are none."""
    if not SSE_DECODER.exists():
        return "bench/sse_decoder.py does not exist"
    try:
        return _run_worker(["--worker", "sse", "--events", str(plan.sse_events)], cpu)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return f"bench/sse_decoder.py failed: {exc}"


EXTRA_BENCHMARKS = {
    "overhead": "bench/overhead.py: the library alone (MockTransport), µs CPU per request",
    "streaming": "bench/streaming.py: iter_bytes MB/s vs raw httpx; SSE events/s vs httpx-sse",
    "json_decoding": "bench/json_decoding.py: 1 MB JSON body via Response.json(), orjson vs stdlib",
}


def run_extra(name: str, quick: bool) -> dict[str, float] | str:
    """Run ``bench/<name>.py``'s ``run(quick)`` in a fresh process; its figures or why not."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        f"import {name}; print(json.dumps({name}.run(quick=sys.argv[2] == '1')))"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, str(BENCH_DIR), "1" if quick else "0"],
            capture_output=True,
            text=True,
            timeout=1800,
            check=True,
        )
        figures = json.loads(result.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        return f"bench/{name}.py failed: {exc}"
    return {str(k): float(v) for k, v in figures.items()}


def _table(comparisons: Sequence[Comparison]) -> str:
    header = (
        f"{'comparison':<42} {'httpx/base':>11} {'restwell':>9} {'ratio':>7}  "
        f"{'pair ratio: median [min-max]':<29} {'target':<14}"
    )
    lines = [header, "-" * len(header)]
    for c in comparisons:
        ratios = c.pair_ratios
        verdict = "ok" if c.meets_target else "MISSED"
        lines.append(
            f"{c.name:<42} {c.baseline_us:11.1f} {c.candidate_us:9.1f} {c.ratio:6.3f}x  "
            f"{f'{statistics.median(ratios):.3f}x [{min(ratios):.2f}-{max(ratios):.2f}x]':<29} "
            f"<= {c.target:.2f}x {verdict}"
        )
    lines.append(
        "µs of client-process CPU per request, median of runs (lower is better); "
        "ratio = restwell / base;\nbase = httpx, except on the retry line: "
        "restwell.Client(retry=False) vs the default Retry()"
    )
    return "\n".join(lines)


class LoadMeter:
    """How much CPU other processes took while the benchmark ran: a measure of its noise.

    Reads the machine's busy and steal time from ``/proc/stat`` (Linux) and subtracts this
    process's and its reaped children's CPU time (workers and server), so it must be read
    after the server stopped. ``None`` figures where ``/proc/stat`` is missing.
    """

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _own_cpu() -> float:
        own = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            own += usage.ru_utime + usage.ru_stime
        return own

    @classmethod
    def _sample(cls) -> tuple[float, float | None, float | None, float]:
        wall, own = time.monotonic(), cls._own_cpu()
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return wall, None, None, own
        ticks = [int(value) for value in fields]
        hz = os.sysconf("SC_CLK_TCK")
        busy = (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / hz
        steal = ticks[7] / hz if len(ticks) > 7 else 0.0
        return wall, busy, steal, own

    def read(self) -> dict[str, float | None]:
        """Others' CPU and steal time as a share of the machine's capacity over the run."""
        wall0, busy0, steal0, own0 = self.start
        wall1, busy1, steal1, own1 = self._sample()
        capacity = (wall1 - wall0) * (os.cpu_count() or 1)
        if busy0 is None or busy1 is None or steal0 is None or steal1 is None:
            return {"others_share": None, "steal_share": None}
        others = max(busy1 - busy0 - (own1 - own0), 0.0)
        return {"others_share": others / capacity, "steal_share": (steal1 - steal0) / capacity}


def _pin_plan(pin: bool) -> tuple[int | None, int | None]:
    """(server CPU, client CPU), or Nones when pinning is off or impossible."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[-1], cpus[0]


def drive(args: argparse.Namespace) -> int:
    """Run every comparison and print (and optionally save) the figures."""
    plan = QUICK if args.quick else FULL
    if args.pairs is not None:
        plan = replace(plan, pairs=args.pairs)
    server_cpu, client_cpu = _pin_plan(not args.no_pin)
    comparisons = [
        Comparison("sync GET /json: httpx vs restwell.Client", "sync", "httpx", "restwell",
                   SYNC_TARGET),
        Comparison(f"async GET /json, c={CONCURRENCY}: httpx vs restwell", "async", "httpx",
                   "restwell", ASYNC_TARGET),
        Comparison("sync, retry on success: False vs Retry()", "sync", "restwell-retry-off",
                   "restwell-retry-default", RETRY_TARGET),
    ]  # fmt: skip
    import httpx  # noqa: PLC0415 - versions for the report only

    import restwell  # noqa: PLC0415

    print(
        f"restwell {restwell.__version__}, httpx {httpx.__version__}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{'quick' if args.quick else 'full'} run: {plan.pairs} pairs; "
        f"server CPU {server_cpu}, client CPU {client_cpu}",
        flush=True,
    )
    started = time.monotonic()
    meter = LoadMeter()
    with running_server(server_cpu) as base_url:
        print(f"server: uvicorn (h11, 1 worker) at {base_url}", flush=True)
        for comparison in comparisons:
            run_comparison(comparison, plan, base_url, client_cpu)
    load = meter.read()
    sse = run_sse(plan, client_cpu)

    print()
    print(_table(comparisons))
    if load["others_share"] is not None and load["steal_share"] is not None:
        print(
            f"noise: other processes used {load['others_share']:.0%} of the machine's CPU "
            f"during the measurements, hypervisor steal {load['steal_share']:.0%}"
            + (" (busy machine: trust the figures less)" if load["others_share"] > 0.05 else "")
        )
    print()
    if isinstance(sse, str):
        print(f"SSE decoder: skipped ({sse})")
    else:
        print(f"SSE decoder (bench/sse_decoder.py, {plan.sse_events} events):")
        for key, value in sse.items():
            print(f"  {key:<40} {value:14,.2f}")
    extras = {name: run_extra(name, args.quick) for name in EXTRA_BENCHMARKS}
    for name, figures in extras.items():
        print(f"\n{EXTRA_BENCHMARKS[name]}:")
        if isinstance(figures, str):
            print(f"  skipped ({figures})")
            continue
        for key, value in figures.items():
            print(f"  {key:<40} {value:14,.3f}")
    print(f"\ntotal time {time.monotonic() - started:.0f} s")

    if args.json:
        report = {
            "restwell": restwell.__version__,
            "httpx": httpx.__version__,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "plan": asdict(plan),
            "quick": args.quick,
            "pinned": {"server": server_cpu, "client": client_cpu},
            "noise": load,
            "comparisons": [c.as_dict() for c in comparisons],
            "sse": sse,
            "extras": extras,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line; run the benchmark, or one internal role of it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--pairs", type=int, help="pairs of runs per comparison (5; quick 2)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and clients")
    # Internal roles: the server process and the measured worker processes.
    internal = argparse.SUPPRESS
    parser.add_argument("--serve", type=int, help=internal)
    parser.add_argument("--parent", type=int, help=internal)
    parser.add_argument("--worker", choices=["sync", "async", "sse"], help=internal)
    parser.add_argument("--client", help=internal)
    parser.add_argument("--url", help=internal)
    parser.add_argument("--requests", type=int, help=internal)
    parser.add_argument("--warmup", type=int, default=0, help=internal)
    parser.add_argument("--settle", type=float, default=0.0, help=internal)
    parser.add_argument("--events", type=int, help=internal)
    parser.add_argument("--cpu", type=int, help=internal)
    args = parser.parse_args(argv)

    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    if args.serve is not None:
        serve(args.serve, args.parent)
        return 0
    if args.worker == "sse":
        print(json.dumps(sse_worker(args.events)))
        return 0
    if args.worker is not None:
        if args.worker == "sync":
            figures = sync_worker(args.client, args.url, args.requests, args.warmup)
        else:
            figures = async_worker(args.client, args.url, args.requests, args.warmup, args.settle)
        print(json.dumps(figures))
        return 0
    try:
        return drive(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
