"""A full scenario at DEBUG with one distinctive secret in every kind of credential.

The secret must appear nowhere the library shows anything: no log record of any logger
(restwell's, httpx's, httpcore's; captured at DEBUG from the root), no ``str()`` or
``repr()`` of a raised error, no ``repr()`` of a client, an auth object or a configuration
value.
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

import pytest

import restwell
from servers import Request, TestApp

SECRET = "Zq7-S3CR3T-x9"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def scenario(server_app: TestApp, server: str) -> dict[str, Any]:
    key = uuid.uuid4().hex
    server_app.oauth.register(
        key,
        "client-app",
        f"client-{SECRET}",
        refresh_token=f"refresh-{SECRET}",
        token_prefix=f"access-{SECRET}",
    )
    path = f"/set-secret-cookie-{key}"

    async def set_cookie(request: Request) -> None:
        await request.send_json({}, headers=[("set-cookie", f"session={SECRET}; Path=/")])

    server_app.add_route(path, set_cookie)
    oauth = f"{server}/oauth/{key}"
    return {
        "cookie_path": path,
        "oauth": oauth,
        "auths": [
            restwell.BearerAuth(f"bearer-{SECRET}"),
            restwell.BearerAuth(lambda: f"provided-{SECRET}"),
            restwell.BasicAuth("user", f"basic-{SECRET}"),
            restwell.APIKeyAuth(f"header-{SECRET}"),
            restwell.APIKeyAuth(f"query-{SECRET}", query="api_key"),
            restwell.APIKeyAuth(f"custom-{SECRET}", query="custom_key"),
            restwell.OAuth2ClientCredentials(f"{oauth}/token", "client-app", f"client-{SECRET}"),
            restwell.OAuth2ClientCredentials(
                f"{oauth}/token", "client-app", f"client-{SECRET}", client_auth="post"
            ),
            restwell.OAuth2RefreshToken(
                f"{oauth}/token",
                f"refresh-{SECRET}",
                client_id="client-app",
                client_secret=f"client-{SECRET}",
                access_token=f"stale-{SECRET}",
            ),
        ],
    }


def check_nothing_leaked(
    caplog: pytest.LogCaptureFixture,
    errors: list[BaseException],
    objects: list[object],
    *,
    httpcore_logs: bool = True,
) -> None:
    shown = [caplog.text]
    shown += [f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records]
    for error in errors:
        shown += [str(error), repr(error), repr(getattr(error, "request", None))]
    shown += [repr(obj) for obj in objects]
    leaks = [text for text in shown if SECRET in text]
    assert not leaks, leaks[0]
    # The scenario really ran at DEBUG, through every logger the test is about.
    names = {record.name for record in caplog.records}
    assert {"restwell", "httpx"} <= names
    # aiohttp (AsyncClient(backend="aiohttp")) logs nothing per request.
    assert any(name.startswith("httpcore") for name in names) or not httpcore_logs
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    assert any(record.levelno == logging.WARNING for record in caplog.records)
    assert any(record.levelno == logging.ERROR for record in caplog.records)


def test_no_secret_anywhere_sync(
    server: str, scenario: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    fast = restwell.Retry(max_retries=1, backoff_factor=0.001, jitter=False)
    host = server.removeprefix("http://")
    objects: list[object] = list(scenario["auths"])
    with restwell.Client(
        f"http://user:url-{SECRET}@{host}",
        cookies={"session": f"cookie-{SECRET}"},
        retry=fast,
        api_key=f"client-key-{SECRET}",
    ) as client:
        objects.append(client)
        client.get(scenario["cookie_path"])  # Set-Cookie with the secret, then sent back
        for auth in scenario["auths"]:
            client.post("/echo", auth=auth, json={"password": SECRET, "token": SECRET})
            objects.append(client.with_options(auth=auth))
        for auth in scenario["auths"][-3:]:  # OAuth: the protected resource checks the token
            client.get(f"{scenario['oauth']}/resource", auth=auth)
        client.get(f"http://user:{SECRET}@{host}/echo", auth=None)
        failing = [
            lambda: client.get("/status/401", params={"token": SECRET}),
            lambda: client.get("/status/503", params={"api_key": SECRET}),
            lambda: client.get(f"http://127.0.0.1:{closed_port()}/x", params={"sig": SECRET}),
            lambda: client.get(
                f"{scenario['oauth']}/resource",
                auth=restwell.OAuth2ClientCredentials(
                    f"{scenario['oauth']}/token", "client-app", f"wrong-{SECRET}"
                ),
            ),
            lambda: client.get("/status/400", auth=restwell.APIKeyAuth(SECRET, query="custom_key")),
            lambda: client.get("/auth/bearer", auth=restwell.BearerAuth(lambda: f"bad\n{SECRET}")),
            lambda: restwell.BearerAuth.from_env(f"UNSET_{uuid.uuid4().hex}"),
        ]
        for call in failing:
            with pytest.raises((restwell.ClientError, ValueError)) as info:
                call()
            errors.append(info.value)
    objects += [
        restwell.Redactor(),
        restwell.Retry(),
        restwell.Timeout(),
        restwell.OAuth2Token(SECRET, refresh_token=SECRET),
    ]
    check_nothing_leaked(caplog, errors, objects)


@pytest.mark.anyio
async def test_no_secret_anywhere_async(
    server: str, scenario: dict[str, Any], caplog: pytest.LogCaptureFixture, on_aiohttp: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    objects: list[object] = list(scenario["auths"])

    async def provider() -> str:
        return f"async-{SECRET}"

    async with restwell.AsyncClient(
        server, retry=restwell.Retry(max_retries=1, backoff_factor=0.001, jitter=False)
    ) as client:
        objects.append(client)
        await client.get(scenario["cookie_path"])
        for auth in [*scenario["auths"], restwell.BearerAuth(provider)]:
            await client.post("/echo", auth=auth, json={"client_secret": SECRET})
        for auth in scenario["auths"][-3:]:
            await client.get(f"{scenario['oauth']}/resource", auth=auth)
        for path in ("/status/503", "/status/401"):
            with pytest.raises(restwell.HTTPError) as info:
                await client.get(path, params={"access_token": SECRET}, auth=scenario["auths"][0])
            errors.append(info.value)
    check_nothing_leaked(caplog, errors, objects, httpcore_logs=not on_aiohttp)
