"""Checked by mypy --strict (not run): the public API types as users will write it."""

# Every "type: ignore" below marks an error the checkers must report (mypy warns about an
# unused one in strict mode; this makes pyright do the same).
# pyright: reportUnnecessaryTypeIgnoreComment=true

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from typing import Any, Literal

import httpx
from typing_extensions import assert_type

import restwell


def sync_usage() -> None:
    with restwell.Client(base_url="https://api.example.com", api_key="k") as client:
        response = client.get("/users/123", params={"a": 1}, timeout=5, retry=3)
        assert_type(response, restwell.Response)
        assert_type(response.json(), Any)
        assert_type(response.status_code, int)
        assert_type(response.headers, httpx.Headers)
        assert_type(response.attempts, int)
        client.post("/users", json={"name": "John Doe"}, idempotency_key=True)
        client.put("/users/1", content=b"raw", raise_for_status=False)
        client.patch("/users/1", data={"a": "b"}, allow_status={409})
        client.delete("/users/1", auth=("u", "p"))
        client.head("/users/1", follow_redirects=False)
        client.options("/users", headers={"X": "y"})
        with client.stream("GET", "/large-file", progress=lambda done, total: None) as streamed:
            for chunk in streamed.iter_bytes(chunk_size=8192):
                assert_type(chunk, bytes)
        for event in client.events("/feed", idle_timeout=60, last_event_id="7"):
            assert_type(event, restwell.ServerSentEvent)
            assert_type(event.id, str | None)
        # The docs' advice for leaving the loop early: close the generator at once.
        events = client.events("/feed")
        assert_type(events, Generator[restwell.ServerSentEvent, None, None])
        with contextlib.closing(client.events("/feed")) as stream:
            for event in stream:
                assert_type(event, restwell.ServerSentEvent)
                break
        assert_type(client.download("/f", "f.bin", resume=True), Path)
        client.put("/f", content=restwell.Upload(b"x", progress=lambda sent, total: None))
        other = client.with_options(timeout=restwell.Timeout(total=30))
        assert_type(other, restwell.Client)
    # Each client takes only a transport it can drive (MockTransport is both kinds).
    restwell.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))).close()
    restwell.Client(transport=httpx.AsyncHTTPTransport())  # type: ignore[arg-type]
    restwell.AsyncClient(transport=httpx.HTTPTransport())  # type: ignore[arg-type]
    env_client = restwell.Client.from_env("MYAPI")
    assert_type(env_client, restwell.Client)
    env_client.close()


async def async_usage() -> None:
    async with restwell.AsyncClient(base_url="https://api.example.com") as client:
        response = await client.get("/users/123")
        assert_type(response, restwell.Response)
        async with client.stream("GET", "/large-file") as streamed:
            async for chunk in streamed.aiter_bytes(chunk_size=8192):
                assert_type(chunk, bytes)
        assert_type(client.with_options(retry=False), restwell.AsyncClient)
        async for event in client.events("/feed"):
            assert_type(event.data, str)
        assert_type(client.events("/feed"), AsyncGenerator[restwell.ServerSentEvent, None])
        async with contextlib.aclosing(client.events("/feed")) as stream:
            async for event in stream:
                assert_type(event, restwell.ServerSentEvent)
                break
        assert_type(await client.download("/f", "f.bin"), Path)


def errors() -> None:
    try:
        pass
    except restwell.RateLimitError as exc:
        assert_type(exc.retry_after, float | None)
        assert_type(exc.status_code, int)
    except restwell.TimeoutError as exc:
        assert_type(exc.kind, Literal["connect", "read", "write", "pool", "total"])
    except restwell.ClientError as exc:
        assert_type(exc.attempts, int)


def auth_usage() -> None:
    bearer = restwell.BearerAuth(lambda: "t")
    oauth = restwell.OAuth2ClientCredentials(
        "https://idp.example.com/token", "id", "secret", scope=["read"], audience="api"
    )
    saved: list[restwell.OAuth2Token] = []
    refresh = restwell.OAuth2RefreshToken(
        "https://idp.example.com/token", "rt", client_id="id", on_refresh=saved.append
    )
    redactor = restwell.Redactor().with_names(headers=["X-Session"], body_fields=["ssn"])
    with restwell.Client(auth=oauth, redactor=redactor) as client:
        client.get("https://api.example.com/x", auth=refresh)
        client.get("https://api.example.com/x", auth=bearer)
    assert_type(restwell.APIKeyAuth.from_env("KEY", query="k"), restwell.APIKeyAuth)
    assert_type(restwell.OAuth2ClientCredentials.from_env("IDP"), restwell.OAuth2ClientCredentials)
