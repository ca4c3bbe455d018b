"""Real servers for the restwell test suite: the ASGI app, uvicorn in a thread, a raw peer."""

from .app import HTTPException, Request, Route, TestApp, pattern_bytes
from .raw import RawServer
from .threaded import run_uvicorn

__all__ = [
    "HTTPException",
    "RawServer",
    "Request",
    "Route",
    "TestApp",
    "pattern_bytes",
    "run_uvicorn",
]
