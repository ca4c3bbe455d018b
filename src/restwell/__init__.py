"""restwell: a production-grade REST client for Python, built on httpx.

Example:
    >>> import restwell
    >>> restwell.Timeout(10).connect
    10.0
"""

import typing

from ._auth import APIKeyAuth, AuthTypes, BasicAuth, BearerAuth, TokenProvider
from ._base import CookieTypes, HeaderTypes, QueryParamTypes, RequestOptions, URLTypes
from ._breaker import BreakerRecord, BreakerStore, CircuitBreaker, CircuitState, MemoryBreakerStore
from ._budget import RetryBudget
from ._cache import Cache
from ._cache_storage import CacheEntry, CacheStorage, MemoryCacheStorage, SQLiteCacheStorage
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
    TimeoutError,
    TimeoutKind,
    UnprocessableEntityError,
    ValidationError,
)
from ._middleware import CallContext, Middleware, on_error, on_request, on_response
from ._oauth2 import OAuth2ClientCredentials, OAuth2RefreshToken, OAuth2Token
from ._observe import (
    AttemptFinished,
    AttemptStarted,
    CacheResult,
    CallFinished,
    CallStarted,
    CircuitStateChanged,
    Event,
    Observer,
    RateLimitWaited,
    RetryScheduled,
    TokenFetched,
)
from ._ratelimit import MemoryRateLimitStore, RateLimit, RateLimitStore
from ._redaction import Redactor
from ._response import ProgressCallback, Response
from ._retry import Retry, RetryTypes
from ._sse import ServerSentEvent
from ._tls import InsecureRequestWarning
from ._upload import Upload
from ._version import __version__
from ._versioning import VersionHeader, Versioning, VersionPath, VersionQuery

if typing.TYPE_CHECKING:
    from ._otel import OpenTelemetry

LAZY: typing.Final = frozenset({"OpenTelemetry"})
"""Public names loaded on first use, so that ``import restwell`` stays light."""


def __getattr__(name: str) -> typing.Any:
    # OpenTelemetry support loads only when asked for: import restwell stays light.
    if name == "OpenTelemetry":
        from ._otel import OpenTelemetry  # noqa: PLC0415

        return OpenTelemetry
    raise AttributeError(f"module 'restwell' has no attribute {name!r}")


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
