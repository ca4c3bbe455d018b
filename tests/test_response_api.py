"""``restwell.Response`` offers what ``httpx.Response`` offers, under the same names."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import pytest

import restwell

# httpx's names that restwell.Response leaves out on purpose, and why.
EXCLUDED = {
    # The raw byte stream object: restwell reads it for you (iter_bytes, iter_raw...).
    "stream",
    # A constructor argument of httpx.Response, meaningless once the response exists.
    "default_encoding",
}


def httpx_public_names() -> set[str]:
    # Class attributes (methods, properties) and the ones httpx sets per instance.
    instance = httpx.Response(200, request=httpx.Request("GET", "https://h/"))
    names = set(dir(httpx.Response)) | set(vars(instance))
    return {name for name in names if not name.startswith("_")}


def test_response_has_every_public_name_of_httpx_response() -> None:
    ours = {name for name in dir(restwell.Response) if not name.startswith("_")}
    missing = httpx_public_names() - ours - EXCLUDED
    assert not missing, f"restwell.Response lacks {sorted(missing)}"
    # An exclusion that httpx dropped (or that we added after all) must leave the list.
    assert httpx_public_names() - ours >= EXCLUDED


def test_every_new_name_is_documented() -> None:
    reference = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    for name in httpx_public_names() - EXCLUDED:
        member = getattr(restwell.Response, name)
        doc = getattr(member, "__doc__", None) or ""
        assert doc.strip(), f"Response.{name} has no docstring"
    for name in ("links", "cookies", "history", "iter_raw", "is_error", "extensions"):
        assert f"`{name}" in reference, f"Response.{name} is not in docs/api.md"


def wrap(raw: httpx.Response) -> restwell.Response:
    return restwell.Response(raw)


def test_status_predicates() -> None:
    assert wrap(httpx.Response(101)).is_informational
    assert not wrap(httpx.Response(200)).is_informational
    assert wrap(httpx.Response(500)).is_error
    assert wrap(httpx.Response(404)).is_error
    assert not wrap(httpx.Response(302)).is_error
    located = wrap(httpx.Response(307, headers={"Location": "/x"}))
    assert located.has_redirect_location
    assert not wrap(httpx.Response(304)).has_redirect_location


def test_metadata_delegates() -> None:
    raw = httpx.Response(
        200,
        headers={
            "Content-Type": "text/plain; charset=iso-8859-1",
            "Link": '<https://h/p?page=2>; rel="next", <https://h/p?page=9>; rel="last"',
            "Set-Cookie": "sid=1; Path=/",
        },
        extensions={"http_version": b"HTTP/1.1"},
        request=httpx.Request("GET", "https://h/p"),
    )
    response = wrap(raw)
    assert response.charset_encoding == "iso-8859-1"
    assert response.links["next"]["url"] == "https://h/p?page=2"
    assert response.links["last"]["url"] == "https://h/p?page=9"
    assert response.cookies["sid"] == "1"
    assert response.extensions is raw.extensions
    assert response.next_request is None
    assert response.history == []


def gzip_handler(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/old":
        return httpx.Response(302, headers={"Location": "/new", "Set-Cookie": "a=1; Path=/"})
    body = gzip.compress(b"hello " * 100)
    return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(body))


def test_stream_state_raw_bytes_and_history_sync() -> None:
    api = httpx.MockTransport(gzip_handler)
    with restwell.Client("https://h", transport=api, api_key="secret-key") as client:
        with client.stream("GET", "/old") as response:
            assert not response.is_stream_consumed
            assert not response.is_closed
            raw = b"".join(response.iter_raw(chunk_size=10))
            assert response.is_stream_consumed
            assert response.num_bytes_downloaded == len(raw)
            assert gzip.decompress(raw) == b"hello " * 100
            [hop] = response.history
            assert isinstance(hop, restwell.Response)
            assert (hop.status_code, hop.url.path, hop.is_redirect) == (302, "/old", True)
            assert hop.cookies["a"] == "1"
        assert response.is_closed
        unfollowed = client.get("/old", follow_redirects=False)
        assert unfollowed.next_request is not None
        assert unfollowed.next_request.url.path == "/new"


@pytest.mark.anyio
async def test_stream_state_raw_bytes_and_history_async() -> None:
    api = httpx.MockTransport(gzip_handler)
    async with restwell.AsyncClient("https://h", transport=api) as client:
        async with client.stream("GET", "/old") as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            assert gzip.decompress(raw) == b"hello " * 100
            assert response.num_bytes_downloaded == len(raw)
            assert [hop.status_code for hop in response.history] == [302]


def test_iter_raw_maps_a_broken_body_sync(raw_server: Any) -> None:
    with restwell.Client(raw_server.url) as client:
        with client.stream("GET", "/truncated") as response:
            with pytest.raises(restwell.ConnectionError, match="peer closed"):
                list(response.iter_raw())


@pytest.mark.anyio
async def test_iter_raw_maps_a_broken_body_async(raw_server: Any) -> None:
    async with restwell.AsyncClient(raw_server.url) as client:
        async with client.stream("GET", "/truncated") as response:
            with pytest.raises(restwell.ConnectionError, match="peer closed"):
                [chunk async for chunk in response.aiter_raw()]
