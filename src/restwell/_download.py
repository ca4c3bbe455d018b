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

A body that breaks while it streams in (a reset, a read timeout, a truncated body) is asked
again within the call, as the retry policy allows (``Retry.max_retries`` counts every
attempt of the download, the waits follow its backoff, the total deadline bounds them all),
decided by :class:`BodyRetry`. With ``resume=True`` the next request asks only for the rest
(``Range: bytes=<size>-``) with ``If-Range`` carrying the validator of the response that
broke (its strong ``ETag``, else its ``Last-Modified``), so that a file that changed
meanwhile is sent whole and written from the start (RFC 9110 §13.1.5); without it the
download starts over in a fresh temporary file.

Chunks are written as they arrive (not re-cut to a fixed size), so that a download that
breaks keeps every byte received for the next ``resume=True``.

Missing parent directories of the target are created before the request (like
``mkdir -p``); a parent that exists as a file is a ``ValueError``.

Downloads ask for ``Accept-Encoding: identity`` (unless the caller sets it): ranges count the
bytes of the representation as sent, so a body the server compresses on the fly could not be
resumed, and the progress total (``Content-Length``) would not match the bytes written.

:class:`DownloadPlan` decides; :func:`download` and :func:`adownload` only do I/O.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal

import anyio
import httpx

from ._config import USE_CLIENT_DEFAULT, Timeout
from ._deadline import Deadline
from ._exceptions import ConnectionError, RequestInfo, TimeoutError, ValidationError
from ._headers import content_length
from ._redaction import DEFAULT_REDACTOR, Redactor
from ._retry import Retry, coerce_retry, sleep_time

if TYPE_CHECKING:
    from ._budget import RetryBudget
    from ._client import AsyncClient, Client
    from ._response import ProgressCallback

__all__ = ["BodyRetry", "DownloadPlan", "adownload", "download"]

_clock = time.monotonic

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


class BodyRetry:
    """Whether and when a download whose body broke is asked again; no I/O, no clock.

    Every attempt of the download counts against ``retry.max_retries`` (the attempts each
    request took before its headers arrived, and the re-requests after a broken body); the
    waits follow the policy's backoff; the total deadline, when set, bounds the whole
    download's attempts and waits, and the retry budget is spent as for any retry.

    Args:
        retry: The call's retry policy.
        timeout: The call's timeouts (``total`` is the deadline).
        budget: The client's retry budget, if any.
        now: The monotonic time the download starts.

    Example:
        >>> from restwell import Retry
        >>> state = BodyRetry(Retry(max_retries=2, jitter=False), Timeout(), None, now=0.0)
        >>> state.validator is None
        True
        >>> response = httpx.Response(200, headers={"ETag": '"v1"'})
        >>> state.on_response(response, attempts=1)
        >>> state.validator
        '"v1"'
        >>> state.after_body_error(ConnectionError("reset"), host="h", now=1.0, random=0.5)
        0.5
        >>> state.options({"headers": None, "timeout": None, "retry": None})["retry"].max_retries
        1
    """

    __slots__ = ("attempts", "budget", "deadline", "retry", "timeout", "validator")

    def __init__(
        self, retry: Retry, timeout: Timeout, budget: RetryBudget | None, *, now: float
    ) -> None:
        self.retry = retry
        self.timeout = timeout
        self.budget = budget
        self.deadline = Deadline(timeout.total, now) if timeout.total is not None else None
        self.attempts = 0
        self.validator: str | None = None

    def on_response(self, response: httpx.Response, *, attempts: int) -> None:
        """Count a request's attempts and keep the validator of the body it streams."""
        self.attempts += attempts
        etag = response.headers.get("etag")
        if etag and not etag.startswith("W/"):  # a weak ETag may not go in If-Range
            self.validator = etag
        else:
            self.validator = response.headers.get("last-modified")

    def after_body_error(
        self, error: ConnectionError | TimeoutError, *, host: str, now: float, random: float
    ) -> float:
        """Seconds to wait before asking again; raises ``error`` when the policy says no.

        A timeout other than a read timeout (the total deadline) is never retried.
        """
        if isinstance(error, TimeoutError) and error.kind != "read":
            raise error
        retry = self.retry
        if self.attempts > retry.max_retries:
            if retry.max_retries:
                error._extend_message(suffix=f" (gave up after {self.attempts} attempts)")
            raise error
        wait = retry.backoff(self.attempts, random)
        if self.deadline is not None and not self.deadline.allows_wait(wait, now):
            error._extend_message(
                suffix=f" (not retried: a wait of {wait:.2f} s would cross the total deadline)"
            )
            raise error
        if self.budget is not None and not self.budget.try_spend(host, now):
            error._extend_message(suffix=f" (not retried: the retry budget for {host} is spent)")
            raise error
        return sleep_time(wait)

    def options(self, options: dict[str, Any], *, now: float = 0.0) -> dict[str, Any]:
        """The next request's options: the retries and the deadline that are left."""
        retry = dataclasses.replace(self.retry, max_retries=self.retry.max_retries - self.attempts)
        timeout = self.timeout
        if self.deadline is not None:
            timeout = Timeout(
                connect=timeout.connect,
                read=timeout.read,
                write=timeout.write,
                pool=timeout.pool,
                total=max(self.deadline.remaining(now), 0.001),
            )
        return {**options, "retry": retry, "timeout": timeout}

    def if_range(self, headers: httpx.Headers) -> httpx.Headers:
        """``headers`` with ``If-Range`` (when a validator is known and the caller set none)."""
        if self.validator is not None:
            headers.setdefault("If-Range", self.validator)
        return headers


def _body_retry(client: Client | AsyncClient, options: dict[str, Any], now: float) -> BodyRetry:
    settings = client._settings
    retry = settings.retry if options["retry"] is USE_CLIENT_DEFAULT else options["retry"]
    timeout = settings.timeout if options["timeout"] is USE_CLIENT_DEFAULT else options["timeout"]
    return BodyRetry(coerce_retry(retry), Timeout.coerce(timeout), settings.retry_budget, now=now)


def _check_directory(plan: DownloadPlan) -> None:
    # Before the request: a path that cannot be written should not cost a download.
    parent = plan.target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(
            f"cannot save to {str(plan.target)!r}: a part of its directory path "
            f"({str(parent)!r}) exists and is not a directory"
        ) from None


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


def _stream_options(
    plan: DownloadPlan, options: dict[str, Any], offset: int, state: BodyRetry, now: float
) -> dict[str, Any]:
    headers = plan.request_headers(options["headers"], offset=offset)
    if offset and state.attempts:  # a re-request within this call, after a broken body
        headers = state.if_range(headers)
    return {
        **state.options(options, now=now),
        "headers": headers,
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
    state = _body_retry(client, options, _clock())
    temporary = plan.partial
    while True:
        offset = _size(plan.partial) if plan.resume else 0
        stream_options = _stream_options(plan, options, offset, state, _clock())
        with client.stream("GET", url, **stream_options) as response:
            state.on_response(response.httpx, attempts=response.attempts)
            action, done, total = plan.on_response(response.httpx, offset=offset)
            if action == "restart":
                # Once at most: with the partial file gone the next request has no Range.
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
            except (ConnectionError, TimeoutError) as exc:
                if not plan.resume:
                    temporary.unlink(missing_ok=True)
                host = response.request.url.netloc.decode("ascii")
                wait = state.after_body_error(
                    exc,
                    host=host,
                    now=_clock(),
                    random=random.random(),  # noqa: S311 - jitter
                )
            except BaseException:
                if not plan.resume:
                    temporary.unlink(missing_ok=True)
                raise
            else:
                break
        time.sleep(wait)
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
    state = _body_retry(client, options, _clock())
    temporary = plan.partial
    while True:
        offset = _size(plan.partial) if plan.resume else 0
        stream_options = _stream_options(plan, options, offset, state, _clock())
        async with client.stream("GET", url, **stream_options) as response:
            state.on_response(response.httpx, attempts=response.attempts)
            action, done, total = plan.on_response(response.httpx, offset=offset)
            if action == "restart":
                # Once at most: with the partial file gone the next request has no Range.
                plan.partial.unlink(missing_ok=True)
                continue
            if action == "complete":
                break
            temporary, raw = _open(plan, action)
            try:
                async with anyio.wrap_file(raw) as file:
                    if progress is not None:
                        progress(done, total)
                    # Closed at once if the loop stops early (a failed write, a progress
                    # callback that raises): trio warns about a generator left to the GC.
                    async with contextlib.aclosing(response.aiter_bytes()) as chunks:
                        async for chunk in chunks:
                            await file.write(chunk)
                            if progress is not None:
                                done += len(chunk)
                                progress(done, total)
                    await file.flush()
                    await anyio.to_thread.run_sync(os.fsync, raw.fileno())
            except (ConnectionError, TimeoutError) as exc:
                if not plan.resume:
                    temporary.unlink(missing_ok=True)
                host = response.request.url.netloc.decode("ascii")
                wait = state.after_body_error(
                    exc,
                    host=host,
                    now=_clock(),
                    random=random.random(),  # noqa: S311 - jitter
                )
            except BaseException:
                if not plan.resume:
                    temporary.unlink(missing_ok=True)
                raise
            else:
                break
        await anyio.sleep(wait)
    os.replace(temporary, plan.target)
    return plan.target
