"""Streamed request bodies: files, iterables and async iterables, with upload progress.

httpx streams ``content=`` files and iterators, but only for the client whose kind they
match: a plain binary file or a generator given to ``httpx.AsyncClient`` fails with "attempted
to send a sync request". restwell turns every non-``bytes`` body into one
:class:`UploadStream` that serves both clients, so a file, a generator, a list of chunks or
(on ``AsyncClient``) an async iterable upload the same way on either, 64 KiB at a time,
never read whole into memory:

* ``Content-Length`` when the length is known (a file's size from its current position, or
  ``Upload(length=...)``), ``Transfer-Encoding: chunked`` otherwise (RFC 9112 §7.1);
* :class:`Upload` wraps a body to report progress, ``progress(bytes_sent, total_or_None)``,
  and works inside ``files=`` too (multipart reads it like a file);
* a seekable body is rewound before a retry (and its progress count restarts); a generator
  cannot be replayed, so a request carrying one is never retried;
* a body that would silently go out empty because a previous request consumed it (a file
  at its end, a finished generator, an :class:`Upload` already sent) raises ``ValueError``.

On ``AsyncClient`` a file is read in the event loop's thread, as httpx does for multipart
files: a 64 KiB read from a local file is far shorter than the network send it feeds.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

import httpx

from ._deadline import DEADLINE, TotalTimeout

if TYPE_CHECKING:
    from ._response import ProgressCallback

__all__ = ["CHUNK_SIZE", "Upload", "UploadStream", "encode_body"]

CHUNK_SIZE: Final = 64 * 1024


def _file_length(file: Any) -> int | None:
    """Bytes from the current position to the end, without reading (``None``: unknown)."""
    position: int
    size: int
    try:
        position = file.tell()
        size = os.fstat(file.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        try:
            position = file.tell()
            size = file.seek(0, os.SEEK_END)
            file.seek(position)
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None
    return max(size - position, 0)


def _file_size(file: Any) -> int | None:
    """The size of a seekable file (``None``: not seekable or unknown)."""
    try:
        if not file.seekable():
            return None
        return os.fstat(file.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        try:
            position = file.tell()
            size: int = file.seek(0, os.SEEK_END)
            file.seek(position)
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None
        return size


def _check_unspent(source: Any) -> None:
    """Refuse a body that would silently send nothing because it was sent already.

    A file is sent from its current position (as requests and httpx do, so that a caller can
    skip a header), so a file passed a second time sits at its end; a generator can run only
    once. Both would go out as an empty body with a success status to show for it.
    """
    if hasattr(source, "read"):
        size = _file_size(source)
        if size and _file_length(source) == 0:
            raise ValueError(
                f"content= file is at its end (position {size} of {size} bytes), so nothing "
                "would be sent; was it sent already? seek(0) first or pass a fresh file"
            )
    elif getattr(source, "gi_frame", True) is None or getattr(source, "ag_frame", True) is None:
        raise ValueError(
            "content= generator is exhausted (was it sent already?): a generator can be sent "
            "once; pass a new generator, or a list or bytes to send the same body again"
        )


def _check_chunk(chunk: object) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"a request body must yield bytes, got {type(chunk).__name__}")


class Upload:
    """A request body that reports upload progress (or declares its length).

    Wrap a binary file, an iterable or generator of bytes, an async iterable of bytes (on
    ``AsyncClient``) or ``bytes``, and pass it as ``content=`` or as a file in ``files=``.
    ``progress(bytes_sent, total_or_None)`` is called after each chunk is handed to the
    connection; ``total`` is the file's size from its current position, or ``length``.
    An ``Upload`` serves one request (and that request's retries): a second request with
    the same ``Upload`` raises ``ValueError``.

    Args:
        source: The body.
        progress: The progress callback.
        length: The body's length in bytes, when the source cannot tell (a generator): sent
            as ``Content-Length`` instead of chunked encoding.

    Example:
        >>> import io, httpx, restwell
        >>> api = httpx.MockTransport(lambda r: httpx.Response(200, json=len(r.read())))
        >>> seen = []
        >>> body = restwell.Upload(io.BytesIO(b"x" * 100_000),
        ...                        progress=lambda sent, total: seen.append((sent, total)))
        >>> with restwell.Client("https://api.example.com", transport=api) as client:
        ...     client.put("/files/data.bin", content=body).json()
        100000
        >>> seen
        [(65536, 100000), (100000, 100000)]
    """

    __slots__ = ("_claimed", "_sent", "_source", "length", "progress")

    def __init__(
        self,
        source: Any,
        *,
        progress: ProgressCallback | None = None,
        length: int | None = None,
    ) -> None:
        if isinstance(source, Upload):
            raise TypeError("source is already an Upload")
        if isinstance(source, str | io.TextIOBase):
            raise TypeError(
                "an upload must be bytes or a file opened in binary mode ('rb'), not text"
            )
        if not (
            isinstance(source, bytes | bytearray | memoryview | Iterable | AsyncIterable)
            or hasattr(source, "read")
        ):
            raise TypeError(
                "content must be bytes, a binary file, an iterable of bytes or an async "
                f"iterable of bytes, got {type(source).__name__}"
            )
        if progress is not None and not callable(progress):
            raise TypeError("progress must be callable")
        if length is not None and (
            isinstance(length, bool) or not isinstance(length, int) or length < 0
        ):
            raise ValueError(f"length must be an int >= 0, got {length!r}")
        if isinstance(source, bytearray | memoryview):
            source = bytes(source)
        if length is None:
            if isinstance(source, bytes):
                length = len(source)
            elif hasattr(source, "read"):
                length = _file_length(source)
        self._source = source
        self.progress = progress
        self.length = length
        self._sent = 0
        self._claimed = False

    def __repr__(self) -> str:
        return f"<restwell.Upload {type(self._source).__name__} length={self.length}>"

    @property
    def is_async(self) -> bool:
        """Whether the source is an async iterable (only ``AsyncClient`` can send it)."""
        return isinstance(self._source, AsyncIterable) and not hasattr(self._source, "read")

    # -- the file-like side: multipart reads it, retries rewind it ------------------------

    @property
    def name(self) -> str:
        """The source's file name (multipart uses it as the default filename)."""
        return str(getattr(self._source, "name", "upload"))

    def _advance(self, chunk: bytes) -> bytes:
        if chunk:
            self._sent += len(chunk)
            if self.progress is not None:
                self.progress(self._sent, self.length)
        return chunk

    def read(self, size: int = -1) -> bytes:
        """Read from a file source, counting progress."""
        return self._advance(_check_chunk(self._source.read(size)))

    def seekable(self) -> bool:
        """Whether the source can be rewound (so the request can be retried)."""
        seekable = getattr(self._source, "seekable", None)
        return bool(seekable is not None and seekable())

    def tell(self) -> int:
        """The source's position."""
        position: int = self._source.tell()
        return position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the source (to replay it); progress counts from there again."""
        self._sent = 0
        position: int = self._source.seek(offset, whence)
        return position

    def fileno(self) -> int:
        """The source's file descriptor (lets multipart find the length)."""
        number: int = self._source.fileno()
        return number

    # -- the stream side ------------------------------------------------------------------

    def iter_chunks(self) -> Iterator[bytes]:
        """Yield the body in chunks (from a file: up to 64 KiB each)."""
        source = self._source
        if isinstance(source, bytes):
            if source:
                yield self._advance(source)
        elif hasattr(source, "read"):
            while chunk := self.read(CHUNK_SIZE):
                yield chunk
        elif isinstance(source, Iterable):
            for chunk in source:
                yield self._advance(_check_chunk(chunk))
        else:
            raise TypeError(
                "an async iterable body can only be sent by restwell.AsyncClient; "
                "use a file or a sync iterable with Client"
            )

    async def aiter_chunks(self) -> AsyncIterator[bytes]:
        """Async twin of :meth:`iter_chunks`; also reads sync sources."""
        if self.is_async:
            async for chunk in self._source:
                yield self._advance(_check_chunk(chunk))
        else:
            for chunk in self.iter_chunks():
                yield chunk


class UploadStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """The request stream httpx sends: one object for both clients.

    httpx iterates a request stream again for a 307/308 redirect or an auth flow's second
    request. A seekable source is rewound to where it started; a one-shot source (a
    generator, an iterator) raises ``httpx.StreamConsumed`` rather than silently sending an
    empty body the second time.
    """

    def __init__(self, upload: Upload) -> None:
        self._upload = upload
        self._start = upload.tell() if upload.seekable() else None
        self._started = False

    def _replay(self) -> None:
        upload = self._upload
        if self._started:
            source = upload._source
            if self._start is not None:
                upload.seek(self._start)
            elif hasattr(source, "__next__") or hasattr(source, "__anext__"):
                raise httpx.StreamConsumed()
        self._started = True
        upload._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        self._replay()
        expires = DEADLINE.get()  # set by Client for a call with a total deadline
        if expires is None:
            return self._upload.iter_chunks()
        return _until(self._upload.iter_chunks(), expires)

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._replay()
        return self._upload.aiter_chunks()


def _until(chunks: Iterator[bytes], expires: float) -> Iterator[bytes]:
    """Stop an upload at the call's total deadline, checked after each chunk.

    Each socket write is capped at the time left (see ``_sync_deadline``), but the time
    spent in the caller's generator between chunks is not a socket operation: a generator
    slower than the deadline would otherwise keep the call going. (``AsyncClient`` is
    stopped by its cancel scope wherever it waits.)
    """
    for chunk in chunks:
        if time.monotonic() >= expires:
            raise TotalTimeout("the total deadline passed while the request body was produced")
        yield chunk


def encode_body(content: Any, *, is_async: bool) -> tuple[UploadStream, dict[str, str]]:
    """The stream and framing headers for a ``content=`` body that is not bytes or str.

    Raises:
        TypeError: the body is not something restwell can send (or needs ``AsyncClient``).

    Example:
        >>> stream, headers = encode_body(iter([b"a", b"b"]), is_async=False)
        >>> headers, b"".join(stream)
        ({'Transfer-Encoding': 'chunked'}, b'ab')
    """
    if isinstance(content, Upload):
        if content._claimed:
            # Its source was consumed (or moved) by the first request; one Upload per request
            # keeps progress and length right too.
            raise ValueError(
                "this restwell.Upload was sent already: create a new Upload for each request"
            )
        upload = content
    else:
        upload = Upload(content)
    _check_unspent(upload._source)
    upload._claimed = True
    if upload.is_async and not is_async:
        raise TypeError(
            "an async iterable body can only be sent by restwell.AsyncClient; "
            "use a file or a sync iterable with Client"
        )
    if upload.length is None:
        headers = {"Transfer-Encoding": "chunked"}
    else:
        headers = {"Content-Length": str(upload.length)}
    return UploadStream(upload), headers
