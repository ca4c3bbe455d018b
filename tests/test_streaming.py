"""Streamed bodies on both clients: errors while reading, downloads, uploads."""

from __future__ import annotations

from typing import Any

import pytest

import restwell

# -- a body that breaks while it streams --------------------------------------------------


@pytest.mark.parametrize("how", ["iter_bytes", "iter_text", "iter_lines", "read", "events"])
def test_broken_body_raises_connection_error_sync(raw_server: Any, how: str) -> None:
    with restwell.Client(raw_server.url, api_key="secret") as client:
        with client.stream("GET", "/truncated", params={"token": "t"}) as response:
            consume = {
                "read": response.read,
                "events": lambda: list(response.iter_events()),
            }.get(how, lambda: list(getattr(response, how)()))
            with pytest.raises(restwell.ConnectionError) as info:
                consume()
    error = info.value
    assert error.request == restwell.RequestInfo(
        "GET", f"{raw_server.url}/truncated?token=%5BREDACTED%5D"
    )
    assert "secret" not in str(error)
    assert "peer closed connection" in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["aiter_bytes", "aiter_text", "aiter_lines", "aread", "events"])
async def test_broken_body_raises_connection_error_async(raw_server: Any, how: str) -> None:
    async with restwell.AsyncClient(raw_server.url) as client:
        async with client.stream("GET", "/truncated", progress=lambda d, t: None) as response:
            iterate = response.aiter_events if how == "events" else getattr(response, how)

            async def consume() -> object:
                if how == "aread":
                    return await response.aread()
                return [item async for item in iterate()]

            with pytest.raises(restwell.ConnectionError) as info:
                await consume()
    assert info.value.request == restwell.RequestInfo("GET", f"{raw_server.url}/truncated")


def test_read_with_progress_maps_errors_too(raw_server: Any) -> None:
    seen: list[tuple[int, int | None]] = []
    with restwell.Client(raw_server.url) as client:
        with client.stream("GET", "/truncated", progress=lambda d, t: seen.append((d, t))) as r:
            with pytest.raises(restwell.ConnectionError):
                r.read()
    assert seen == [(10, 100)]


@pytest.mark.anyio
async def test_aread_without_progress_maps_errors(raw_server: Any) -> None:
    async with restwell.AsyncClient(raw_server.url) as client:
        async with client.stream("GET", "/truncated") as response:
            with pytest.raises(restwell.ConnectionError):
                await response.aread()
