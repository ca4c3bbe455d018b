"""A tour of restwell: starts a small local API and walks through what restwell can do.

Run it with ``python examples/tour.py``; it needs nothing but restwell and the standard
library (the API below is ``http.server`` in a thread).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import restwell

USERS = {123: {"id": 123, "name": "Ada Lovelace"}}
ATTEMPTS: Counter[str] = Counter()


class API(BaseHTTPRequestHandler):
    """A tiny JSON API with the failures a real one has now and then."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the tour's output to restwell's story."""

    def send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = url.path.strip("/").split("/")
        if parts[0] == "users" and len(parts) == 2:
            user = USERS.get(int(parts[1])) if parts[1].isdigit() else None
            if user is None:
                self.send_json(404, {"error": "no such user"})
            else:
                self.send_json(200, user)
        elif parts[0] == "flaky":
            ATTEMPTS[url.path] += 1
            if ATTEMPTS[url.path] < 3:
                self.send_json(503, {"error": "busy"}, {"Retry-After": "0"})
            else:
                self.send_json(200, {"attempts": ATTEMPTS[url.path]})
        elif parts[0] == "slow":
            time.sleep(float(query.get("seconds", ["1"])[0]))
            self.send_json(200, {"slept": True})
        elif parts[0] == "large-file":
            size = 1_000_000
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for _ in range(size // 50_000):
                self.wfile.write(b"x" * 50_000)
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.send_json(
            201, {"id": 124, **body, "idempotency_key": self.headers.get("Idempotency-Key")}
        )


class QuietServer(ThreadingHTTPServer):
    """A client that gave up (the deadline step) is expected here, not an error to print."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@contextmanager
def local_api() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), API)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def step(title: str) -> None:
    print(f"\n== {title}")


def sync_tour(base_url: str) -> None:
    with restwell.Client(base_url=base_url, api_key="demo-key") as client:
        step("GET a JSON resource")
        user = client.get("/users/123").json()
        print(f"client.get('/users/123').json() -> {user}")

        step("POST JSON, with an idempotency key so it may be retried safely")
        created = client.post("/users", json={"name": "John Doe"}, idempotency_key=True)
        print(f"{created.status_code} {created.reason_phrase} -> {created.data}")

        step("Errors are typed and say what happened")
        try:
            client.get("/users/9")
        except restwell.NotFoundError as exc:
            print(f"{type(exc).__name__}: {exc}")
            print(f"  .status_code={exc.status_code} .body={exc.body}")
        print(f"allow_status={{404}} instead: {client.get('/users/9', allow_status={404})}")

        step("Transient failures are retried with backoff and Retry-After")
        fast = restwell.Retry(max_retries=3, backoff_factor=0.05)
        response = client.get("/flaky/tour", retry=fast)
        print(f"{response} after {response.attempts} attempts: {response.json()}")

        step("One total deadline for the whole call")
        try:
            client.get("/slow", params={"seconds": "2"}, timeout=restwell.Timeout(total=0.5))
        except restwell.TimeoutError as exc:
            print(f"TimeoutError(kind={exc.kind!r}): {exc}")

        step("Streaming a large body in fixed-size chunks, with progress")
        seen: list[int] = []

        def progress(done: int, total: int | None) -> None:
            seen.append(done)

        with client.stream("GET", "/large-file", progress=progress) as streamed:
            sizes = [len(chunk) for chunk in streamed.iter_bytes(chunk_size=65536)]
        print(
            f"{len(sizes)} chunks of {sizes[0]} bytes (last {sizes[-1]}); "
            f"progress reached {seen[-1]:,} bytes"
        )

        step("Downloads are atomic: a temporary file renamed into place when complete")
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "large-file.bin"
            client.download("/large-file", target)
            print(
                f"downloaded {target.stat().st_size:,} bytes to {target.name}; "
                f"files in the folder: {sorted(p.name for p in Path(folder).iterdir())}"
            )

        step("Logging: one INFO line per call, secrets redacted")
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("  log: %(levelname)s %(message)s"))
        log = logging.getLogger("restwell")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        try:
            client.get("/users/123", params={"api_key": "s3cr3t-in-the-query"})
        finally:
            log.removeHandler(handler)
            log.setLevel(logging.NOTSET)

        step("with_options(): another configuration on the same connection pool")
        patient = client.with_options(timeout=60, retry=5)
        print(
            f"{patient!r}: read timeout {patient.timeout.read}s, "
            f"{patient.retry.max_retries} retries"
        )


async def async_tour(base_url: str) -> None:
    step("AsyncClient: the same API with await, many calls at once")
    async with restwell.AsyncClient(base_url=base_url) as client:
        responses = await asyncio.gather(*(client.get("/users/123") for _ in range(20)))
        print(f"{len(responses)} concurrent GETs -> {sorted({r.status_code for r in responses})}")


def main() -> None:
    print(f"restwell {restwell.__version__}: a tour against a local API")
    with local_api() as base_url:
        print(f"local API at {base_url}")
        sync_tour(base_url)
        asyncio.run(async_tour(base_url))
    print("\nDone.")


if __name__ == "__main__":
    main()
