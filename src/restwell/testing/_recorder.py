r"""Record real HTTP exchanges to a cassette, replay them later without the network.

The :class:`Recorder` is a transport, like the router: it sits below restwell's pipeline,
so retries, deadlines, the breaker and middleware run on replayed exchanges as on real
ones, and every attempt (each retry, each redirect hop, each OAuth2 token request) is one
recorded interaction.

The cassette is JSON (read with the standard library's ``json``: nothing in it can build an
object), one file per test, readable and diffable:

.. code-block:: json

    {"restwell_cassette": 1,
     "interactions": [
       {"request": {"method": "GET", "url": "https://h/feed", "headers": [["accept", "..."]],
                    "body": {"text": ""}},
        "response": {"status": 200, "reason": "OK", "http_version": "HTTP/1.1",
                     "headers": [["content-type", "text/event-stream"]],
                     "chunks": [{"text": "id: 1\\ndata: one\\n\\n", "delay": 0.0}],
                     "error": {"type": "RemoteProtocolError", "message": "..."}}}]}

A body is kept with its chunk boundaries (each ``chunks`` item is one piece as the
transport delivered it), as ``text`` when it is UTF-8 and ``base64`` otherwise; with
``record_timing=True`` each piece also keeps the seconds since the previous one, and
``replay_timing=True`` replays at that pace. A failure in the middle of a body is kept as
``error`` (the httpx exception's class name) and raised again at the same point. A body the
server compressed is stored decoded (and its ``Content-Encoding`` dropped), so that
redaction can see it.

Secrets are redacted when the cassette is written, with the client's :class:`Redactor`
(the one of the call that sent the request, joined with the recorder's own): secret
headers (``Set-Cookie`` keeps the cookie's name, not its value), secret query parameters,
userinfo, and secret fields in JSON and form bodies, JSON inside SSE ``data:`` lines
included. A live request is redacted the same way before it is compared with the recorded
ones, so matching works on redacted requests. When redaction changes a line of a body that
a chunk boundary cuts, the whole redacted line goes into the chunk where it started.
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import httpx

from .._middleware import CALL_EXTENSION
from .._redaction import (
    DEFAULT_REDACTOR,
    REDACTED,
    Redactor,
    _text_patterns,
    hide_wire_literals,
)
from ._patch import patch_clients
from ._stream import Piece, ScriptedStream

__all__ = ["CassetteError", "CassetteMismatchError", "Recorder"]

Mode = Literal["once", "new_episodes", "none", "all"]
MODES: Final = ("once", "new_episodes", "none", "all")
Matcher = str | Callable[[dict[str, Any], dict[str, Any]], bool]
MATCHERS: Final = ("method", "url", "scheme", "host", "port", "path", "query", "body", "headers")
FORMAT: Final = 1

_clock = time.perf_counter


class CassetteError(ValueError):
    """A cassette cannot be read (not JSON, not a restwell cassette) or written."""


class CassetteMismatchError(AssertionError):
    """A request the cassette does not hold, in a mode that may not record it."""


# -- encoding -------------------------------------------------------------------------------


def _encode(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _decode(item: dict[str, Any]) -> bytes:
    if "base64" in item:
        return base64.b64decode(item["base64"])
    return str(item.get("text", "")).encode("utf-8")


def _union(one: Redactor, other: Redactor | None) -> Redactor:
    if other is None or one.covers(other):
        return one
    return Redactor(
        headers=one.headers | other.headers,
        query=one.query | other.query,
        body_fields=one.body_fields | other.body_fields,
    )


_MIN_SECRET: Final = 4
"""Shorter values are not scrubbed by value: replacing "1" everywhere would ruin a cassette."""


def _header_secrets(name: str, value: str, found: set[str]) -> None:
    """Add the secret parts of a secret header's value to ``found``."""
    found.add(value)
    if name == "cookie":
        for pair in value.split(";"):
            found.add(pair.partition("=")[2].strip())
        return
    if name == "set-cookie":
        found.add(value.partition(";")[0].partition("=")[2].strip())
        return
    scheme, _, credentials = value.partition(" ")
    if credentials:
        found.add(credentials.strip())
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except ValueError:
                return
            found.add(decoded)
            found.add(decoded.partition(":")[2])


def _text_secrets(text: str, redactor: Redactor, found: set[str]) -> None:
    """Add the values :meth:`Redactor.text` would hide in ``text`` to ``found``."""
    pair, param = _text_patterns(
        redactor.body_fields | redactor.headers, redactor.body_fields | redactor.query
    )
    for match in pair.finditer(text):
        found.add(match.group("value"))
    for match in param.finditer(text):
        if match.group("value") is not None:
            found.add(match.group("value"))
        elif match.group("userinfo") is not None:
            found.add(match.group("userinfo"))
            found.add(match.group("userinfo").partition(":")[2])


def _url_secrets(url: httpx.URL, redactor: Redactor, found: set[str]) -> None:
    if url.password:
        found.add(url.password)
    for key, value in url.params.multi_items():
        if key.lower() in redactor.query:
            found.add(value)


def _scrub(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` (a cassette's dicts, lists and strings) with every known secret replaced.

    Catches what names cannot: an echo endpoint that returns the request's headers as a
    list, a cookie's value in a JSON body, a token quoted in an error message.
    """
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    return value


def _ordered(found: set[str]) -> list[str]:
    """The secrets worth scrubbing, longest first (a token before its own prefix)."""
    return sorted(
        (s for s in found if len(s) >= _MIN_SECRET and s not in REDACTED), key=len, reverse=True
    )


def _redact_headers(
    headers: httpx.Headers, redactor: Redactor, found: set[str] | None = None
) -> list[list[str]]:
    items = []
    for (name, value), (_, hidden) in zip(
        headers.multi_items(), redactor.header_items(headers), strict=True
    ):
        shown = hidden
        if found is not None and hidden != value:
            _header_secrets(name, value, found)
        if name == "set-cookie" and hidden == REDACTED and "=" in value:
            # Keep the cookie's name and attributes: a replay sets the same cookie.
            cookie, _, attributes = value.partition(";")
            shown = f"{cookie.split('=', 1)[0]}={REDACTED}"
            if attributes:
                shown += f";{attributes}"
        items.append([name, shown])
    return items


# A header pair on one line: ["content-type", "application/json"] reads better in a diff.
_PAIR: Final = re.compile(r'\[\s+("(?:[^"\\]|\\.)*"),\s+("(?:[^"\\]|\\.)*")\s+\]')
_LINE: Final = re.compile(rb"[^\n]*\n|[^\n]+")


def _redact_chunks(chunks: list[bytes], redactor: Redactor) -> list[bytes]:
    """The chunks with secrets hidden, keeping their boundaries where redaction allows."""
    body = b"".join(chunks)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return chunks  # not text: no field names to find
    hidden = redactor.text(text)
    if hidden == text:
        return chunks
    lines = _LINE.findall(body)
    changed = [redactor.text(line.decode("utf-8", "surrogateescape")) for line in lines]
    if "".join(changed) != hidden:
        # A secret spans lines (pretty-printed JSON): safety first, one chunk.
        return [hidden.encode("utf-8")]
    ends, total = [], 0
    for chunk in chunks:
        total += len(chunk)
        ends.append(total)
    out = [bytearray() for _ in chunks]

    def owner(offset: int) -> int:
        return next(index for index, end in enumerate(ends) if offset < end)

    start = 0
    for line, new in zip(lines, changed, strict=True):
        stop = start + len(line)
        if new.encode("utf-8", "surrogateescape") == line:
            position = start
            while position < stop:
                index = owner(position)
                take = min(stop, ends[index])
                out[index] += body[position:take]
                position = take
        else:
            out[owner(start)] += new.encode("utf-8", "surrogateescape")
        start = stop
    return [bytes(chunk) for chunk in out]


def _error_dict(exc: BaseException, redactor: Redactor) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": redactor.text(hide_wire_literals(str(exc)))}


def _error_factory(error: dict[str, Any], request: httpx.Request) -> Callable[[], BaseException]:
    cls = getattr(httpx, str(error.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, httpx.TransportError)):
        cls = httpx.RemoteProtocolError
    message = str(error.get("message", ""))
    return lambda: cls(message, request=request)


def _request_dict(request: httpx.Request, redactor: Redactor, found: set[str]) -> dict[str, Any]:
    """The request in cassette form, redacted; its secrets are added to ``found``."""
    content = request.content
    body: dict[str, str] = _encode(content)
    if "text" in body:
        _text_secrets(body["text"], redactor, found)
        body["text"] = redactor.text(body["text"])
    _url_secrets(request.url, redactor, found)
    return {
        "method": request.method,
        "url": redactor.url(request.url),
        "headers": _redact_headers(request.headers, redactor, found),
        "body": body,
    }


# -- one interaction ------------------------------------------------------------------------


@dataclass
class _Live:
    """An exchange being recorded: kept raw until the cassette is written."""

    request: httpx.Request
    redactor: Redactor
    started: float
    response: httpx.Response | None = None
    headers_delay: float = 0.0
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    error: BaseException | None = None

    def as_dict(self, *, timing: bool, found: set[str]) -> dict[str, Any]:
        """The exchange in cassette form, redacted; its secrets are added to ``found``."""
        redactor = self.redactor
        entry: dict[str, Any] = {"request": _request_dict(self.request, redactor, found)}
        response = self.response
        if response is None:
            assert self.error is not None
            entry["error"] = _error_dict(self.error, redactor)
            return entry
        headers = httpx.Headers(response.headers.multi_items())
        delays = [delay for delay, _ in self.chunks]
        data = [chunk for _, chunk in self.chunks]
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            data = _decoded(data, response)
            del headers["content-encoding"]
            headers.pop("content-length", None)
        with contextlib.suppress(UnicodeDecodeError):  # a binary body: no field names in it
            _text_secrets(b"".join(data).decode("utf-8"), redactor, found)
        redacted = _redact_chunks(data, redactor)
        if redacted != data and "content-length" in headers:
            headers["content-length"] = str(sum(len(chunk) for chunk in redacted))
        if len(redacted) != len(delays):  # collapsed into one chunk
            delays = [sum(delays)]
        chunks = []
        for delay, chunk in zip(delays, redacted, strict=True):
            item: dict[str, Any] = _encode(chunk)
            if timing:
                item["delay"] = round(delay, 6)
            chunks.append(item)
        recorded: dict[str, Any] = {
            "status": response.status_code,
            "reason": response.reason_phrase,
            "http_version": response.http_version,
            "headers": _redact_headers(headers, redactor, found),
            "chunks": chunks,
        }
        if timing:
            recorded["delay"] = round(self.headers_delay, 6)
        if self.error is not None:
            recorded["error"] = _error_dict(self.error, redactor)
        entry["response"] = recorded
        return entry


def _decoded(chunks: list[bytes], response: httpx.Response) -> list[bytes]:
    # A fresh decoder (the response's own has read the body); httpx is pinned below 1.0.
    decoder = httpx.Response(200, headers=response.headers)._get_content_decoder()
    out = [decoder.decode(chunk) for chunk in chunks]
    tail = decoder.flush()
    if tail:
        out.append(tail)
    return [chunk for chunk in out if chunk] or [b""]


class _RecordingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """The real body, passed through piece by piece while the pieces are kept."""

    def __init__(self, inner: Any, live: _Live) -> None:
        self._inner = inner
        self._live = live
        self._last = _clock()

    def _keep(self, chunk: bytes) -> None:
        now = _clock()
        if chunk:
            self._live.chunks.append((now - self._last, chunk))
        self._last = now

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                self._keep(chunk)
                yield chunk
        except httpx.TransportError as exc:
            self._live.error = exc
            raise

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                self._keep(chunk)
                yield chunk
        except httpx.TransportError as exc:
            self._live.error = exc
            raise

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- the recorder ---------------------------------------------------------------------------


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A transport that records exchanges to a cassette, or replays them from it.

    Modes, as in VCR.py:

    * ``"once"`` (default): replay when the cassette exists (an unknown request is an
      error), else record every exchange and write the cassette;
    * ``"new_episodes"``: replay what the cassette holds, record what it does not;
    * ``"none"``: replay only; never touch the network;
    * ``"all"``: record everything again, replacing the cassette.

    Use it as ``transport=`` of a client, or for every client with :meth:`patch_clients`
    (which also writes the cassette when it ends); call :meth:`save` otherwise.

    Args:
        path: The cassette file (JSON).
        mode: One of the modes above.
        match_on: What makes a request the recorded one: names among ``method``, ``url``,
            ``scheme``, ``host``, ``port``, ``path``, ``query``, ``body`` and ``headers``,
            or callables ``(recorded, live) -> bool`` on the two requests' cassette form.
        redactor: Names to hide on top of each client's own redactor.
        record_timing: Keep the seconds between body pieces (and before the headers).
        replay_timing: Replay at the recorded pace.
        allow_playback_repeats: Let a recorded exchange answer more than one request.
        transport: The sync transport that reaches the network when recording
            (default: a new ``httpx.HTTPTransport()``).
        async_transport: Its async twin (default: a new ``httpx.AsyncHTTPTransport()``).

    Example:
        >>> import restwell, tempfile, os
        >>> from pathlib import Path
        >>> from restwell.testing import MockRouter, Recorder
        >>> server = MockRouter()
        >>> _ = server.get("/users/1").respond(json={"id": 1, "token": "s3cret"})
        >>> path = os.path.join(tempfile.mkdtemp(), "users.json")
        >>> with Recorder(path, transport=server).patch_clients():
        ...     with restwell.Client("https://api.example.com") as client:
        ...         client.get("/users/1").json()
        {'id': 1, 'token': 's3cret'}
        >>> "s3cret" in Path(path).read_text()
        False
        >>> with Recorder(path, mode="none").patch_clients():
        ...     with restwell.Client("https://api.example.com") as client:
        ...         client.get("/users/1").json()
        {'id': 1, 'token': '[REDACTED]'}
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        mode: Mode = "once",
        match_on: Sequence[Matcher] = ("method", "url", "body"),
        redactor: Redactor | None = None,
        record_timing: bool = False,
        replay_timing: bool = False,
        allow_playback_repeats: bool = False,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if isinstance(match_on, str):
            raise TypeError("match_on must be a sequence of names, not a single string")
        for matcher in match_on:
            if not callable(matcher) and matcher not in MATCHERS:
                raise ValueError(
                    f"match_on holds {matcher!r}; names are {', '.join(MATCHERS)} (or callables)"
                )
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise TypeError(f"transport must be an httpx.BaseTransport, got {transport!r}")
        both: object = transport  # a router or a MockTransport serves both clients
        if async_transport is None and isinstance(both, httpx.AsyncBaseTransport):
            async_transport = both
        self.path = Path(path)
        self.mode = mode
        self.match_on = tuple(match_on)
        self.redactor = DEFAULT_REDACTOR if redactor is None else redactor
        self.record_timing = record_timing
        self.replay_timing = replay_timing
        self.allow_playback_repeats = allow_playback_repeats
        self._transport = transport
        self._async_transport = async_transport
        self._own_sync: httpx.HTTPTransport | None = None
        self._own_async: httpx.AsyncHTTPTransport | None = None
        self._lock = threading.Lock()
        self.interactions: list[dict[str, Any]] = []
        if mode != "all" and self.path.exists():
            self.interactions = self._load()
        self._played = [False] * len(self.interactions)
        self._recorded: list[_Live] = []
        self.replay_only = mode == "none" or (mode == "once" and self.path.exists())

    # -- the cassette file ----------------------------------------------------------------

    def _load(self) -> list[dict[str, Any]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CassetteError(f"cannot read the cassette {self.path}: {exc}") from exc
        if isinstance(document, dict) and "interactions" in document:
            if document.get("restwell_cassette") != FORMAT:
                raise CassetteError(
                    f"{self.path} is a cassette of format {document.get('restwell_cassette')!r};"
                    f" this restwell reads format {FORMAT}"
                )
            interactions = document["interactions"]
            if isinstance(interactions, list) and all(
                isinstance(item, dict) and isinstance(item.get("request"), dict)
                for item in interactions
            ):
                return interactions
        raise CassetteError(f"{self.path} is not a restwell cassette (no list of interactions)")

    @property
    def recorded(self) -> int:
        """How many exchanges were recorded (not replayed) so far."""
        return len(self._recorded)

    @property
    def played(self) -> int:
        """How many recorded exchanges were replayed so far."""
        return sum(self._played)

    def save(self) -> Path | None:
        """Write the cassette if anything was recorded (atomically); return its path.

        Example: ``recorder.save()`` after the calls, unless :meth:`patch_clients` does it.
        """
        with self._lock:
            if not self._recorded:
                return None
            found: set[str] = set()
            fresh = [
                live.as_dict(timing=self.record_timing, found=found) for live in self._recorded
            ]
            # A secret hidden anywhere is hidden everywhere, by value.
            fresh = _scrub(fresh, _ordered(found))
            kept = self.interactions if self.mode == "new_episodes" else []
            document = {"restwell_cassette": FORMAT, "interactions": kept + fresh}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = _PAIR.sub(r"[\1, \2]", json.dumps(document, indent=1, ensure_ascii=False)) + "\n"
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".cassette-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return self.path

    @contextmanager
    def patch_clients(self) -> Iterator[Recorder]:
        """While active, every client built without ``transport=`` records or replays here.

        The cassette is written when it ends.

        Example: ``with Recorder("tests/cassettes/users.json").patch_clients(): ...``.
        """
        try:
            with patch_clients(self):
                yield self
        finally:
            self.save()

    # -- matching -------------------------------------------------------------------------

    def _redactor_for(self, request: httpx.Request) -> Redactor:
        call = request.extensions.get(CALL_EXTENSION)
        return _union(self.redactor, getattr(call, "redactor", None))

    def _matches(self, recorded: dict[str, Any], live: dict[str, Any]) -> list[str]:
        """The matchers that fail between two requests in cassette form."""
        failed = []
        for matcher in self.match_on:
            if callable(matcher):
                if not matcher(recorded, live):
                    failed.append(getattr(matcher, "__name__", "callable"))
            elif not _same(_part(recorded, matcher), _part(live, matcher)):
                failed.append(matcher)
        return failed

    def _find(self, live: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded exchange for ``live`` (marked played), or ``None``."""
        repeat = None
        with self._lock:
            for index, entry in enumerate(self.interactions):
                if self._matches(entry["request"], live):
                    continue
                if not self._played[index]:
                    self._played[index] = True
                    return entry
                repeat = entry
        return repeat if self.allow_playback_repeats else None

    def _refuse(self, live: dict[str, Any]) -> CassetteMismatchError:
        shown = f"{live['method']} {live['url']}"
        if not self.interactions:
            detail = "the cassette holds no interaction"
        else:

            def score(entry: dict[str, Any]) -> float:
                other = entry["request"]
                text = f"{other.get('method')} {other.get('url')}"
                return difflib.SequenceMatcher(None, shown, text).ratio() + (
                    0.5 if other.get("body") == live["body"] else 0.0
                )

            closest = max(self.interactions, key=score)
            request = closest["request"]
            failed = self._matches(request, live)
            played = "" if failed else " (already played; allow_playback_repeats=True reuses it)"
            detail = (
                f"the closest recorded one is {request.get('method')} {request.get('url')}"
                f"{played}" + (f", which differs in {', '.join(failed)}" if failed else "")
            )
        return CassetteMismatchError(
            f"{shown} is not in the cassette {self.path} (mode {self.mode!r}, matching on "
            f"{', '.join(m if isinstance(m, str) else 'callable' for m in self.match_on)}); "
            f"{detail}. It was not sent."
        )

    # -- replay ---------------------------------------------------------------------------

    def _replay(
        self, entry: dict[str, Any], request: httpx.Request
    ) -> tuple[httpx.Response, float]:
        recorded = entry.get("response")
        if recorded is None:
            raise _error_factory(entry.get("error") or {}, request)()
        timing = self.replay_timing
        pieces: list[Piece] = [
            (float(item.get("delay", 0.0)) if timing else 0.0, _decode(item))
            for item in recorded.get("chunks", [])
        ]
        if recorded.get("error"):
            pieces.append((0.0, _error_factory(recorded["error"], request)))
        response = httpx.Response(
            int(recorded["status"]),
            headers=[(str(name), str(value)) for name, value in recorded.get("headers", [])],
            stream=ScriptedStream(pieces),
            extensions={
                "http_version": str(recorded.get("http_version", "HTTP/1.1")).encode("ascii"),
                "reason_phrase": str(recorded.get("reason", "")).encode("ascii", "replace"),
            },
            request=request,
        )
        return response, float(recorded.get("delay", 0.0)) if timing else 0.0

    def _lookup(self, request: httpx.Request) -> tuple[Redactor, dict[str, Any] | None]:
        redactor = self._redactor_for(request)
        if self.mode == "all":
            return redactor, None
        found: set[str] = set()
        live = _request_dict(request, redactor, found)
        live = _scrub(live, _ordered(found))
        entry = self._find(live)
        if entry is None and self.replay_only:
            raise self._refuse(live)
        return redactor, entry

    # -- the transport --------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Replay ``request``'s exchange, or send it and record it (sync)."""
        request.read()
        redactor, entry = self._lookup(request)
        if entry is not None:
            response, delay = self._replay(entry, request)
            if delay:
                time.sleep(delay)
            return response
        transport = self._transport
        if transport is None:
            if self._own_sync is None:
                self._own_sync = httpx.HTTPTransport()
            transport = self._own_sync
        live = _Live(request, redactor, _clock())
        with self._lock:
            self._recorded.append(live)
        try:
            response = transport.handle_request(request)
        except httpx.TransportError as exc:
            live.error = exc
            raise
        return self._wrap(response, live)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Replay ``request``'s exchange, or send it and record it (async)."""
        await request.aread()
        redactor, entry = self._lookup(request)
        if entry is not None:
            response, delay = self._replay(entry, request)
            if delay:
                await anyio.sleep(delay)
            return response
        transport = self._async_transport
        if transport is None:
            if self._own_async is None:
                self._own_async = httpx.AsyncHTTPTransport()
            transport = self._own_async
        live = _Live(request, redactor, _clock())
        with self._lock:
            self._recorded.append(live)
        try:
            response = await transport.handle_async_request(request)
        except httpx.TransportError as exc:
            live.error = exc
            raise
        return self._wrap(response, live)

    @staticmethod
    def _wrap(response: httpx.Response, live: _Live) -> httpx.Response:
        live.headers_delay = _clock() - live.started
        live.response = response
        response.stream = _RecordingStream(response.stream, live)
        return response

    def close(self) -> None:
        """Close the network transport the recorder opened (a new one opens if needed)."""
        own, self._own_sync = self._own_sync, None
        if own is not None:
            own.close()

    async def aclose(self) -> None:
        """Close the async network transport the recorder opened (reopened if needed).

        Async transports belong to one event loop: a test on trio after one on asyncio
        gets a fresh one.
        """
        own, self._own_async = self._own_async, None
        if own is not None:
            await own.aclose()

    def __repr__(self) -> str:
        return (
            f"<Recorder {str(self.path)!r} mode={self.mode!r} "
            f"recorded={self.recorded} played={self.played}>"
        )


_HOLES: Final = (REDACTED, "%5BREDACTED%5D")


def _same(recorded: Any, live: Any) -> bool:
    """Whether a live value matches a recorded one, where ``[REDACTED]`` matches anything.

    The live request is redacted like the recorded one was; but a value hidden *by value*
    in the cassette (a cookie's value seen in a ``Set-Cookie`` earlier) may not be known
    to the live request, so a hole in the recording matches whatever the live one holds.
    """
    if recorded == live:
        return True
    if isinstance(recorded, str) and isinstance(live, str):
        if REDACTED not in recorded and "%5BREDACTED%5D" not in recorded:
            return False
        pattern = re.escape(recorded)
        for hole in _HOLES:
            pattern = pattern.replace(re.escape(hole), ".*?")
        return re.fullmatch(pattern, live, re.DOTALL) is not None
    if isinstance(recorded, dict) and isinstance(live, dict):
        return recorded.keys() == live.keys() and all(_same(recorded[k], live[k]) for k in recorded)
    if isinstance(recorded, list | tuple) and isinstance(live, list | tuple):
        return len(recorded) == len(live) and all(
            _same(one, other) for one, other in zip(recorded, live, strict=True)
        )
    return False


def _part(request: dict[str, Any], name: str) -> Any:
    if name in ("method", "url", "body", "headers"):
        return request.get(name)
    url = httpx.URL(str(request.get("url", "")))
    return {
        "scheme": url.scheme,
        "host": url.host,
        "port": url.port,
        "path": url.path,
        "query": sorted(url.params.multi_items()),
    }[name]
