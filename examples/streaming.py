"""Streaming with restwell: downloads with a progress bar, resumable downloads, streamed
uploads with progress, and a server-sent event stream that reconnects.

Run it with ``python examples/streaming.py``; it needs nothing but restwell and the standard
library (the API below is ``http.server`` in a thread). With tqdm installed, the progress
callback plugs straight into a bar: see ``tqdm_progress``.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import restwell

FILE = bytes(range(256)) * 4096  # 1 MiB
CONNECTIONS: list[str | None] = []


class API(BaseHTTPRequestHandler):
    """A file that honours Range, an upload sink and an event stream that drops."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the output to restwell's story."""

    def do_GET(self) -> None:
        if self.path == "/file":
            start = int((self.headers.get("Range") or "bytes=0-")[6:].rstrip("-"))
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(FILE) - 1}/{len(FILE)}")
            self.send_header("Content-Length", str(len(FILE) - start))
            self.end_headers()
            self.wfile.write(FILE[start:])
        elif self.path == "/events":
            last_id = self.headers.get("Last-Event-ID")
            CONNECTIONS.append(last_id)
            if int(last_id or 0) >= 4:
                self.send_response(204)  # "stop reconnecting"
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            first = int(last_id or 0) + 1
            body = "retry: 100\n" + "".join(
                f'id: {n}\nevent: tick\ndata: {{"n": {n}}}\n\n' for n in range(first, first + 2)
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")  # the stream ends: the client reconnects
            self.end_headers()
            self.wfile.write(body.encode())
            self.close_connection = True

    def do_PUT(self) -> None:
        received = 0
        if self.headers.get("Transfer-Encoding") == "chunked":
            while size := int(self.rfile.readline(), 16):
                received += len(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
        else:
            received = len(self.rfile.read(int(self.headers["Content-Length"])))
        body = str(received).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), API)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def text_bar(label: str) -> restwell.ProgressCallback:
    """A progress callback that prints a bar at 0%, 50% and 100%."""
    shown: set[int] = set()

    def progress(done: int, total: int | None) -> None:
        if total:
            percent = done * 100 // total
            step = percent // 50 * 50
            if step not in shown:
                shown.add(step)
                print(f"  {label} [{'#' * (step // 10):<10}] {step:3d}% of {total} bytes")

    return progress


def tqdm_progress() -> restwell.ProgressCallback:
    """The same callback with tqdm: ``bar.total`` may arrive with the first call."""
    from tqdm import tqdm  # noqa: PLC0415 - optional

    bar = tqdm(unit="B", unit_scale=True)

    def progress(done: int, total: int | None) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return progress


def main() -> None:
    with serve() as url, restwell.Client(url) as client, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("1. download() with a progress bar, written atomically:")
        path = client.download("/file", folder / "file.bin", progress=text_bar("download"))
        names = sorted(p.name for p in folder.iterdir())
        print(f"  saved {path.name}: {path.stat().st_size} bytes; the folder holds {names}")

        print("2. resume=True continues a partial file with a Range request:")
        (folder / ".again.bin.part").write_bytes(FILE[:600_000])
        path = client.download(
            "/file", folder / "again.bin", resume=True, progress=text_bar("resume")
        )
        print(f"  complete and identical: {path.read_bytes() == FILE}")

        print("3. streamed uploads: a file (Content-Length) and a generator (chunked):")
        source = folder / "upload.bin"
        source.write_bytes(FILE)
        with source.open("rb") as file:
            body = restwell.Upload(file, progress=text_bar("upload"))
            print(f"  server received {client.put('/upload', content=body).json()} bytes")
        chunks = (FILE[i : i + 65536] for i in range(0, len(FILE), 65536))
        print(f"  server received {client.put('/upload', content=chunks).json()} bytes (chunked)")

        print("4. server-sent events; the stream ends twice and the client reconnects:")
        with closing(client.events("/events")) as events:
            for event in events:
                print(f"  {event.event} id={event.id} n={event.json()['n']}")
        print(f"  Last-Event-ID sent on each connection: {CONNECTIONS}")

    async def async_events() -> list[str | None]:
        CONNECTIONS.clear()
        with serve() as url:
            async with restwell.AsyncClient(url) as client:
                return [event.id async for event in client.events("/events")]

    print("5. the same with AsyncClient:", asyncio.run(async_events()))


if __name__ == "__main__":
    main()
