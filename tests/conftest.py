"""Session-wide fixtures: the real test servers (plain HTTP, TLS, mutual TLS, a raw peer, Redis).

Every server binds 127.0.0.1 on a port the OS chooses, starts once per session and is shut
down (threads joined, sockets closed) when the session ends. One `TestApp` instance serves the
plain, TLS and mTLS servers; its state is keyed (tests use uuid keys), so tests never share it.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import restwell._base
from servers import RawServer, RedisServer, TestApp, redis_unavailable, run_uvicorn

pytest_plugins = ["pytester"]  # tests/test_plugin.py runs pytest inside pytest


@pytest.fixture(params=["asyncio", "trio", "aiohttp"])
def anyio_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio, on trio, and on the aiohttp backend.

    "aiohttp" runs on asyncio with every ``AsyncClient`` built without ``backend=`` or
    ``transport=`` on ``backend="aiohttp"``. A test that cannot run there asks for
    ``on_aiohttp`` and skips itself.
    """
    backend: str = request.param
    if backend == "aiohttp":
        monkeypatch.setattr(restwell._base, "_DEFAULT_ASYNC_BACKEND", "aiohttp")
        return "asyncio"
    return backend


@pytest.fixture
def on_aiohttp(request: pytest.FixtureRequest) -> bool:
    """Whether this async test runs on the aiohttp backend."""
    return "[aiohttp]" in request.node.name


@pytest.fixture(scope="session")
def server_app() -> TestApp:
    """The app behind `server`, `tls_server` and `mtls_server` (to inspect or extend)."""
    return TestApp()


@pytest.fixture(scope="session")
def server(server_app: TestApp) -> Iterator[str]:
    """Base URL of the test app over plain HTTP, e.g. ``"http://127.0.0.1:54321"``."""
    with run_uvicorn(server_app) as url:
        yield url


@pytest.fixture(scope="session")
def raw_server() -> Iterator[RawServer]:
    """The misbehaving raw-socket peer; ``raw_server.url``, ``raw_server.connections``."""
    with RawServer() as raw:
        yield raw


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """The certificate authority that signs the TLS servers' and clients' certificates."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session directory holding the certificate and key files."""
    return tmp_path_factory.mktemp("tls")


@pytest.fixture(scope="session")
def tls_ca_file(tls_ca: trustme.CA, tls_dir: Path) -> Path:
    """The CA certificate as a PEM file (for ``verify="path"`` or a CA bundle variable)."""
    path = tls_dir / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def tls_server_cert_files(tls_ca: trustme.CA, tls_dir: Path) -> tuple[str, str]:
    """``(certfile, keyfile)`` of the servers' certificate, valid for 127.0.0.1 and localhost."""
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tls_dir / "server.pem", tls_dir / "server.key"
    for index, blob in enumerate(cert.cert_chain_pems):
        blob.write_to_path(str(certfile), append=index > 0)
    cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


@pytest.fixture(scope="session")
def tls_client_cert_files(tls_ca: trustme.CA, tls_dir: Path) -> tuple[str, str]:
    """``(certfile, keyfile)`` of a client certificate the mTLS server accepts."""
    cert = tls_ca.issue_cert("client@restwell.test")
    certfile, keyfile = tls_dir / "client.pem", tls_dir / "client.key"
    for index, blob in enumerate(cert.cert_chain_pems):
        blob.write_to_path(str(certfile), append=index > 0)
    cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


@pytest.fixture
def tls_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A fresh client ``SSLContext`` that trusts `tls_ca` (for ``verify=``)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    tls_ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def tls_server(server_app: TestApp, tls_server_cert_files: tuple[str, str]) -> Iterator[str]:
    """Base URL of the test app over HTTPS, e.g. ``"https://127.0.0.1:54322"``."""
    certfile, keyfile = tls_server_cert_files
    with run_uvicorn(server_app, ssl_certfile=certfile, ssl_keyfile=keyfile) as url:
        yield url


@pytest.fixture(scope="session")
def mtls_server(
    server_app: TestApp, tls_server_cert_files: tuple[str, str], tls_ca_file: Path
) -> Iterator[str]:
    """Base URL of the test app over HTTPS that requires a client certificate from `tls_ca`."""
    certfile, keyfile = tls_server_cert_files
    with run_uvicorn(
        server_app,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        ssl_ca_certs=str(tls_ca_file),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    ) as url:
        yield url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the session (skipped, saying why, when it cannot run here).

    CI sets ``RESTWELL_REQUIRE_REDIS=1``: there a missing redis-server fails the tests
    instead of skipping them.
    """
    _need_redis()
    with RedisServer() as server:
        yield server


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, to stop and start again (as `redis_server`)."""
    _need_redis()
    with RedisServer() as server:
        yield server


def _need_redis() -> None:
    reason = redis_unavailable()
    if reason is not None:
        if os.environ.get("RESTWELL_REQUIRE_REDIS") == "1":
            pytest.fail(f"RESTWELL_REQUIRE_REDIS=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session redis-server's URL, emptied before the test."""
    redis_server.flush()
    return redis_server.url
