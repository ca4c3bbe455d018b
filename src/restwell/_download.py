"""Downloads to a file: atomic, resumable, with progress. Pure decisions, two small drivers.

A download never leaves a partial file under the final name: the body goes to a temporary
file in the target's directory (so that the final rename stays on one file system), which is
flushed to disk and then renamed over the target with ``os.replace`` (atomic on POSIX and
Windows). On failure the temporary file is removed, unless ``resume=True``: then it is kept
under the fixed name ``.<name>.part`` so that the next ``download(..., resume=True)`` continues
it.

Resuming (RFC 9110 §14, range requests): the request carries ``Range: bytes=<size>-``.

* ``206 Partial Content`` whose ``Content-Range`` starts at that size: the body is appended;
* ``200 OK``: the server ignored the range (it need not support ranges): the file starts over;
* ``416 Range Not Satisfiable`` with ``Content-Range: bytes */<size>``: the partial file is
  already complete; with another length the partial file is stale, and is discarded and
  downloaded again, once;
* a ``206`` for another range is refused with :class:`~restwell.ValidationError`.

Chunks are written as they arrive (not re-cut to a fixed size), so that a download that
breaks keeps every byte received for the next ``resume=True``.

Downloads ask for ``Accept-Encoding: identity`` (unless the caller sets it): ranges count the
bytes of the representation as sent, so a body the server compresses on the fly could not be
resumed, and the progress total (``Content-Length``) would not match the bytes written.

:class:`DownloadPlan` decides; :func:`download` and :func:`adownload` only do I/O.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal

import anyio
import httpx

from ._exceptions import RequestInfo, ValidationError
from ._headers import content_length
from ._redaction import DEFAULT_REDACTOR, Redactor

if TYPE_CHECKING:
    from ._client import AsyncClient, Client
    from ._response import ProgressCallback

__all__ = ["DownloadPlan", "adownload", "download"]

Action = Literal["write", "append", "complete", "restart"]

_OPEN_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, complete length)`` of a ``Content-Range`` (RFC 9110 §14.4)."""
    if value is None:
        return None, None
    unit, _, rest = value.strip().partition(" ")
    if unit.lower() != "bytes":
        return None, None
    span, _, complete = rest.partition("/")
    total = int(complete) if complete.isascii() and complete.isdigit() else None
    first, _, _ = span.partition("-")
    start = int(first) if first.isascii() and first.isdigit() else None
    return start, total


class DownloadPlan:
    """Where a download writes and what each response means; no I/O.

    Args:
        path: The final file.
        resume: Continue a partial file left by an earlier ``resume=True`` download.

    Example:
        >>> plan = DownloadPlan("data/report.csv", resume=True)
        >>> plan.partial.name
        '.report.csv.part'
        >>> plan.request_headers(None, offset=1000)["Range"]
        'bytes=1000-'
        >>> ok = httpx.Response(206, headers={"Content-Range": "bytes 1000-1999/2000"})
        >>> plan.on_response(ok, offset=1000)
        ('append', 1000, 2000)
    """

    __slots__ = ("partial", "redactor", "resume", "target")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        resume: bool,
        redactor: Redactor = DEFAULT_REDACTOR,
    ) -> None:
        self.redactor = redactor
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
        if not isinstance(resume, bool):
            raise TypeError(f"resume must be True or False, got {type(resume).__name__}")
        target = Path(path)
        if not target.name or target.name in (".", ".."):
            raise ValueError(f"path {str(path)!r} does not name a file")
        self.target = target
        self.resume = resume
        # Hidden, next to the target: same file system for the rename, out of directory
        # listings while it grows.
        self.partial = target.with_name(f".{target.name}.part")

    def temporary(self) -> Path:
        """The file to write: the fixed partial file, or a fresh unique one."""
        if self.resume:
            return self.partial
        return self.target.with_name(f".{self.target.name}.{secrets.token_hex(4)}.part")

    def request_headers(self, headers: Any, *, offset: int) -> httpx.Headers:
        """The caller's headers plus ``Accept-Encoding: identity`` and the ``Range``."""
        merged = httpx.Headers(headers)
        merged.setdefault("Accept-Encoding", "identity")
        if offset:
            merged["Range"] = f"bytes={offset}-"
        return merged

    def on_response(
        self, response: httpx.Response, *, offset: int
    ) -> tuple[Action, int, int | None]:
        """``(action, bytes already on disk, total length or None)`` for a response.

        Raises:
            ValidationError: a ``206`` for a range other than the one asked for.

        Example:
            >>> plan = DownloadPlan("f.bin", resume=True)
            >>> plan.on_response(httpx.Response(200, headers={"Content-Length": "5"}), offset=3)
            ('write', 0, 5)
            >>> plan.on_response(httpx.Response(416, headers={"Content-Range": "bytes */3"}),
            ...                  offset=3)
            ('complete', 3, 3)
        """
        status = response.status_code
        headers = response.headers
        if status == 416 and offset:
            _, total = _content_range(headers.get("content-range"))
            if total == offset:
                return "complete", offset, total
            return "restart", 0, None
        size = content_length(headers)
        if status == 206:
            start, total = _content_range(headers.get("content-range"))
            if not offset or start != offset:
                info = RequestInfo.from_httpx(response.request, self.redactor)
                raise ValidationError(
                    f"{info} answered 206 for {headers.get('content-range')!r}, "
                    f"not the range from byte {offset} that was asked for",
                    request=info,
                )
            if total is None and size is not None:
                total = offset + size
            return "append", offset, total
        return "write", 0, size


def _check_directory(plan: DownloadPlan) -> None:
    # Before the request: a typo in the path should not cost a download.
    if not plan.target.parent.is_dir():
        raise FileNotFoundError(f"the directory of {str(plan.target)!r} does not exist")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _open(plan: DownloadPlan, action: Action) -> tuple[Path, BinaryIO]:
    if action == "append":
        return plan.partial, plan.partial.open("ab")
    if plan.resume:
        return plan.partial, plan.partial.open("wb")
    # O_EXCL: never write into a file someone else created under the same name; mode 0o666
    # lets the umask decide the permissions, as for any file the user creates.
    temporary = plan.temporary()
    return temporary, os.fdopen(os.open(temporary, _OPEN_FLAGS, 0o666), "wb")


def _stream_options(plan: DownloadPlan, options: dict[str, Any], offset: int) -> dict[str, Any]:
    return {
        **options,
        "headers": plan.request_headers(options["headers"], offset=offset),
        # An error body must never be saved as the file, whatever the client's setting.
        "raise_for_status": True,
        "allow_status": {416} if offset else (),
    }


def download(
    client: Client,
    url: Any,
    plan: DownloadPlan,
    *,
    progress: ProgressCallback | None,
    options: dict[str, Any],
) -> Path:
    """Drive ``plan`` with the sync client."""
    _check_directory(plan)
    temporary = plan.partial
    for _ in range(2):  # a second pass only after a 416 said the partial file is stale
        offset = _size(plan.partial) if plan.resume else 0
        with client.stream("GET", url, **_stream_options(plan, options, offset)) as response:
            action, done, total = plan.on_response(response.httpx, offset=offset)
            if action == "restart":
                plan.partial.unlink(missing_ok=True)
                continue
            if action == "complete":
                break
            temporary, file = _open(plan, action)
            try:
                with file:
                    if progress is not None:
                        progress(done, total)
                    for chunk in response.iter_bytes():
                        file.write(chunk)
                        if progress is not None:
                            done += len(chunk)
                            progress(done, total)
                    file.flush()
                    # On disk before the rename: a crash must not leave a torn file under
                    # the final name either.
                    os.fsync(file.fileno())
            except BaseException:
                if not plan.resume:
                    temporary.unlink(missing_ok=True)
                raise
            break
    os.replace(temporary, plan.target)
    return plan.target


async def adownload(
    client: AsyncClient,
    url: Any,
    plan: DownloadPlan,
    *,
    progress: ProgressCallback | None,
    options: dict[str, Any],
) -> Path:
    """Drive ``plan`` with the async client; file writes run in a worker thread."""
    _check_directory(plan)
    temporary = plan.partial
    for _ in range(2):
        offset = _size(plan.partial) if plan.resume else 0
        stream = client.stream("GET", url, **_stream_options(plan, options, offset))
        async with stream as response:
            action, done, total = plan.on_response(response.httpx, offset=offset)
            if action == "restart":
                plan.partial.unlink(missing_ok=True)
                continue
            if action == "complete":
                break
            temporary, raw = _open(plan, action)
            try:
                async with anyio.wrap_file(raw) as file:
                    if progress is not None:
                        progress(done, total)
                    async for chunk in response.aiter_bytes():
                        await file.write(chunk)
                        if progress is not None:
                            done += len(chunk)
                            progress(done, total)
                    await file.flush()
                    await anyio.to_thread.run_sync(os.fsync, raw.fileno())
            except BaseException:
                if not plan.resume:
                    temporary.unlink(missing_ok=True)
                raise
            break
    os.replace(temporary, plan.target)
    return plan.target
