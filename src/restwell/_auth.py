"""Authentication schemes: httpx auth flows, so that one class serves both clients.

Each scheme is an ``httpx.Auth`` whose ``auth_flow`` generator edits the outgoing request;
httpx drives it from ``Client`` and ``AsyncClient`` alike. Reprs never show the secret.
"""

from __future__ import annotations

import base64
import inspect
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any

import httpx

from ._exceptions import ValidationError
from ._headers import field_name_problem, field_value_problem, shown_name
from ._redaction import Redactor

__all__ = [
    "APIKeyAuth",
    "AuthTypes",
    "BasicAuth",
    "BearerAuth",
    "TokenProvider",
    "coerce_auth",
    "env_value",
    "redactor_for",
]


def _check_secret(name: str, value: object) -> str:
    """``value`` if it is a usable credential; the errors name ``name``, never the value.

    A credential goes into a header (or a form, where RFC 6749 asks for VSCHARs only), so it
    must be a valid field value (RFC 9110 §5.5): the trailing space or tab a ``.env`` file
    leaves would otherwise reach h11, whose error quotes the value.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    problem = field_value_problem(value)
    if problem is not None:
        raise ValueError(f"{name} {problem}; the value is not shown")
    return value


TokenProvider = Callable[[], str] | Callable[[], Awaitable[str]]
"""A callable returning a bearer token (sync, or async for ``AsyncClient``), called per request."""


def env_value(name: str) -> str:
    """The value of environment variable ``name``; missing or empty raises an error naming it.

    Example:
        >>> env_value("RESTWELL_SURELY_UNSET")
        Traceback (most recent call last):
        ...
        ValueError: environment variable RESTWELL_SURELY_UNSET is not set
    """
    if not isinstance(name, str) or not name:
        raise TypeError("the environment variable name must be a non-empty str")
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} is not set")
    if not value.strip():
        raise ValueError(f"environment variable {name} is set but empty")
    return value


def _is_async_callable(func: object) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    )


class BearerAuth(httpx.Auth):
    """Sends ``Authorization: Bearer <token>`` with every request (RFC 6750 §2.1).

    ``token`` is a fixed string, or a provider: a callable returning the current token,
    called for every request (for short-lived tokens your own code refreshes). An ``async``
    provider works with :class:`AsyncClient` only.

    Example:
        >>> import restwell
        >>> restwell.BearerAuth("s3cr3t")
        BearerAuth(token='***')
        >>> restwell.BearerAuth(lambda: "fresh-token")
        BearerAuth(token=<provider>)
    """

    def __init__(self, token: str | TokenProvider) -> None:
        self._provider: TokenProvider | None = None
        self._header = ""
        if callable(token):
            self._provider = token
            self._async = _is_async_callable(token)
        else:
            self._header = f"Bearer {_check_secret('token', token)}"
            self._async = False

    @classmethod
    def from_env(cls, variable: str) -> BearerAuth:
        """Read the token from environment variable ``variable`` (missing or empty raises).

        Example:
            >>> import os, restwell
            >>> os.environ["EXAMPLE_TOKEN"] = "t"
            >>> restwell.BearerAuth.from_env("EXAMPLE_TOKEN")
            BearerAuth(token='***')
            >>> del os.environ["EXAMPLE_TOKEN"]
        """
        return cls(env_value(variable))

    @staticmethod
    def _header_for(token: object) -> str:
        if not isinstance(token, str):
            raise ValidationError(
                f"the bearer token provider returned {type(token).__name__}, not a str"
            )
        if not token:
            raise ValidationError("the bearer token provider returned an empty token")
        problem = field_value_problem(token)
        if problem is not None:
            raise ValidationError(
                f"the bearer token provider returned a token that {problem}; the value is not shown"
            )
        return f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header (httpx calls this; users don't)."""
        header = self._header
        if self._provider is not None:
            if self._async:
                raise TypeError("an async token provider needs restwell.AsyncClient")
            header = self._header_for(self._provider())
        request.headers["Authorization"] = header
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Add the header, awaiting an async provider (httpx calls this; users don't)."""
        header = self._header
        if self._provider is not None:
            token = self._provider()
            if inspect.isawaitable(token):
                token = await token
            header = self._header_for(token)
        request.headers["Authorization"] = header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token=<provider>)" if self._provider else "BearerAuth(token='***')"


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
        for name, text in (("username", username), ("password", password)):
            if any(ch < " " or ch == "\x7f" for ch in text):
                raise ValueError(
                    f"the Basic auth {name} holds a control character (RFC 7617 §2); "
                    "the value is not shown"
                )
        self.username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._header = f"Basic {token}"

    @classmethod
    def from_env(cls, username_variable: str, password_variable: str) -> BasicAuth:
        """Read the username and the password from two environment variables.

        A missing or empty variable raises a ``ValueError`` naming it.

        Example:
            >>> import os, restwell
            >>> os.environ.update(EXAMPLE_USER="alice", EXAMPLE_PASSWORD="pw")
            >>> restwell.BasicAuth.from_env("EXAMPLE_USER", "EXAMPLE_PASSWORD")
            BasicAuth(username='alice', password='***')
            >>> for name in ("EXAMPLE_USER", "EXAMPLE_PASSWORD"): del os.environ[name]
        """
        return cls(env_value(username_variable), env_value(password_variable))

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
        if header is not None:
            if not isinstance(header, str):
                raise TypeError(f"APIKeyAuth header must be a str, got {type(header).__name__}")
            problem = field_name_problem(header)
            if problem is not None:
                raise ValueError(f"APIKeyAuth header name {shown_name(header)} {problem}")
        self.header = header
        self.query = query

    @classmethod
    def from_env(
        cls, variable: str, header: str | None = "X-API-Key", *, query: str | None = None
    ) -> APIKeyAuth:
        """Read the key from environment variable ``variable`` (missing or empty raises).

        Example:
            >>> import os, restwell
            >>> os.environ["EXAMPLE_API_KEY"] = "k"
            >>> restwell.APIKeyAuth.from_env("EXAMPLE_API_KEY", query="key")
            APIKeyAuth(key='***', query='key')
            >>> del os.environ["EXAMPLE_API_KEY"]
        """
        return cls(env_value(variable), header, query=query)

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
