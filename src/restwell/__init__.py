"""restwell: a production-grade REST client for Python, built on httpx.

Example:
    >>> import restwell
    >>> restwell.Timeout(10).connect
    10.0
"""

import importlib
import typing

from ._auth import APIKeyAuth, AuthTypes, BasicAuth, BearerAuth, TokenProvider
from ._base import CookieTypes, HeaderTypes, QueryParamTypes, RequestOptions, URLTypes
from ._client import AsyncClient, Client
from ._config import USE_CLIENT_DEFAULT, Limits, Timeout, TimeoutTypes, UseClientDefault
from ._exceptions import (
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ClientError,
    ConflictError,
    ConnectionError,
    HTTPError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RateLimitWaitError,
    RequestInfo,
    ServerError,
    StoreUnavailableError,
    TimeoutError,
    TimeoutKind,
    UnprocessableEntityError,
    ValidationError,
)
from ._middleware import CallContext, Middleware, on_error, on_request, on_response
from ._observer import Observer
from ._redaction import Redactor
from ._response import ProgressCallback, Response
from ._retry import Retry, RetryTypes
from ._tls import InsecureRequestWarning
from ._version import __version__
from ._versioning import VersionHeader, Versioning, VersionPath, VersionQuery

if typing.TYPE_CHECKING:
    from ._breaker import (
        BreakerRecord,
        BreakerStore,
        CircuitBreaker,
        CircuitState,
        MemoryBreakerStore,
    )
    from ._budget import RetryBudget
    from ._cache import Cache
    from ._cache_redis import RedisCacheStorage
    from ._cache_storage import CacheEntry, CacheStorage, MemoryCacheStorage, SQLiteCacheStorage
    from ._oauth2 import OAuth2ClientCredentials, OAuth2RefreshToken, OAuth2Token
    from ._observe import (
        AttemptFinished,
        AttemptStarted,
        CacheResult,
        CallFinished,
        CallStarted,
        CircuitStateChanged,
        Event,
        RateLimitWaited,
        RetryScheduled,
        TokenFetched,
    )
    from ._otel import OpenTelemetry
    from ._ratelimit import MemoryRateLimitStore, RateLimit, RateLimitStore
    from ._sse import ServerSentEvent
    from ._store_redis import RedisStore
    from ._upload import Upload

# Each public name not needed for a first request, and the private module that defines it.
_LAZY_MODULES: typing.Final = {
    "AttemptFinished": "_observe",
    "AttemptStarted": "_observe",
    "BreakerRecord": "_breaker",
    "BreakerStore": "_breaker",
    "Cache": "_cache",
    "CacheEntry": "_cache_storage",
    "CacheResult": "_observe",
    "CacheStorage": "_cache_storage",
    "CallFinished": "_observe",
    "CallStarted": "_observe",
    "CircuitBreaker": "_breaker",
    "CircuitState": "_breaker",
    "CircuitStateChanged": "_observe",
    "Event": "_observe",
    "MemoryBreakerStore": "_breaker",
    "MemoryCacheStorage": "_cache_storage",
    "MemoryRateLimitStore": "_ratelimit",
    "OAuth2ClientCredentials": "_oauth2",
    "OAuth2RefreshToken": "_oauth2",
    "OAuth2Token": "_oauth2",
    "OpenTelemetry": "_otel",
    "RateLimit": "_ratelimit",
    "RateLimitStore": "_ratelimit",
    "RateLimitWaited": "_observe",
    "RedisCacheStorage": "_cache_redis",
    "RedisStore": "_store_redis",
    "RetryBudget": "_budget",
    "RetryScheduled": "_observe",
    "SQLiteCacheStorage": "_cache_storage",
    "ServerSentEvent": "_sse",
    "TokenFetched": "_observe",
    "Upload": "_upload",
}

LAZY: typing.Final = frozenset(_LAZY_MODULES)
"""Public names loaded on first use, so that ``import restwell`` stays light."""


def __getattr__(name: str) -> typing.Any:
    # Loaded on first use (PEP 562): a first GET never pays for OAuth2, breakers, uploads...
    module = _LAZY_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'restwell' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = [
    "USE_CLIENT_DEFAULT",
    "APIKeyAuth",
    "AsyncClient",
    "AttemptFinished",
    "AttemptStarted",
    "AuthTypes",
    "AuthenticationError",
    "BadRequestError",
    "BasicAuth",
    "BearerAuth",
    "BreakerRecord",
    "BreakerStore",
    "Cache",
    "CacheEntry",
    "CacheResult",
    "CacheStorage",
    "CallContext",
    "CallFinished",
    "CallStarted",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStateChanged",
    "Client",
    "ClientError",
    "ConflictError",
    "ConnectionError",
    "CookieTypes",
    "Event",
    "HTTPError",
    "HeaderTypes",
    "InsecureRequestWarning",
    "Limits",
    "MemoryBreakerStore",
    "MemoryCacheStorage",
    "MemoryRateLimitStore",
    "Middleware",
    "NotFoundError",
    "OAuth2ClientCredentials",
    "OAuth2RefreshToken",
    "OAuth2Token",
    "Observer",
    "OpenTelemetry",
    "PermissionDeniedError",
    "ProgressCallback",
    "QueryParamTypes",
    "RateLimit",
    "RateLimitError",
    "RateLimitStore",
    "RateLimitWaitError",
    "RateLimitWaited",
    "Redactor",
    "RedisCacheStorage",
    "RedisStore",
    "RequestInfo",
    "RequestOptions",
    "Response",
    "Retry",
    "RetryBudget",
    "RetryScheduled",
    "RetryTypes",
    "SQLiteCacheStorage",
    "ServerError",
    "ServerSentEvent",
    "StoreUnavailableError",
    "Timeout",
    "TimeoutError",
    "TimeoutKind",
    "TimeoutTypes",
    "TokenFetched",
    "TokenProvider",
    "URLTypes",
    "UnprocessableEntityError",
    "Upload",
    "UseClientDefault",
    "ValidationError",
    "VersionHeader",
    "VersionPath",
    "VersionQuery",
    "Versioning",
    "__version__",
    "on_error",
    "on_request",
    "on_response",
]
