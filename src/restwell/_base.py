"""``BaseClient``: everything both clients share that does no I/O.

Construction validates and resolves every argument once (so the hot path of a request only
merges what the call itself passes), and ``_prepare`` turns one call's arguments into an
``httpx.Request`` and the :class:`~restwell._call.Call` that drives it. ``Client`` and
``AsyncClient`` add only their send loops.
"""

from __future__ import annotations

import os
import types
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Literal, TypedDict, TypeVar

import httpx

from ._auth import APIKeyAuth, AuthTypes, BasicAuth, BearerAuth, coerce_auth, redactor_for
from ._call import Call
from ._config import USE_CLIENT_DEFAULT, Limits, Timeout, TimeoutTypes, UseClientDefault
from ._headers import field_name_problem, field_value_problem, shown_name
from ._logfilter import install_log_filter
from ._logging import LOGGING_OBSERVER
from ._middleware import Middleware, check_middleware
from ._observer import Observer
from ._redaction import (
    DEFAULT_REDACTOR,
    Redactor,
    quote_url,
    redacting_headers,
    url_error_detail,
)
from ._retry import Retry, RetryTypes, coerce_retry
from ._serialization import JSONDumps, JSONLoads, default_json, encode_json
from ._tls import CertTypes, VerifyTypes
from ._version import __version__
from ._versioning import VersionHeader, Versioning, VersionPath, VersionQuery

if TYPE_CHECKING:
    from ._breaker import CircuitBreaker
    from ._budget import RetryBudget
    from ._cache import BoundCache, Cache, CacheMode
    from ._ratelimit import RateLimit
    from ._response import ProgressCallback

__all__ = [
    "BaseClient",
    "ClientSettings",
    "CookieTypes",
    "HeaderTypes",
    "QueryParamTypes",
    "RequestOptions",
    "URLTypes",
]

URLTypes = httpx.URL | str
"""A URL: absolute, or relative to the client's ``base_url``."""
PrimitiveData = str | int | float | bool | None
HeaderTypes = (
    httpx.Headers
    | Mapping[str, str]
    | Mapping[bytes, bytes]
    | Sequence[tuple[str, str]]
    | Sequence[tuple[bytes, bytes]]
)
"""Headers: a mapping, a list of ``(name, value)`` pairs (for repeated names) or httpx's."""
QueryParamTypes = (
    httpx.QueryParams
    | Mapping[str, PrimitiveData | Sequence[PrimitiveData]]
    | list[tuple[str, PrimitiveData]]
    | tuple[tuple[str, PrimitiveData], ...]
    | str
    | bytes
)
"""Query parameters: a mapping (a list value repeats the key), pairs, httpx's, or a string."""
CookieTypes = httpx.Cookies | CookieJar | dict[str, str] | list[tuple[str, str]]
"""Cookies: a dict of names to values, pairs, a ``CookieJar`` or httpx's."""

DEFAULT_USER_AGENT: Final = f"restwell/{__version__}"

Backend = Literal["httpx", "aiohttp"]
"""An ``AsyncClient``'s connection backend: httpx's own (httpcore) or aiohttp."""

_DEFAULT_ASYNC_BACKEND: Backend = "httpx"
"""The backend of an ``AsyncClient`` given neither ``backend`` nor ``transport`` (tests set it)."""

_POOL_OPTIONS: Final = frozenset(
    {
        "verify",
        "cert",
        "limits",
        "http2",
        "proxy",
        "trust_env",
        "transport",
        "backend",
        "mounts",
        "max_redirects",
        "cookies",
    }
)

_URL_CACHE_SIZE: Final = 512
"""Distinct URL strings a client remembers joined (more are joined on every call)."""

Self = TypeVar("Self", bound="BaseClient[Any]")
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
"""The transport type a client takes: ``httpx.BaseTransport`` or ``httpx.AsyncBaseTransport``."""


class RequestOptions(TypedDict, total=False):
    """The keyword arguments every request method takes (see :meth:`Client.request`).

    For typing wrappers that forward them, as ``get`` and friends do.

    Example:
        >>> from typing_extensions import Unpack
        >>> import restwell
        >>> def get_user(client: restwell.Client, user_id: int,
        ...              **options: Unpack[restwell.RequestOptions]) -> restwell.Response:
        ...     return client.get(f"/users/{user_id}", **options)
    """

    params: QueryParamTypes | None
    headers: HeaderTypes | None
    cookies: CookieTypes | None
    content: Any
    data: Mapping[str, Any] | None
    files: Any
    json: Any
    auth: AuthTypes | UseClientDefault
    timeout: TimeoutTypes | UseClientDefault
    retry: RetryTypes | UseClientDefault
    raise_for_status: bool | UseClientDefault
    allow_status: Collection[int] | UseClientDefault
    api_version: str | None | UseClientDefault
    idempotency_key: str | bool | None
    follow_redirects: bool | UseClientDefault
    extensions: dict[str, Any] | None
    middleware: Sequence[Middleware] | None
    cache: bool | Literal["refresh"] | UseClientDefault


def _check_base_url(value: object) -> httpx.URL | None:
    if value is None:
        return None
    if not isinstance(value, str | httpx.URL):
        raise TypeError(f"base_url must be a str or httpx.URL, got {type(value).__name__}")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        # Quoted redacted: a base URL may carry credentials (https://user:pw@host/).
        raise ValueError(
            f"base_url {quote_url(value)} is not a valid URL: {url_error_detail(exc)}"
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"base_url must be an absolute http:// or https:// URL, got {quote_url(url)}"
        )
    _check_port(url, "base_url")
    if url.query or url.fragment:
        raise ValueError("base_url must not carry a query or fragment; use params= instead")
    # Relative paths are appended to the base path, so it must end in "/" (as in httpx).
    if not url.raw_path.endswith(b"/"):
        url = url.copy_with(raw_path=url.raw_path + b"/")
    return url


def _check_port(url: httpx.URL, where: str) -> None:
    # httpx accepts any number; a socket's connect() raises OverflowError beyond 65535.
    if url.port is not None and url.port > 65535:
        raise ValueError(f"{where} {quote_url(url)} has a port above 65535")


def _check_headers(headers: object, where: str) -> None:
    items: Iterable[Any]
    if isinstance(headers, httpx.Headers):
        items = headers.raw
    elif isinstance(headers, Mapping):
        items = headers.items()
    elif isinstance(headers, Iterable) and not isinstance(headers, str | bytes):
        items = headers
    else:
        raise TypeError(
            f"{where} must be a mapping or a list of pairs, got {type(headers).__name__}"
        )
    for item in items:
        name, value = item
        if not isinstance(name, str | bytes):
            raise TypeError(f"{where}: header names must be str, got {type(name).__name__}")
        if not isinstance(value, str | bytes):
            raise TypeError(
                f"{where}: the value of header {name!r} must be str or bytes, "
                f"got {type(value).__name__}"
            )
        _check_field(name, value, where)


def _check_field(name: str | bytes, value: str | bytes, where: str) -> None:
    """Refuse a header h11 would refuse, naming the header and never quoting its value."""
    problem = field_name_problem(name)
    if problem is not None:
        raise ValueError(f"{where}: the header name {shown_name(name)} {problem}")
    problem = field_value_problem(value)
    if problem is not None:
        shown = name.decode("latin-1") if isinstance(name, bytes) else name
        raise ValueError(
            f"{where}: the value of header {shown!r} {problem}; the value is not shown"
        )


def _check_cookies(cookies: object, where: str) -> None:
    """Refuse cookies whose name or value cannot go in a ``Cookie`` header."""
    if isinstance(cookies, dict | list):
        pairs: Iterable[Any] = cookies.items() if isinstance(cookies, dict) else cookies
    elif isinstance(cookies, httpx.Cookies | CookieJar):
        jar = cookies.jar if isinstance(cookies, httpx.Cookies) else cookies
        pairs = [(cookie.name, cookie.value) for cookie in jar]
    else:
        return  # the type is the pool's (or httpx's) to refuse
    for pair in pairs:
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str | None):
            continue  # httpx's own TypeError is clear enough
        if field_name_problem(name) is not None:
            raise ValueError(f"{where}: the cookie name {shown_name(name)} is not a token")
        problem = field_value_problem(value or "")
        if problem is not None:
            raise ValueError(
                f"{where}: the value of cookie {name!r} {problem}; the value is not shown"
            )


def _check_cache(value: object) -> Cache | None:
    if value is None or value is False:
        return None
    from ._cache import Cache  # noqa: PLC0415 - loaded by then: the caller made one

    if not isinstance(value, Cache):
        raise TypeError(f"cache must be a restwell.Cache or None, got {type(value).__name__}")
    return value


def _check_rate_limit(value: object) -> RateLimit | None:
    if value is None:
        return None
    from ._ratelimit import RateLimit  # noqa: PLC0415 - loaded by then: the caller made one

    if not isinstance(value, RateLimit):
        raise TypeError(
            f"rate_limit must be a restwell.RateLimit or None, got {type(value).__name__}"
        )
    return value


def _cache_mode(value: object) -> CacheMode:
    """A request's ``cache=``: ``True`` (use it), ``False`` (bypass it) or ``"refresh"``."""
    if value is True:
        return "use"
    if value is False:
        return "bypass"
    if value == "refresh":
        return "refresh"
    raise TypeError(f'cache must be True, False or "refresh", got {value!r}')


def _check_observers(value: object) -> tuple[Observer, ...]:
    """The client's observers: the user's, then restwell's logging (always there)."""
    if value is None:
        return (LOGGING_OBSERVER,)
    if isinstance(value, Observer) or not isinstance(value, Iterable):
        raise TypeError(f"observers must be a list of restwell.Observer, got {value!r}")
    observers = tuple(value)
    for item in observers:
        if not isinstance(item, Observer):
            raise TypeError(f"observers holds {type(item).__name__}, not a restwell.Observer")
    if LOGGING_OBSERVER not in observers:
        observers += (LOGGING_OBSERVER,)
    return observers


def _merged_headers(base: Any, extra: Any) -> httpx.Headers:
    _check_headers(extra, "headers")
    merged = httpx.Headers(base)
    merged.update(extra)
    return merged


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return value


def _check_statuses(name: str, value: object) -> frozenset[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a collection of status codes")
    statuses = frozenset(value)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"{name} holds {status!r}, not an HTTP status code")
    return statuses


def _replay_info(content: Any, files: Any) -> tuple[bool, tuple[Any, int] | None]:
    """Whether the body can be sent again, and where a seekable one must be rewound to."""
    if content is not None and not isinstance(content, bytes | str):
        seekable = getattr(content, "seekable", None)
        if seekable is not None and seekable():
            return True, (content, content.tell())
        return False, None
    if files:
        values = files.values() if isinstance(files, Mapping) else (v for _, v in files)
        for value in values:
            file = value[1] if isinstance(value, tuple) else value
            if isinstance(file, bytes | str):
                continue
            seekable = getattr(file, "seekable", None)
            if seekable is None or not seekable():
                return False, None
    return True, None


def _renamed(function: Any, qualname: str) -> Any:
    """A copy of ``function`` whose argument errors name ``qualname``."""
    code = function.__code__
    if hasattr(code, "co_qualname"):  # Python 3.11+ reads the name from the code object
        code = code.replace(co_qualname=qualname)
    copy = types.FunctionType(
        code, function.__globals__, function.__name__, function.__defaults__, function.__closure__
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__annotations__ = function.__annotations__
    copy.__doc__ = function.__doc__
    copy.__module__ = function.__module__
    copy.__qualname__ = qualname
    return copy


class ClientSettings:
    """A client's resolved configuration (immutable once built; shared by its calls)."""

    __slots__ = (
        "allow_status",
        "api_version",
        "auth",
        "base_url",
        "cache",
        "circuit_breaker",
        "follow_redirects",
        "headers",
        "json_dumps",
        "json_loads",
        "middleware",
        "observers",
        "params",
        "raise_for_status",
        "rate_limit",
        "redactor",
        "retry",
        "retry_budget",
        "timeout",
        "timeouts",
        "url_cache",
        "versioning",
    )

    def __init__(self, options: Mapping[str, Any], pool_headers: httpx.Headers) -> None:
        self.base_url = _check_base_url(options["base_url"])
        self.url_cache: dict[str, httpx.URL] = {}
        headers = httpx.Headers(pool_headers)
        user_agent = options["user_agent"]
        if user_agent is not None and not isinstance(user_agent, str):
            raise TypeError(f"user_agent must be a str, got {type(user_agent).__name__}")
        if user_agent and (problem := field_value_problem(user_agent)) is not None:
            raise ValueError(f"user_agent {problem}")
        headers["User-Agent"] = user_agent or DEFAULT_USER_AGENT
        if options["headers"] is not None:
            _check_headers(options["headers"], "headers")
            headers.update(options["headers"])
        self.headers = headers
        params = options["params"]
        self.params = httpx.QueryParams(params) if params else None
        self.auth = self._resolve_auth(options)
        self.timeout = Timeout.coerce(options["timeout"])
        self.timeouts: dict[str, float | None] = self.timeout.as_httpx().as_dict()
        self.retry = coerce_retry(options["retry"])
        self.retry_budget = self._resolve_budget(options["retry_budget"])
        self.circuit_breaker: CircuitBreaker | None = options["circuit_breaker"]
        self.rate_limit = _check_rate_limit(options["rate_limit"])
        self.cache = _check_cache(options["cache"])
        self.follow_redirects = _check_flag("follow_redirects", options["follow_redirects"])
        self.raise_for_status = _check_flag("raise_for_status", options["raise_for_status"])
        self.allow_status = _check_statuses("allow_status", options["allow_status"])
        version = options["api_version"]
        if version is not None and not isinstance(version, str):
            raise TypeError(f"api_version must be a str, got {type(version).__name__}")
        self.api_version: str | None = version
        self.versioning: Versioning = options["versioning"]
        if isinstance(self.versioning, VersionHeader):
            _check_field(self.versioning.name, version or "", "api_version")
        # Resolved here, once: orjson when installed (imported now, not at import restwell).
        dumps, loads = default_json()
        self.json_dumps: JSONDumps = options["json_dumps"] or dumps
        self.json_loads: JSONLoads = options["json_loads"] or loads
        for name in ("json_dumps", "json_loads"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{name} must be callable")
        redactor = options["redactor"]
        if redactor is None:
            redactor = DEFAULT_REDACTOR
        elif not isinstance(redactor, Redactor):
            raise TypeError(f"redactor must be a restwell.Redactor, got {type(redactor).__name__}")
        self.redactor: Redactor = redactor_for(redactor, self.auth)
        install_log_filter(self.redactor)
        self.middleware = check_middleware(options["middleware"])
        self.observers = _check_observers(options["observers"])

    @staticmethod
    def _resolve_auth(options: Mapping[str, Any]) -> httpx.Auth | None:
        given = [name for name in ("auth", "api_key", "token") if options[name] is not None]
        if len(given) > 1:
            raise ValueError(
                f"pass only one of auth=, api_key= and token= (got {', '.join(given)})"
            )
        if options["api_key"] is not None:
            return APIKeyAuth(options["api_key"])
        if options["token"] is not None:
            return BearerAuth(options["token"])
        return coerce_auth(options["auth"])

    @staticmethod
    def _resolve_budget(value: object) -> RetryBudget | None:
        if value is False or value is None:
            return None
        from ._budget import RetryBudget  # noqa: PLC0415 - keeps import restwell light

        if value is True:
            return RetryBudget()
        if isinstance(value, RetryBudget):
            return value
        raise TypeError(f"retry_budget must be a RetryBudget or a bool, got {type(value).__name__}")


class BaseClient(Generic[TransportT]):
    """Configuration, request building and call decisions shared by both clients.

    Generic in the transport type only, so that each client's ``transport=`` is typed as
    the kind it can drive without repeating the constructor's signature.
    """

    _pool_class: ClassVar[type[httpx.Client] | type[httpx.AsyncClient]]

    _settings: ClientSettings
    _parent: BaseClient[Any] | None = None
    # The prefix of a client built by from_env, for errors that a missing variable explains.
    _env_prefix: str | None = None
    _options: dict[str, Any]
    _pool: Any
    _owns_pool: bool
    _closed: bool

    def __init__(
        self,
        base_url: URLTypes | None = None,
        *,
        headers: HeaderTypes | None = None,
        params: QueryParamTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes = None,
        api_key: str | None = None,
        token: str | None = None,
        timeout: TimeoutTypes = Timeout(),  # noqa: B008 - frozen, safe to share
        retry: RetryTypes = Retry(),  # noqa: B008 - frozen, safe to share
        retry_budget: RetryBudget | bool = True,
        verify: VerifyTypes = True,
        cert: CertTypes | None = None,
        limits: Limits = Limits(),  # noqa: B008 - frozen, safe to share
        http2: bool = False,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        trust_env: bool = True,
        follow_redirects: bool = True,
        max_redirects: int = 20,
        user_agent: str | None = None,
        raise_for_status: bool = True,
        allow_status: Collection[int] = (),
        api_version: str | None = None,
        versioning: Versioning = VersionHeader(),  # noqa: B008 - frozen, safe to share
        circuit_breaker: CircuitBreaker | None = None,
        rate_limit: RateLimit | None = None,
        json_dumps: JSONDumps | None = None,
        json_loads: JSONLoads | None = None,
        transport: TransportT | None = None,
        mounts: Mapping[str, TransportT | None] | None = None,
        redactor: Redactor | None = None,
        middleware: Sequence[Middleware] | None = None,
        observers: Sequence[Observer] | None = None,
        cache: Cache | None = None,
        backend: Backend | None = None,
    ) -> None:
        options = dict(locals())
        del options["self"]
        options.pop("__class__", None)
        self._closed = False
        self._owns_pool = False
        self._options = options
        pool = self._open_pool(options)
        try:
            self._settings = ClientSettings(options, pool.headers)
        except BaseException:
            if isinstance(pool, httpx.Client):  # an AsyncClient opened no socket yet
                pool.close()
            raise
        self._share_pool(pool)
        self._owns_pool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            # Python names the function in an argument error ("BaseClient.__init__() got an
            # unexpected keyword argument"): give each client a copy under its own name, so
            # the message names the class the caller wrote. Same code, same signature.
            cls.__init__ = _renamed(BaseClient.__init__, f"{cls.__qualname__}.__init__")  # type: ignore[method-assign]

    def _share_pool(self, pool: Any) -> None:
        self._pool = pool
        # The pool strips secret headers on cross-origin redirects (see _pool.py): it must
        # know every name any client sharing it considers secret.
        pool.add_secret_headers(self._settings.redactor.headers)

    def _backend(self, options: Mapping[str, Any]) -> Backend:
        """The backend ``options`` ask for (checked): "httpx" or "aiohttp"."""
        backend = options["backend"]
        is_async = issubclass(self._pool_class, httpx.AsyncClient)
        if backend is None:
            # The test suite runs every async test on both backends through this default.
            if is_async and options["transport"] is None:
                return _DEFAULT_ASYNC_BACKEND
            return "httpx"
        if backend not in ("httpx", "aiohttp"):
            raise ValueError(f'backend must be "httpx" or "aiohttp", got {backend!r}')
        if backend == "aiohttp" and not is_async:
            raise ValueError(
                f'backend="aiohttp" is for AsyncClient only; {type(self).__name__} uses httpx'
            )
        return backend  # type: ignore[no-any-return]

    def _open_pool(self, options: Mapping[str, Any]) -> Any:
        from ._tls import build_ssl_context  # noqa: PLC0415 - ssl setup only at construction

        limits = options["limits"]
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a restwell.Limits, got {type(limits).__name__}")
        cookies = options["cookies"]
        if cookies is not None and not isinstance(cookies, dict | list | CookieJar | httpx.Cookies):
            raise TypeError("cookies must be a dict of names to values")
        _check_cookies(cookies, "cookies")
        for name in ("http2", "trust_env"):
            _check_flag(name, options[name])
        transport = options["transport"]
        if transport is not None:
            # An AsyncClient given a sync transport would fail only at its first request,
            # with an AttributeError deep inside httpx.
            is_async = issubclass(self._pool_class, httpx.AsyncClient)
            expected = httpx.AsyncBaseTransport if is_async else httpx.BaseTransport
            if not isinstance(transport, expected):
                raise TypeError(
                    f"transport must be an httpx.{expected.__name__} for "
                    f"{type(self).__name__}, got {type(transport).__name__}"
                )
        # Built (and so validated) even when a transport makes it unused, as httpx ignores it.
        ssl_context = build_ssl_context(
            options["verify"], options["cert"], trust_env=options["trust_env"]
        )
        kwargs: dict[str, Any] = {} if transport is not None else {"verify": ssl_context}
        proxy = options["proxy"]
        if self._backend(options) == "aiohttp":
            from ._aiohttp import AiohttpTransport  # noqa: PLC0415 - only this backend needs it

            if options["http2"]:
                raise ValueError('http2=True: backend="aiohttp" speaks HTTP/1.1 only')
            if transport is None:
                transport = AiohttpTransport(
                    ssl_context=ssl_context,
                    max_connections=limits.max_connections,
                    keepalive_expiry=limits.keepalive_expiry,
                    proxy=proxy,
                    trust_env=options["trust_env"],
                )
            elif not isinstance(transport, AiohttpTransport):
                raise ValueError(
                    f'backend="aiohttp" takes an AiohttpTransport as transport=, '
                    f"got {type(transport).__name__}"
                )
            proxy = None  # the transport's: httpx would route around it through httpcore
        elif options["http2"]:
            try:
                import h2  # noqa: F401, PLC0415 - only to give a clear error
            except ImportError:
                raise ImportError(
                    'http2=True needs the h2 package: pip install "restwell[http2]"'
                ) from None
        pool = self._pool_class(
            cookies=options["cookies"],
            limits=limits.as_httpx(),
            http2=options["http2"],
            proxy=proxy,
            trust_env=options["trust_env"],
            max_redirects=options["max_redirects"],
            transport=transport,
            mounts=options["mounts"],
            **kwargs,
        )
        if isinstance(pool, httpx.Client):
            from ._sync_deadline import install  # noqa: PLC0415 - the sync client only

            install(pool)
        return pool

    # -- configuration ------------------------------------------------------------------

    @property
    def base_url(self) -> httpx.URL | None:
        """The base URL relative request URLs are joined to (``None`` when not set)."""
        return self._settings.base_url

    @property
    def headers(self) -> httpx.Headers:
        """A copy of the default headers every request carries (its repr hides secrets)."""
        return redacting_headers(httpx.Headers(self._settings.headers), self._settings.redactor)

    @property
    def timeout(self) -> Timeout:
        """The default :class:`Timeout`."""
        return self._settings.timeout

    @property
    def retry(self) -> Retry:
        """The default :class:`Retry` policy."""
        return self._settings.retry

    @property
    def cookies(self) -> httpx.Cookies:
        """The cookie jar, shared with every client made by :meth:`with_options`."""
        cookies: httpx.Cookies = self._pool.cookies
        return cookies

    @property
    def cache(self) -> BoundCache | None:
        """The HTTP :class:`Cache` (``None`` without one): ``clear()``, ``invalidate(url)``.

        Relative URLs given to ``invalidate`` are joined to the client's ``base_url``.

        Example:
            >>> import restwell
            >>> with restwell.Client("https://api.example.com", cache=restwell.Cache()) as client:
            ...     client.cache.invalidate("/users/1")
            ...     client.cache.clear()
        """
        cache = self._settings.cache
        if cache is None:
            return None
        from ._cache import BoundCache  # noqa: PLC0415 - loaded by then: the client has a Cache

        return BoundCache(cache, self._merge_url, self._settings.redactor)

    @property
    def is_closed(self) -> bool:
        """Whether ``close()`` was called (on this client or on the one owning the pool)."""
        return self._closed or bool(self._pool.is_closed)

    def with_options(self: Self, **overrides: Any) -> Self:
        """Return a client with changed configuration that shares this client's pool.

        Connection-level settings (``verify``, ``cert``, ``limits``, ``http2``, ``proxy``,
        ``trust_env``, ``transport``, ``max_redirects``, ``cookies``) belong to the pool and
        cannot change; everything else can. The new client does not own the pool: close the
        original when done.

        Example:
            >>> import restwell
            >>> with restwell.Client("https://api.example.com") as client:
            ...     slow = client.with_options(timeout=120, retry=5)
            ...     slow.timeout.read, slow.retry.max_retries, client.retry.max_retries
            (120.0, 5, 2)
        """
        unknown = set(overrides) - set(self._options)
        if unknown:
            raise TypeError(f"with_options() got unknown option(s): {', '.join(sorted(unknown))}")
        fixed = _POOL_OPTIONS & set(overrides)
        if fixed:
            raise ValueError(
                f"with_options() cannot change {', '.join(sorted(fixed))}: the new client "
                "shares this client's connection pool; create a new client instead"
            )
        options = {**self._options, **overrides}
        # Headers and params merge over the client's, as a request's own do: a copy adds or
        # changes defaults rather than silently dropping them.
        if overrides.get("headers") and self._options["headers"]:
            options["headers"] = _merged_headers(self._options["headers"], overrides["headers"])
        if overrides.get("params") and self._options["params"]:
            options["params"] = httpx.QueryParams(self._options["params"]).merge(
                overrides["params"]
            )
        if {"auth", "api_key", "token"} & set(overrides):
            for name in ("auth", "api_key", "token"):
                if name not in overrides:
                    options[name] = None
        if "retry_budget" not in overrides:
            options["retry_budget"] = self._settings.retry_budget or False
        clone = object.__new__(type(self))
        clone._closed = False
        clone._owns_pool = False
        clone._options = options
        clone._settings = ClientSettings(options, self._pool.headers)
        clone._share_pool(self._pool)
        clone._env_prefix = self._env_prefix
        # The pool belongs to the original: keep it alive (and open) while the copy lives.
        clone._parent = self
        return clone

    @classmethod
    def from_env(cls: type[Self], prefix: str, **overrides: Any) -> Self:
        """Build a client from ``{PREFIX}_*`` environment variables; keyword arguments win.

        Reads ``{PREFIX}_BASE_URL``, ``_API_KEY``, ``_TOKEN``, ``_USERNAME`` / ``_PASSWORD``,
        ``_TIMEOUT`` and ``_CA_BUNDLE``. Each is optional; one that is set but empty raises a
        ``ValueError`` naming it. Without ``{PREFIX}_BASE_URL`` (or ``base_url=``) the client
        takes absolute URLs only: a relative one raises a ``ValueError`` naming the variable.

        Example:
            >>> import os, restwell
            >>> os.environ["EXAMPLE_BASE_URL"] = "https://api.example.com"
            >>> with restwell.Client.from_env("EXAMPLE") as client:
            ...     str(client.base_url)
            'https://api.example.com'
            >>> del os.environ["EXAMPLE_BASE_URL"]
        """
        prefix = prefix.rstrip("_").upper()

        def env(name: str) -> str | None:
            value = os.environ.get(f"{prefix}_{name}")
            if value is not None and not value.strip():
                # Set but empty is a deployment mistake; treating it as unset would hide it.
                raise ValueError(f"environment variable {prefix}_{name} is set but empty")
            return value

        options: dict[str, Any] = {}
        if (base_url := env("BASE_URL")) is not None:
            options["base_url"] = base_url
        credentials = {"auth", "api_key", "token"} & set(overrides)
        if not credentials:
            if (api_key := env("API_KEY")) is not None:
                options["api_key"] = api_key
            elif (token := env("TOKEN")) is not None:
                options["token"] = token
            elif (username := env("USERNAME")) is not None:
                password = env("PASSWORD")
                if password is None:
                    raise ValueError(f"{prefix}_USERNAME is set but {prefix}_PASSWORD is not")
                options["auth"] = BasicAuth(username, password)
        if (timeout := env("TIMEOUT")) is not None:
            try:
                options["timeout"] = float(timeout)
            except ValueError:
                raise ValueError(
                    f"{prefix}_TIMEOUT must be a number of seconds, got {timeout!r}"
                ) from None
        if (ca_bundle := env("CA_BUNDLE")) is not None:
            options["verify"] = ca_bundle
        options.update(overrides)
        client = cls(**options)
        # Without {PREFIX}_BASE_URL the client still serves absolute URLs; a relative one
        # then fails naming the variable (see _join_url).
        client._env_prefix = prefix
        return client

    def __repr__(self) -> str:
        settings = self._settings
        base = DEFAULT_REDACTOR.url(settings.base_url) if settings.base_url else None
        return f"<restwell.{type(self).__name__} base_url={base!r} auth={settings.auth!r}>"

    # -- building a call ----------------------------------------------------------------

    def _merge_url(self, url: URLTypes) -> httpx.URL:
        if isinstance(url, str):
            # Parsing and joining a URL is the largest cost restwell adds to a request; an API
            # client calls the same few paths again and again, and httpx.URL is immutable.
            cache = self._settings.url_cache
            merged = cache.get(url)
            if merged is None:
                merged = self._join_url(url)
                if len(cache) < _URL_CACHE_SIZE:
                    cache[url] = merged
            return merged
        return self._join_url(url)

    def _join_url(self, url: URLTypes) -> httpx.URL:
        # Every URL an error quotes is redacted: it may hold userinfo or a query secret.
        redactor = self._settings.redactor
        try:
            merged = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError(
                f"url {quote_url(url, redactor)} is not a valid URL: {url_error_detail(exc)}"
            ) from None
        if merged.is_relative_url:
            base = self._settings.base_url
            if base is None:
                hint = ""
                if self._env_prefix is not None:
                    hint = (
                        f" (it was built by from_env({self._env_prefix!r}) and the "
                        f"environment variable {self._env_prefix}_BASE_URL is not set)"
                    )
                raise ValueError(
                    f"url {quote_url(merged, redactor)} is relative and the client has no "
                    f"base_url{hint}"
                )
            return base.copy_with(raw_path=base.raw_path + merged.raw_path.lstrip(b"/"))
        if merged.scheme not in ("http", "https"):
            raise ValueError(f"url {quote_url(merged, redactor)} must use http:// or https://")
        _check_port(merged, "url")
        return merged

    def _prepare(
        self,
        method: str,
        url: URLTypes,
        *,
        params: QueryParamTypes | None,
        headers: HeaderTypes | None,
        cookies: CookieTypes | None,
        content: Any,
        data: Mapping[str, Any] | None,
        files: Any,
        json: Any,
        auth: AuthTypes | UseClientDefault,
        timeout: TimeoutTypes | UseClientDefault,
        retry: RetryTypes | UseClientDefault,
        raise_for_status: bool | UseClientDefault,
        allow_status: Collection[int] | UseClientDefault,
        api_version: str | None | UseClientDefault,
        idempotency_key: str | bool | None,
        follow_redirects: bool | UseClientDefault,
        extensions: dict[str, Any] | None,
        stream: bool,
        progress: ProgressCallback | None,
        now: float,
        middleware: Sequence[Middleware] | None = None,
        cache: bool | str | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Call:
        """Build the request and the call that will send it. No I/O happens here."""
        if self._closed or self._pool.is_closed:
            raise RuntimeError(f"cannot send a request: {self!r} is closed")
        settings = self._settings
        full_url = self._merge_url(url)

        request_headers = settings.headers
        extra_headers = headers is not None or json is not None or idempotency_key
        version = settings.api_version if api_version is USE_CLIENT_DEFAULT else api_version
        if extra_headers or version is not None:
            request_headers = httpx.Headers(request_headers)
            if headers is not None:
                _check_headers(headers, "headers")
                request_headers.update(headers)
            if version is not None:
                if not isinstance(version, str):
                    raise TypeError(f"api_version must be a str, got {type(version).__name__}")
                versioning = settings.versioning
                if api_version is not USE_CLIENT_DEFAULT and isinstance(versioning, VersionHeader):
                    _check_field(versioning.name, version, "api_version")
                if isinstance(versioning, VersionPath):
                    base_path = settings.base_url.path if settings.base_url else "/"
                    full_url = versioning.apply(full_url, request_headers, version, base_path)
                else:
                    full_url = versioning.apply(full_url, request_headers, version)

        if json is not None:
            if content is not None or data is not None:
                raise TypeError("pass only one of json=, content= and data=")
            content = encode_json(json, settings.json_dumps)
            if "content-type" not in request_headers:
                request_headers["Content-Type"] = "application/json"

        has_key = False
        if idempotency_key:
            if idempotency_key is True:
                idempotency_key = str(uuid.uuid4())
            elif not isinstance(idempotency_key, str):
                raise TypeError(
                    f"idempotency_key must be a str or True, got {type(idempotency_key).__name__}"
                )
            elif field_value_problem(idempotency_key) is not None:
                raise ValueError(f"idempotency_key {field_value_problem(idempotency_key)}")
            request_headers["Idempotency-Key"] = idempotency_key
            has_key = True

        merged_params = params or None  # httpx drops the URL's query even for params={}
        if settings.params is not None:
            merged_params = settings.params.merge(params) if params else settings.params
        if merged_params and full_url.query:
            # httpx.Request(params=...) replaces the URL's own query (httpx 0.28). Keep it and
            # add the params after it, as requests does: a key in both appears twice.
            query = httpx.QueryParams(merged_params)
            if version is not None and isinstance(settings.versioning, VersionQuery):
                # VersionQuery put the version in the URL: it goes in once, over any value
                # the params give its name.
                query = query.remove(settings.versioning.name)
            if query:
                added = str(query).encode("ascii")
                full_url = full_url.copy_with(query=full_url.query + b"&" + added)
            merged_params = None

        jar = self._pool.cookies
        merged_cookies: httpx.Cookies | None = None
        if cookies:
            _check_cookies(cookies, "cookies")
            merged_cookies = httpx.Cookies(jar)
            merged_cookies.update(cookies)

        if timeout is USE_CLIENT_DEFAULT:
            timeouts = settings.timeouts
            total = settings.timeout.total
        else:
            chosen = Timeout.coerce(timeout)  # type: ignore[arg-type]
            timeouts = chosen.as_httpx().as_dict()
            total = chosen.total
        request_extensions: dict[str, Any] = {"timeout": timeouts}
        if extensions:
            request_extensions.update(extensions)

        body_stream = None
        if content is not None and not isinstance(content, bytes | str):
            # Files and iterators stream through one object that serves both clients.
            from ._upload import encode_body  # noqa: PLC0415 - only streamed bodies need it

            body_stream, framing = encode_body(
                content, is_async=issubclass(self._pool_class, httpx.AsyncClient)
            )
            if request_headers is settings.headers:
                request_headers = httpx.Headers(request_headers)
            for name, value in framing.items():
                request_headers.setdefault(name, value)

        request = httpx.Request(
            method,
            full_url,
            params=merged_params,
            headers=request_headers,
            cookies=merged_cookies,
            content=content if body_stream is None else None,
            data=data,
            files=files,
            stream=body_stream,
            extensions=request_extensions,
        )
        if merged_cookies is None and jar:
            # The jar adds the cookies that match this URL; copying it per request (as
            # httpx's own merge does) costs more than the rest of building the request.
            jar.set_cookie_header(request)
        if body_stream is not None and "host" not in request.headers:
            # httpx adds Host (as below) only to requests it encodes the body of itself.
            request.headers["Host"] = request.url.netloc.decode("ascii")
        replayable, rewind_to = (
            (True, None) if content is None and not files else _replay_info(content, files)
        )
        call_auth = settings.auth if auth is USE_CLIENT_DEFAULT else coerce_auth(auth)
        redactor = settings.redactor
        if call_auth is not settings.auth and call_auth is not None:
            # A per-request APIKeyAuth may use names the client's redactor does not know.
            redactor = redactor_for(settings.redactor, call_auth)
            if redactor is not settings.redactor:
                install_log_filter(redactor)
                self._pool.add_secret_headers(redactor.headers)
        return Call(
            settings,
            request,
            auth=call_auth,
            follow_redirects=settings.follow_redirects
            if follow_redirects is USE_CLIENT_DEFAULT
            else _check_flag("follow_redirects", follow_redirects),
            raise_for_status=settings.raise_for_status
            if raise_for_status is USE_CLIENT_DEFAULT
            else _check_flag("raise_for_status", raise_for_status),
            allow_status=settings.allow_status
            if allow_status is USE_CLIENT_DEFAULT
            else _check_statuses("allow_status", allow_status),
            retry=settings.retry if retry is USE_CLIENT_DEFAULT else coerce_retry(retry),  # type: ignore[arg-type]
            total=total,
            timeouts=timeouts,
            replayable=replayable or isinstance(content, bytes | str),
            rewind_to=rewind_to,
            has_key=has_key,
            stream=stream,
            progress=progress,
            # A request's own middleware runs inside the client's.
            middleware=settings.middleware + check_middleware(middleware)
            if middleware
            else settings.middleware,
            redactor=redactor,
            now=now,
            cache_mode="use" if cache is USE_CLIENT_DEFAULT else _cache_mode(cache),
        )
