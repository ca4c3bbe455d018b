"""Testing helpers: a mock router, fast retries, record and replay, a pytest plugin.

Everything here sits *below* restwell's pipeline (it is a transport), so retries,
deadlines, the circuit breaker and middleware all run in your tests as in production.
``import restwell`` does not import this package.

Example:
    >>> import restwell
    >>> from restwell.testing import MockRouter, fast_retries, response
    >>> router = MockRouter()
    >>> _ = router.get("/users/1").sequence(response(503), response(200, json={"id": 1}))
    >>> with fast_retries(), restwell.Client("https://api.example.com",
    ...                                      transport=router) as client:
    ...     reply = client.get("/users/1")
    >>> reply.json(), reply.attempts
    ({'id': 1}, 2)
"""

from __future__ import annotations

from ._fast import FastRetries, fast_retries
from ._patch import patch_clients
from ._recorder import CassetteError, CassetteMismatchError, Recorder
from ._router import (
    MockCall,
    MockResponse,
    MockRouter,
    NetworkError,
    Route,
    UnmatchedRequestError,
    network_error,
    response,
    sse,
)

__all__ = [
    "CassetteError",
    "CassetteMismatchError",
    "FastRetries",
    "MockCall",
    "MockResponse",
    "MockRouter",
    "NetworkError",
    "Recorder",
    "Route",
    "UnmatchedRequestError",
    "fast_retries",
    "network_error",
    "patch_clients",
    "response",
    "sse",
]
