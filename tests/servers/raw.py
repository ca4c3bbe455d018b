"""A raw-socket HTTP/1.1 peer that misbehaves on purpose.

`RawServer` listens on 127.0.0.1 (port chosen by the OS), reads one request head per connection
and then behaves according to the request path:

- ``/reset``: closes with ``SO_LINGER`` 0 before answering, so the client sees a reset.
- ``/close``: closes cleanly (FIN) without answering.
- ``/truncated``: answers ``Content-Length: 100`` and sends 10 bytes, then closes;
  ``/truncated-404`` does the same with a 404 status.
- ``/stall``: reads the request and sends nothing until the client leaves or the server stops.
- ``/garbage``: answers ``NOT HTTP\\r\\n\\r\\n``.
- ``/trickle-headers``: sends the status line one byte every 0.2 s (``?interval=`` changes
  it), then the rest of a valid response.
- ``/sse-drop``: an event stream cut short: ``Content-Length: 1000``, one event (``retry: 50``,
  ``id`` one more than the request's ``Last-Event-ID``, ``data: last-event-id=<received>``),
  then a close; a ``204`` once the request's ``Last-Event-ID`` is ``3``.
- ``/cut-once?key=K&n=N&cut=C``: a download whose body breaks once: the first request for
  ``K`` answers ``200`` with ``Content-Length: N``, ``ETag: "v1"`` and
  ``Last-Modified``, sends ``C`` bytes of the pattern (byte ``i`` is ``i % 251``) and closes;
  a request with ``Range: bytes=X-`` (and an ``If-Range`` that matches, or none) gets a
  ``206`` with the rest; any other gets the whole body. ``&changed=1``: from the second
  request on the ETag is ``"v2"`` (the file changed); ``&weak=1``: the ETag is weak;
  ``&cuts=M``: the body breaks (after ``C`` bytes) for the first ``M`` requests, ranges
  included (without it: the first request only).
- ``/ok``: a valid ``200`` response (``Connection: close``), to check the server itself.
- anything else: a valid ``404``.

Every wait is on a selector that also watches a wake-up socket, so `RawServer.stop` (and
leaving the ``with`` block) ends every thread promptly without sleeping or polling; each
connection's thread closes its own socket.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

__all__ = ["RawServer"]

#: A safety net against a thread blocking forever in a send, and the join timeout at stop.
THREAD_TIMEOUT = 10.0
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024

STATUS_LINE = b"HTTP/1.1 200 OK\r\n"


class RawServer:
    """A threaded raw-socket server for misbehaving-peer tests; use it as a context manager.

    Attributes:
        url: The base URL, e.g. ``"http://127.0.0.1:54321"`` (available once started).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._connections = 0
        self._paths: list[str] = []
        self._heads: list[bytes] = []
        self._keys: dict[str, int] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> RawServer:
        """Bind, listen and start accepting; returns ``self``."""
        if self._listener is not None:
            raise RuntimeError("RawServer already started")
        self._wake_r, self._wake_w = socket.socketpair()
        try:
            self._listener = socket.create_server(("127.0.0.1", 0))
        except BaseException:
            self._close_wake()
            raise
        port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="raw-server-accept", daemon=True
        )
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end every connection, join every thread and close every socket."""
        if self._listener is None or self._stopping.is_set():
            return
        self._stopping.set()
        assert self._wake_w is not None
        # Nobody reads the wake-up socket: one byte keeps it readable for every selector.
        self._wake_w.send(b"x")
        stuck: list[str] = []
        if self._acceptor is not None:
            self._acceptor.join(THREAD_TIMEOUT)
            if self._acceptor.is_alive():
                stuck.append(self._acceptor.name)
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(THREAD_TIMEOUT)
            if thread.is_alive():
                stuck.append(thread.name)
        if stuck:
            raise RuntimeError(f"RawServer threads did not stop: {stuck}")
        self._close_wake()

    def __enter__(self) -> RawServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _close_wake(self) -> None:
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    # -- observation ----------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """How many connections have been accepted since the server started."""
        with self._lock:
            return self._connections

    @property
    def paths(self) -> list[str]:
        """The request targets received so far (path and query), in order."""
        with self._lock:
            return list(self._paths)

    @property
    def heads(self) -> list[bytes]:
        """The request heads received so far (request line and headers), in order."""
        with self._lock:
            return list(self._heads)

    def wait_for_requests(self, count: int, timeout: float = THREAD_TIMEOUT) -> bool:
        """Wait until ``count`` request heads in all have been read; ``False`` on timeout."""
        with self._received:
            return self._received.wait_for(lambda: len(self._paths) >= count, timeout)

    # -- serving --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        assert self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                events = selector.select()
                if self._stopping.is_set():
                    return
                if not events:
                    continue
                try:
                    conn, _ = self._listener.accept()
                except (BlockingIOError, ConnectionAbortedError):
                    continue
                thread = threading.Thread(
                    target=self._serve_connection, args=(conn,), name="raw-server-conn", daemon=True
                )
                with self._lock:
                    self._connections += 1
                    self._threads = [t for t in self._threads if t.is_alive()]
                    self._threads.append(thread)
                thread.start()

    def _serve_connection(self, conn: socket.socket) -> None:
        assert self._wake_r is not None
        with conn, selectors.DefaultSelector() as selector:
            conn.settimeout(THREAD_TIMEOUT)
            selector.register(conn, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            # An OSError means the client went away: nothing is left to do but close.
            with contextlib.suppress(OSError):
                self._handle(conn, selector)

    def _wait_readable(self, selector: selectors.BaseSelector) -> bool:
        """Wait until the client socket is readable; ``False`` when the server is stopping."""
        events = selector.select()
        return not self._stopping.is_set() and all(
            key.fileobj is not self._wake_r for key, _ in events
        )

    def _read_head(
        self, conn: socket.socket, selector: selectors.BaseSelector
    ) -> tuple[bytes, bytes] | None:
        """Read up to the end of the request head; return ``(head, rest)`` or ``None``."""
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > MAX_HEAD or not self._wait_readable(selector):
                return None
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return head, rest

    def _read_body(
        self, conn: socket.socket, selector: selectors.BaseSelector, head: bytes, rest: bytes
    ) -> bool:
        """Consume a Content-Length body, so that closing never resets because of unread data."""
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                length = min(int(value), MAX_BODY)
        received = len(rest)
        while received < length:
            if not self._wait_readable(selector):
                return False
            chunk = conn.recv(65536)
            if not chunk:
                return False
            received += len(chunk)
        return True

    def _handle(self, conn: socket.socket, selector: selectors.BaseSelector) -> None:
        request = self._read_head(conn, selector)
        if request is None:
            return
        head, rest = request
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        target = parts[1] if len(parts) == 3 else "/"
        with self._received:
            self._paths.append(target)
            self._heads.append(head)
            self._received.notify_all()
        split = urlsplit(target)
        path, query = split.path, dict(parse_qsl(split.query))

        if path == "/reset":
            # SO_LINGER with a zero timeout turns close() into a RST.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if not self._read_body(conn, selector, head, rest):
            return
        if path == "/close":
            return
        if path in ("/truncated", "/truncated-404"):
            status = b"404 Not Found" if path.endswith("404") else b"200 OK"
            conn.sendall(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: 100\r\n\r\n" + b"0123456789"
            )
            conn.shutdown(socket.SHUT_WR)
            return
        if path == "/stall":
            # Send nothing; discard anything the client sends until it closes or we stop.
            while self._wait_readable(selector):
                if not conn.recv(65536):
                    return
            return
        if path == "/garbage":
            conn.sendall(b"NOT HTTP\r\n\r\n")
            conn.shutdown(socket.SHUT_WR)
            return
        if path == "/trickle-headers":
            interval = float(query.get("interval", "0.2"))
            for index in range(len(STATUS_LINE)):
                conn.sendall(STATUS_LINE[index : index + 1])
                if self._stopping.wait(interval):
                    return
            conn.sendall(
                b"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            conn.shutdown(socket.SHUT_WR)
            return
        if path == "/sse-drop":
            received = ""
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"last-event-id":
                    received = value.strip().decode("latin-1")
            if received == "3":
                conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            else:
                next_id = int(received) + 1 if received.isdigit() else 1
                event = f"retry: 50\nid: {next_id}\ndata: last-event-id={received}\n\n"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Content-Length: 1000\r\n\r\n" + event.encode()
                )
            conn.shutdown(socket.SHUT_WR)
            return
        if path == "/cut-once":
            self._cut_once(conn, head, query)
            return
        if path == "/ok":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                b"Connection: close\r\n\r\nok"
            )
        else:
            conn.sendall(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
                b"Connection: close\r\n\r\nnot found"
            )
        conn.shutdown(socket.SHUT_WR)

    def _cut_once(self, conn: socket.socket, head: bytes, query: dict[str, str]) -> None:
        with self._lock:
            seen = self._keys[query["key"]] = self._keys.get(query["key"], 0) + 1
        total, cut = int(query["n"]), int(query["cut"])
        body = (bytes(range(251)) * (total // 251 + 1))[:total]
        etag = '"v2"' if seen > 1 and query.get("changed") else '"v1"'
        if query.get("weak"):
            etag = "W/" + etag
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        common = (
            f"ETag: {etag}\r\nLast-Modified: Tue, 01 Oct 2024 10:00:00 GMT\r\n"
            "Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n"
        ).encode()
        wanted = headers.get("range", "")
        if_range = headers.get("if-range")
        cuts = seen <= int(query.get("cuts", "1"))
        if wanted.startswith("bytes=") and if_range in (None, etag):
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            # Only with &cuts= do ranges break too (each one after ``C`` more bytes).
            rest = body[start : start + cut] if cuts and "cuts" in query else body[start:]
            conn.sendall(
                b"HTTP/1.1 206 Partial Content\r\n" + common
                + f"Content-Range: bytes {start}-{total - 1}/{total}\r\n".encode()
                + f"Content-Length: {total - start}\r\nConnection: close\r\n\r\n".encode()
                + rest
            )  # fmt: skip
        else:
            conn.sendall(
                b"HTTP/1.1 200 OK\r\n" + common
                + f"Content-Length: {total}\r\nConnection: close\r\n\r\n".encode()
                + (body[:cut] if cuts else body)
            )  # fmt: skip
        conn.shutdown(socket.SHUT_WR)
