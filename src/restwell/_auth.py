"""Authentication schemes: httpx auth flows, so that one class serves both clients.

Each scheme is an ``httpx.Auth`` whose ``auth_flow`` generator edits the outgoing request;
httpx drives it from ``Client`` and ``AsyncClient`` alike. Reprs never show the secret.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Generator
from typing import Any

import httpx

from ._redaction import Redactor

__all__ = ["APIKeyAuth", "AuthTypes", "BasicAuth", "BearerAuth", "coerce_auth", "redactor_for"]


def _check_secret(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{name} must not contain line breaks or NUL")
    return value


class BearerAuth(httpx.Auth):
    """Sends ``Authorization: Bearer <token>`` with every request.

    Example:
        >>> import restwell
        >>> auth = restwell.BearerAuth("s3cr3t")
        >>> auth
        BearerAuth(token='***')
    """

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {_check_secret('token', token)}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header (httpx calls this; users don't)."""
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"


class BasicAuth(httpx.Auth):
    """HTTP Basic authentication (RFC 7617).

    Example:
        >>> import restwell
        >>> restwell.BasicAuth("alice", "wonderland")
        BasicAuth(username='alice', password='***')
    """

    def __init__(self, username: str, password: str) -> None:
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError("BasicAuth takes a str username and a str password")
        if ":" in username:
            raise ValueError("a Basic auth username must not contain ':' (RFC 7617 §2)")
        self.username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._header = f"Basic {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header (httpx calls this; users don't)."""
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='***')"


class APIKeyAuth(httpx.Auth):
    """Sends an API key in a header (``X-API-Key`` by default) or a query parameter.

    Example:
        >>> import restwell
        >>> restwell.APIKeyAuth("k", query="api_key")
        APIKeyAuth(key='***', query='api_key')
    """

    def __init__(
        self, key: str, header: str | None = "X-API-Key", *, query: str | None = None
    ) -> None:
        self._key = _check_secret("api key", key)
        if query is not None:
            header = None
        if header is None and query is None:
            raise ValueError("APIKeyAuth needs a header name or a query parameter name")
        self.header = header
        self.query = query

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the key (httpx calls this; users don't)."""
        if self.header is not None:
            request.headers[self.header] = self._key
        else:
            assert self.query is not None
            request.url = request.url.copy_merge_params({self.query: self._key})
        yield request

    def __repr__(self) -> str:
        where = f"header={self.header!r}" if self.header else f"query={self.query!r}"
        return f"APIKeyAuth(key='***', {where})"


class _FunctionAuth(httpx.Auth):
    """Adapts a callable ``request -> request`` to httpx's auth protocol."""

    def __init__(self, func: Callable[[httpx.Request], httpx.Request]) -> None:
        self._func = func

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield self._func(request)

    def __repr__(self) -> str:
        return f"FunctionAuth({getattr(self._func, '__qualname__', 'callable')})"


AuthTypes = httpx.Auth | tuple[str, str] | Callable[[httpx.Request], httpx.Request] | None
"""What ``auth=`` accepts: an ``httpx.Auth`` (every restwell scheme is one), a
``(username, password)`` tuple, a callable ``request -> request``, or ``None``."""


def coerce_auth(value: Any) -> httpx.Auth | None:
    """Turn what users pass as ``auth=`` into an ``httpx.Auth`` (or ``None``).

    Example:
        >>> coerce_auth(("alice", "pw"))
        BasicAuth(username='alice', password='***')
    """
    if value is None or isinstance(value, httpx.Auth):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        return BasicAuth(*value)
    if callable(value):
        return _FunctionAuth(value)
    raise TypeError(
        "auth must be an httpx.Auth, a (username, password) tuple or a callable, "
        f"got {type(value).__name__}"
    )


def redactor_for(redactor: Redactor, auth: httpx.Auth | None) -> Redactor:
    """``redactor``, extended with the header or query name an :class:`APIKeyAuth` uses.

    Example:
        >>> "x-key" in redactor_for(Redactor(), APIKeyAuth("k", header="X-Key")).headers
        True
    """
    if isinstance(auth, APIKeyAuth):
        return redactor.with_names(
            headers=[auth.header] if auth.header else (),
            query=[auth.query] if auth.query else (),
            body_fields=[auth.query or auth.header or ""],
        )
    return redactor
