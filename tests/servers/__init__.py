"""Real servers for the restwell test suite: the ASGI app, uvicorn in a thread, a raw peer,
redis-server."""

from .app import HTTPException, Request, Route, TestApp, pattern_bytes
from .raw import RawServer
from .redis_server import RedisServer, redis_unavailable
from .threaded import run_uvicorn

__all__ = [
    "HTTPException",
    "RawServer",
    "RedisServer",
    "Request",
    "Route",
    "TestApp",
    "pattern_bytes",
    "redis_unavailable",
    "run_uvicorn",
]
