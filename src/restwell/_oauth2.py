"""OAuth 2.0 access tokens: the client-credentials grant and the refresh-token grant.

Both are ``httpx.Auth`` flows, so one object serves ``Client`` and ``AsyncClient``. The
token request is yielded from the auth flow, as httpx's ``DigestAuth`` yields its second
request: it goes through the client's own pool and transport (and so through
``httpx.MockTransport`` in tests), with no second connection pool to configure.

Everything that decides is shared and pure: :class:`_TokenCache` (is the cached token still
good at ``now``? which generation is it?), :func:`parse_token_response` (RFC 6749 §5.1 and
§5.2), :func:`refresh_deadline` (``expires_in`` minus a margin) and :meth:`_OAuth2Auth._steps`
(apply the token, refresh once after a 401 and retry). The two drivers,
``sync_auth_flow`` and ``async_auth_flow``, only take locks and read bodies, so that however
many calls find the token stale at once, on however many threads and event loops, one token
request is made (single flight; see :meth:`_OAuth2Auth._acquire_async` for how tasks share
the threads' lock without blocking their event loop). A 401 response is read and closed
before its call waits for a new token: a waiting call holds no connection, so the token
request always finds one, even when more calls than the pool has connections were rejected
at once.

The token request is marked (``_pool.TOKEN_REQUEST``): it never follows a redirect (a 3xx is
an error naming the token endpoint), and when it fails in transit the error names the token
endpoint and the API host's circuit breaker does not count it. An API that refuses even a
token fetched for it (wrong audience or scope) gets no new token for
``_OAuth2Auth.rejection_cooldown`` seconds, rather than one per call.

No library was a fit: authlib's httpx integration subclasses ``httpx.Client`` (restwell owns
its pool) and has no single flight; httpx-oauth targets the authorization-code flow.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote_plus

import anyio
import anyio.lowlevel
import httpx

from ._auth import _check_secret, env_value
from ._deadline import DEADLINE, TotalTimeout
from ._exceptions import (
    AuthenticationError,
    RequestInfo,
    TimeoutError,
    ValidationError,
    error_for_status,
)
from ._logging import logger
from ._middleware import CALL_EXTENSION
from ._pool import TOKEN_REQUEST
from ._redaction import DEFAULT_REDACTOR, Redactor
from ._response import Response

__all__ = [
    "AUTH_HINT",
    "OAuth2ClientCredentials",
    "OAuth2RefreshToken",
    "OAuth2Token",
    "failed_token_request",
    "parse_token_response",
    "refresh_deadline",
]

ClientAuthMethod = Literal["basic", "post"]
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})
AUTH_HINT: Final = "restwell.auth_hint"
"""Response extension: a sentence the call adds to the message of the error it raises."""
# How often a task polls the threads' lock while another thread fetches (seconds).
_POLL_FIRST: Final = 0.005
_POLL_MAX: Final = 0.05


@dataclass(frozen=True, slots=True, repr=False)
class OAuth2Token:
    """An access token from a token endpoint (RFC 6749 §5.1); its repr hides the secrets.

    Example:
        >>> OAuth2Token("at", expires_in=3600.0, refresh_token="rt")
        OAuth2Token(access_token='***', token_type='Bearer', expires_in=3600.0, refresh_token='***', scope=None)
    """  # noqa: E501 - a doctest output line cannot be wrapped

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: float | None = None
    refresh_token: str | None = None
    scope: str | None = None

    def __repr__(self) -> str:
        refresh = "'***'" if self.refresh_token else "None"
        return (
            f"OAuth2Token(access_token='***', token_type={self.token_type!r}, "
            f"expires_in={self.expires_in!r}, refresh_token={refresh}, scope={self.scope!r})"
        )


def refresh_deadline(now: float, expires_in: float | None, margin: float) -> float | None:
    """When a token obtained at ``now`` should be replaced: shortly before it expires.

    The margin is at most a tenth of the lifetime, so that a short-lived token is still
    used for most of its life. ``None`` (no ``expires_in``) means "until the server says 401".

    Example:
        >>> refresh_deadline(100.0, 3600, 30.0), refresh_deadline(100.0, 10, 30.0)
        (3670.0, 109.0)
    """
    if expires_in is None:
        return None
    return now + expires_in - min(margin, expires_in / 10)


def _token_error(response: httpx.Response, info: RequestInfo) -> Exception:
    """The error for a token endpoint's error response (RFC 6749 §5.2)."""
    status = response.status_code
    detail = ""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        detail = f": {body['error']}"
        description = body.get("error_description")
        if isinstance(description, str):
            detail += f" ({DEFAULT_REDACTOR.text(description)[:200]})"
    message = f"OAuth2 token request {info} failed with {status} {response.reason_phrase}"
    wrapped = Response(response, request_info=info)
    if status in (400, 401):
        # invalid_client, invalid_grant, unauthorized_client ...: the credentials are wrong.
        return AuthenticationError(message + detail, response=wrapped, request=info)
    error = error_for_status(wrapped, request=info, attempts=1, retry_after=None)
    error._extend_message(prefix=f"{message}{detail}; ")
    return error


def parse_token_response(response: httpx.Response, info: RequestInfo) -> OAuth2Token:
    """Read a token endpoint's (already read) response into an :class:`OAuth2Token`.

    Raises ``AuthenticationError`` (400/401, RFC 6749 §5.2), another ``HTTPError`` for other
    statuses, and ``ValidationError`` for a success that is not a usable bearer token.

    Example:
        >>> raw = httpx.Response(200, json={"access_token": "at", "token_type": "bearer",
        ...                                 "expires_in": 60})
        >>> parse_token_response(raw, RequestInfo("POST", "https://h/token")).expires_in
        60.0
    """
    if response.status_code >= 400:
        raise _token_error(response, info)
    if response.status_code >= 300:
        # Token requests never follow redirects (see _pool): the secrets stay with token_url.
        raise ValidationError(
            f"OAuth2 token request {info} was answered with {response.status_code} "
            f"{response.reason_phrase}; token requests do not follow redirects, so set "
            "token_url to the token endpoint itself",
            request=info,
        )
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValidationError(
            f"OAuth2 token response for {info} is not a JSON object", request=info
        )
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise ValidationError(f"OAuth2 token response for {info} has no access_token", request=info)
    token_type = body.get("token_type", "Bearer")
    # RFC 6749 §7.1: the client must understand the token type; only bearer is (RFC 6750).
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise ValidationError(
            f"OAuth2 token response for {info} has token_type {token_type!r}; "
            "only bearer tokens are supported",
            request=info,
        )
    expires_in: float | None = None
    raw_expiry = body.get("expires_in")
    if raw_expiry is not None:
        try:
            expires_in = float(raw_expiry)
        except (TypeError, ValueError):
            expires_in = -1.0
        if not 0 <= expires_in < float("inf"):
            raise ValidationError(
                f"OAuth2 token response for {info} has an invalid expires_in", request=info
            )
    refresh_token = body.get("refresh_token")
    scope = body.get("scope")
    return OAuth2Token(
        access_token=access_token,
        token_type="Bearer",  # noqa: S106 - a token type, not a secret
        expires_in=expires_in,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        scope=scope if isinstance(scope, str) else None,
    )


def failed_token_request(exc: BaseException, redactor: Redactor) -> RequestInfo | None:
    """The token endpoint, if ``exc`` is the failure of an OAuth2 token request in transit.

    Such a failure is the identity provider's: the call's error names it, and the API
    host's circuit breaker does not count it.

    Example:
        >>> request = httpx.Request("POST", "https://idp/token", extensions={TOKEN_REQUEST: 1})
        >>> failed_token_request(httpx.ConnectError("refused", request=request),
        ...                      DEFAULT_REDACTOR)
        RequestInfo(method='POST', url='https://idp/token')
    """
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # not a RequestError, or one without a request
        return None
    if isinstance(request, httpx.Request) and request.extensions.get(TOKEN_REQUEST):
        return RequestInfo.from_httpx(request, redactor)
    return None


class _TokenCache:
    """The current token, when to replace it, and its generation; swapped as one tuple.

    Pure: callers pass ``now``. Reading one attribute is atomic, so the fast path (a fresh
    token) takes no lock; writers hold the driver's lock. It also remembers the newest
    generation the API accepted, and until when the API is known to refuse fresh tokens.
    """

    __slots__ = ("accepted", "cooled", "entry", "refetched", "refused", "refusing_until")

    def __init__(self) -> None:
        self.entry: tuple[OAuth2Token, float | None, int] | None = None
        self.accepted = 0  # the newest generation the API accepted
        self.refused = 0  # the newest generation a 401 rejected
        self.refetched = 0  # the newest generation fetched to replace a rejected one
        self.cooled = 0  # the generation whose refusal started the last cool-down
        self.refusing_until = float("-inf")

    def accept(self, generation: int) -> None:
        """The API accepted generation ``generation`` (a response other than 401)."""
        # Unlocked: a lost race only keeps a smaller value, which is harmless.
        self.accepted = max(self.accepted, generation)

    def refuses_fresh(self, generation: int, now: float, cooldown: float, retried: bool) -> bool:
        """Whether a 401 for ``generation`` means the API refuses even fresh tokens.

        Then no new token is fetched until ``cooldown`` seconds from the first such 401. It
        is one when the API never accepted ``generation`` and that token was itself fetched
        after a 401 (by this call, ``retried``, or by another). An accepted token refused
        later was revoked or expired: it is replaced at once.

        Example:
            >>> cache = _TokenCache()
            >>> _ = cache.store(OAuth2Token("a"), 0.0, 0.0)
            >>> cache.refuses_fresh(1, 0.0, 30.0, retried=False)  # maybe a race: refetch
            False
            >>> cache.reject(1)
            >>> _ = cache.store(OAuth2Token("b"), 0.0, 0.0)
            >>> cache.refuses_fresh(2, 0.0, 30.0, retried=True)
            True
            >>> cache.refuses_fresh(2, 29.0, 30.0, retried=False)
            True
            >>> cache.refuses_fresh(2, 30.0, 30.0, retried=False)  # cooled down: try again
            False
        """
        if generation <= self.accepted:
            return False
        if now < self.refusing_until:
            return True
        if retried or (generation == self.refetched and generation != self.cooled):
            self.refusing_until = now + cooldown
            self.cooled = generation
            return True
        return False

    def current(self, now: float, rejected: int | None) -> tuple[OAuth2Token, int] | None:
        """The token to use, or ``None`` when a new one must be fetched.

        ``rejected`` is the generation the server answered 401 to: if the cache still holds
        it, it is stale; if another caller already replaced it, the new one is used.
        """
        entry = self.entry
        if entry is None:
            return None
        token, refresh_at, generation = entry
        if generation == rejected or (refresh_at is not None and now >= refresh_at):
            return None
        return token, generation

    def reject(self, generation: int | None) -> None:
        """Mark the token stale if it is still generation ``generation`` (``None``: any).

        A generation is the one a 401 rejected; ``None`` is a caller's ``invalidate()``.
        """
        entry = self.entry
        if entry is not None and generation in (None, entry[2]):
            self.entry = (entry[0], float("-inf"), entry[2])
            if generation is not None:
                self.refused = generation

    def store(self, token: OAuth2Token, now: float, margin: float) -> tuple[OAuth2Token, int]:
        generation = self.entry[2] + 1 if self.entry is not None else 1
        if self.entry is not None and self.entry[2] == self.refused:
            self.refetched = generation
        self.entry = (token, refresh_deadline(now, token.expires_in, margin), generation)
        return token, generation


@dataclass(frozen=True, slots=True)
class _NeedToken:
    """A step of :meth:`_OAuth2Auth._steps`: a usable token is needed (not ``rejected``)."""

    rejected: int | None


def _check_token_url(token_url: object) -> httpx.URL:
    if not isinstance(token_url, str | httpx.URL):
        raise TypeError(f"token_url must be a str, got {type(token_url).__name__}")
    url = httpx.URL(token_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"token_url must be an absolute https:// URL, got {str(token_url)!r}")
    if url.userinfo:
        raise ValueError("token_url must not carry credentials; pass client_id/client_secret")
    if url.scheme == "http" and not _is_loopback(url.host):
        # RFC 6749 §3.2: the token endpoint MUST be reached over TLS.
        raise ValueError(
            "token_url must use https:// (RFC 6749 §3.2); plain http is allowed only for "
            f"a loopback host, got {url.host!r}"
        )
    return url


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class _OAuth2Auth(httpx.Auth):
    """What both grants share: the cache, single flight, the 401 retry, the two drivers."""

    def __init__(
        self,
        token_url: str | httpx.URL,
        *,
        client_id: str | None,
        client_secret: str | None,
        scope: str | Iterable[str] | None,
        client_auth: ClientAuthMethod,
        timeout: float,
        refresh_margin: float,
        clock: Callable[[], float],
    ) -> None:
        self._token_url = _check_token_url(token_url)
        self._info = RequestInfo("POST", DEFAULT_REDACTOR.url(self._token_url))
        self.client_id = None if client_id is None else _check_secret("client_id", client_id)
        self._client_secret = (
            None if client_secret is None else _check_secret("client_secret", client_secret)
        )
        if scope is not None and not isinstance(scope, str):
            scope = " ".join(scope)  # RFC 6749 §3.3: space-delimited
        self.scope: str | None = scope or None
        if client_auth not in ("basic", "post"):
            raise ValueError(f"client_auth must be 'basic' or 'post', got {client_auth!r}")
        self._client_auth = client_auth
        self._timeouts = httpx.Timeout(_check_positive("timeout", timeout)).as_dict()
        # A caller waits for another's token request at most as long as that one may take.
        self._lock_wait = 4 * timeout
        # Only the threads' lock single-flights the fetch; this one only guards the dict of
        # per-loop locks and is never held while waiting for anything.
        self._async_locks_guard = threading.Lock()
        self._margin = float(refresh_margin)
        if self._margin < 0:
            raise ValueError(f"refresh_margin must not be negative, got {refresh_margin!r}")
        self._clock = clock
        self._cache = _TokenCache()
        self._thread_lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[Any, anyio.Lock] = weakref.WeakKeyDictionary()
        self.token_requests = 0
        """How many token requests this object has made (for metrics and tests)."""

    # -- the pure parts ------------------------------------------------------------------

    def _grant(self) -> dict[str, str]:
        raise NotImplementedError

    def _accept(self, token: OAuth2Token) -> None:
        """Hook: a new token arrived (called under the lock)."""

    rejection_cooldown: float = 30.0
    """Seconds without a new token after the API refused a freshly fetched one."""

    def _token_request(self, request: httpx.Request) -> httpx.Request:
        self.token_requests += 1
        timeouts = self._timeouts
        expires = DEADLINE.get()  # a sync call's total deadline (AsyncClient cancels instead)
        if expires is not None:
            left = max(expires - time.monotonic(), 0.001)
            timeouts = {
                phase: left if value is None or value > left else value
                for phase, value in timeouts.items()
            }
        form = self._grant()
        headers = {"Accept": "application/json"}
        if "user-agent" in request.headers:
            headers["User-Agent"] = request.headers["user-agent"]
        if self.client_id is not None:
            if self._client_secret is not None and self._client_auth == "basic":
                # RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
                pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret)}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            else:
                form["client_id"] = self.client_id
                if self._client_secret is not None:
                    form["client_secret"] = self._client_secret
        if self.scope is not None:
            form["scope"] = self.scope
        return httpx.Request(
            "POST",
            self._token_url,
            data=form,
            headers=headers,
            extensions={"timeout": timeouts, TOKEN_REQUEST: True},
        )

    def _store(
        self, response: httpx.Response, request: httpx.Request, *, refreshed: bool
    ) -> tuple[OAuth2Token, int]:
        token = parse_token_response(response, self._info)
        self._accept(token)
        call = request.extensions.get(CALL_EXTENSION)
        if call is not None:  # the restwell call this token was fetched for: its observers
            call.token_fetched(self._info.url, refreshed=refreshed, expires_in=token.expires_in)
        return self._cache.store(token, self._clock(), self._margin)

    def _steps(self, request: httpx.Request) -> Generator[_NeedToken | httpx.Request, Any, None]:
        """The flow, shared by both drivers: token, send, and once more after a 401."""
        token, generation = yield _NeedToken(None)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        # RFC 6750 §3.1: 401 means the token is invalid or expired. The server refused the
        # request, so sending it again cannot repeat a write; a body that cannot be replayed
        # (a stream) is not resent and the 401 stands.
        cache = self._cache
        if response.status_code != 401:
            cache.accept(generation)
            return
        if cache.refuses_fresh(generation, self._clock(), self.rejection_cooldown, False):
            self._explain_refusal(response)
            return
        # Calls starting from now wait for the new token rather than send a doomed request.
        cache.reject(generation)
        if not isinstance(request.stream, httpx.ByteStream):
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("OAuth2 token rejected with 401; fetching a new one and retrying once")
        token, generation = yield _NeedToken(generation)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code != 401:
            cache.accept(generation)
        elif cache.refuses_fresh(generation, self._clock(), self.rejection_cooldown, True):
            # Fetching more would only make one token request per call.
            self._explain_refusal(response)

    def _explain_refusal(self, response: httpx.Response) -> None:
        response.extensions[AUTH_HINT] = (
            f" (the API rejected a freshly issued OAuth2 token from {self._info}: check the "
            f"token's audience and scope; no new token is requested for "
            f"{self.rejection_cooldown:g} s)"
        )

    def _acquire_sync(self) -> None:
        """Take the threads' lock, waiting no longer than the call's total deadline allows."""
        wait = self._lock_wait
        expires = DEADLINE.get()  # set by Client around each attempt of a call with a total
        if expires is not None:
            wait = min(wait, max(expires - time.monotonic(), 0.0))
        if self._thread_lock.acquire(timeout=wait):
            return
        if expires is not None and time.monotonic() >= expires - 0.001:
            raise TotalTimeout(f"the total deadline passed while waiting for {self._info}")
        raise self._lock_timeout()

    async def _acquire_async(self) -> anyio.Lock:
        """Take this loop's lock, then the threads' lock, without blocking the event loop.

        The threads' lock makes one token request for every thread and every event loop.
        A task must not block on it (a thread's fetch would freeze the loop), and handing
        the wait to a worker thread is unsafe (a cancelled wait would leave the lock taken
        by nobody), so the task polls it. Only the one task holding its loop's
        ``anyio.Lock`` polls, and only while another thread or loop is fetching. The
        call's total deadline is AsyncClient's cancel scope around the whole attempt.
        """
        lock = self._async_lock()
        with anyio.move_on_after(self._lock_wait) as scope:
            await lock.acquire()
            try:
                delay = _POLL_FIRST
                while not self._thread_lock.acquire(blocking=False):
                    await anyio.sleep(delay)
                    delay = min(delay * 2, _POLL_MAX)
            except BaseException:
                lock.release()
                raise
        if scope.cancelled_caught:
            raise self._lock_timeout()
        return lock

    def _lock_timeout(self) -> TimeoutError:
        return TimeoutError(
            f"waited {self._lock_wait:g} s for another call's OAuth2 token request to {self._info}",
            kind="pool",
            request=self._info,
        )

    # -- the drivers: locks and body reads only ------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive :meth:`_steps` for ``Client`` (httpx calls this; users don't)."""
        steps = self._steps(request)
        step = next(steps)
        while True:
            if isinstance(step, _NeedToken):
                found = self._cache.current(self._clock(), step.rejected)
                if found is None:
                    self._acquire_sync()
                    try:
                        found = self._cache.current(self._clock(), step.rejected)
                        if found is None:
                            response = yield self._token_request(request)
                            try:
                                response.read()
                            finally:
                                response.close()
                            found = self._store(
                                response, request, refreshed=step.rejected is not None
                            )
                    finally:
                        self._thread_lock.release()
                step = steps.send(found)
            else:
                response = yield step
                if response.status_code == 401:
                    # Give the connection back before waiting for a token (see the module).
                    try:
                        response.read()
                    finally:
                        response.close()
                try:
                    step = steps.send(response)
                except StopIteration:
                    return

    def _async_lock(self) -> anyio.Lock:
        # One lock per event loop: an anyio.Lock belongs to the loop that first waits on it.
        loop = anyio.lowlevel.current_token().native_token
        with self._async_locks_guard:
            lock = self._async_locks.get(loop)
            if lock is None:
                lock = self._async_locks[loop] = anyio.Lock()
        return lock

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Drive :meth:`_steps` for ``AsyncClient`` (httpx calls this; users don't)."""
        steps = self._steps(request)
        step = next(steps)
        while True:
            if isinstance(step, _NeedToken):
                found = self._cache.current(self._clock(), step.rejected)
                if found is None:
                    lock = await self._acquire_async()
                    try:
                        found = self._cache.current(self._clock(), step.rejected)
                        if found is None:
                            response = yield self._token_request(request)
                            try:
                                await response.aread()
                            finally:
                                await response.aclose()
                            found = self._store(
                                response, request, refreshed=step.rejected is not None
                            )
                    finally:
                        self._thread_lock.release()
                        lock.release()
                step = steps.send(found)
            else:
                response = yield step
                if response.status_code == 401:
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
                try:
                    step = steps.send(response)
                except StopIteration:
                    return

    def invalidate(self) -> None:
        """Forget the cached access token: the next call fetches a new one.

        Example:
            >>> auth = OAuth2ClientCredentials("https://auth.example.com/token", "id", "s")
            >>> auth.invalidate()
        """
        self._cache.reject(None)


class OAuth2ClientCredentials(_OAuth2Auth):
    """OAuth 2.0 client-credentials grant (RFC 6749 §4.4): a token for the client itself.

    The token is fetched on the first call, cached until shortly before ``expires_in``
    (``refresh_margin`` seconds, at most a tenth of its lifetime), and fetched again when it
    is about to expire or when the API answers 401 (then the request is retried once). Under
    concurrency, one token request is made however many calls need a token.

    Args:
        token_url: The token endpoint (``https://``; plain ``http`` only for loopback).
        client_id: The client identifier.
        client_secret: The client secret (never shown in reprs, logs or errors).
        scope: The scope to ask for: a string or a list of scopes.
        audience: The ``audience`` parameter some providers (Auth0, Okta) require.
        client_auth: ``"basic"`` (HTTP Basic, RFC 6749 §2.3.1, the default) or ``"post"``
            (``client_id`` and ``client_secret`` in the form body).
        timeout: Seconds for each phase of the token request.
        refresh_margin: Seconds before expiry at which the token is replaced.
        clock: A monotonic clock (for tests).

    Example:
        >>> import httpx, restwell
        >>> def api(request):
        ...     if request.url.path == "/token":
        ...         return httpx.Response(200, json={"access_token": "at-1",
        ...                                          "token_type": "Bearer", "expires_in": 3600})
        ...     return httpx.Response(200, json={"auth": request.headers["authorization"]})
        >>> auth = restwell.OAuth2ClientCredentials("https://auth.example.com/token",
        ...                                         "my-client", "my-secret", scope="read")
        >>> auth
        OAuth2ClientCredentials(token_url='https://auth.example.com/token', client_id='my-client', client_secret='***', scope='read')
        >>> with restwell.Client("https://api.example.com", auth=auth,
        ...                      transport=httpx.MockTransport(api)) as client:
        ...     client.get("/me").json(), client.get("/me").json() == {"auth": "Bearer at-1"}
        ({'auth': 'Bearer at-1'}, True)
        >>> auth.token_requests
        1
    """  # noqa: E501 - a doctest output line cannot be wrapped

    def __init__(
        self,
        token_url: str | httpx.URL,
        client_id: str,
        client_secret: str,
        scope: str | Iterable[str] | None = None,
        audience: str | None = None,
        *,
        client_auth: ClientAuthMethod = "basic",
        timeout: float = 30.0,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if client_id is None or client_secret is None:
            raise TypeError("OAuth2ClientCredentials needs a client_id and a client_secret")
        super().__init__(
            token_url,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            client_auth=client_auth,
            timeout=timeout,
            refresh_margin=refresh_margin,
            clock=clock,
        )
        if audience is not None and not isinstance(audience, str):
            raise TypeError(f"audience must be a str, got {type(audience).__name__}")
        self.audience = audience

    @classmethod
    def from_env(cls, prefix: str, **overrides: Any) -> OAuth2ClientCredentials:
        """Build it from ``{PREFIX}_*`` environment variables; keyword arguments win.

        Reads ``{PREFIX}_TOKEN_URL``, ``_CLIENT_ID``, ``_CLIENT_SECRET`` and the optional
        ``_SCOPE`` and ``_AUDIENCE``. A missing or empty required variable raises a
        ``ValueError`` naming it.

        Example:
            >>> import os, restwell
            >>> os.environ.update(IDP_TOKEN_URL="https://idp.example.com/token",
            ...                   IDP_CLIENT_ID="app", IDP_CLIENT_SECRET="s")
            >>> restwell.OAuth2ClientCredentials.from_env("IDP").client_id
            'app'
            >>> for name in ("IDP_TOKEN_URL", "IDP_CLIENT_ID", "IDP_CLIENT_SECRET"):
            ...     del os.environ[name]
        """
        prefix = prefix.rstrip("_").upper()
        options: dict[str, Any] = {}
        for name in ("token_url", "client_id", "client_secret"):
            if name not in overrides:
                options[name] = env_value(f"{prefix}_{name.upper()}")
        for name in ("scope", "audience"):
            if name not in overrides and os.environ.get(f"{prefix}_{name.upper()}"):
                options[name] = os.environ[f"{prefix}_{name.upper()}"]
        options.update(overrides)
        return cls(**options)

    def _grant(self) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self.audience is not None:
            form["audience"] = self.audience
        return form

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials(token_url={self._info.url!r}, "
            f"client_id={self.client_id!r}, client_secret='***', scope={self.scope!r})"
        )


class OAuth2RefreshToken(_OAuth2Auth):
    """OAuth 2.0 refresh-token grant (RFC 6749 §6), for tokens your application got elsewhere.

    Give it the refresh token (and the access token you have, if any): it fetches access
    tokens with the refresh token when needed, exactly like :class:`OAuth2ClientCredentials`
    (cached until shortly before expiry, refreshed once on a 401, one request at a time). A
    server that rotates refresh tokens sends a new one with each access token; it replaces
    the old one, and ``on_refresh(token)`` is called with the new :class:`OAuth2Token` so
    that you can store it.

    Example:
        >>> import httpx, restwell
        >>> def api(request):
        ...     if request.url.path == "/token":
        ...         return httpx.Response(200, json={"access_token": "at-2",
        ...                                          "token_type": "Bearer",
        ...                                          "refresh_token": "rt-2"})
        ...     return httpx.Response(200, json={"auth": request.headers["authorization"]})
        >>> saved = []
        >>> auth = restwell.OAuth2RefreshToken("https://auth.example.com/token", "rt-1",
        ...                                    client_id="app", on_refresh=saved.append)
        >>> with restwell.Client("https://api.example.com", auth=auth,
        ...                      transport=httpx.MockTransport(api)) as client:
        ...     client.get("/me").json()
        {'auth': 'Bearer at-2'}
        >>> saved
        [OAuth2Token(access_token='***', token_type='Bearer', expires_in=None, refresh_token='***', scope=None)]
    """  # noqa: E501 - a doctest output line cannot be wrapped

    def __init__(
        self,
        token_url: str | httpx.URL,
        refresh_token: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_token: str | None = None,
        expires_in: float | None = None,
        scope: str | Iterable[str] | None = None,
        on_refresh: Callable[[OAuth2Token], object] | None = None,
        client_auth: ClientAuthMethod = "basic",
        timeout: float = 30.0,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if client_secret is not None and client_id is None:
            raise ValueError("a client_secret needs its client_id")
        super().__init__(
            token_url,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            client_auth=client_auth,
            timeout=timeout,
            refresh_margin=refresh_margin,
            clock=clock,
        )
        self._refresh_token = _check_secret("refresh_token", refresh_token)
        if on_refresh is not None and not callable(on_refresh):
            raise TypeError("on_refresh must be callable")
        self._on_refresh = on_refresh
        if access_token is not None:
            seeded = OAuth2Token(
                _check_secret("access_token", access_token),
                expires_in=None if expires_in is None else float(expires_in),
            )
            self._cache.store(seeded, clock(), self._margin)

    @classmethod
    def from_env(cls, prefix: str, **overrides: Any) -> OAuth2RefreshToken:
        """Build it from ``{PREFIX}_*`` environment variables; keyword arguments win.

        Reads ``{PREFIX}_TOKEN_URL``, ``_REFRESH_TOKEN`` and the optional ``_CLIENT_ID`` and
        ``_CLIENT_SECRET``. A missing or empty required variable raises a ``ValueError``
        naming it.

        Example:
            >>> import os, restwell
            >>> os.environ.update(IDP_TOKEN_URL="https://idp.example.com/token",
            ...                   IDP_REFRESH_TOKEN="rt")
            >>> restwell.OAuth2RefreshToken.from_env("IDP")
            OAuth2RefreshToken(token_url='https://idp.example.com/token', client_id=None, refresh_token='***')
            >>> for name in ("IDP_TOKEN_URL", "IDP_REFRESH_TOKEN"): del os.environ[name]
        """  # noqa: E501 - a doctest output line cannot be wrapped
        prefix = prefix.rstrip("_").upper()
        options: dict[str, Any] = {}
        for name in ("token_url", "refresh_token"):
            if name not in overrides:
                options[name] = env_value(f"{prefix}_{name.upper()}")
        for name in ("client_id", "client_secret"):
            if name not in overrides and os.environ.get(f"{prefix}_{name.upper()}"):
                options[name] = os.environ[f"{prefix}_{name.upper()}"]
        options.update(overrides)
        return cls(**options)

    def _grant(self) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": self._refresh_token}

    def _accept(self, token: OAuth2Token) -> None:
        if token.refresh_token is not None:
            self._refresh_token = token.refresh_token  # rotated (RFC 6749 §6, RFC 9700 §4.14)
        if self._on_refresh is not None:
            self._on_refresh(token)

    def __repr__(self) -> str:
        return (
            f"OAuth2RefreshToken(token_url={self._info.url!r}, client_id={self.client_id!r}, "
            "refresh_token='***')"
        )
