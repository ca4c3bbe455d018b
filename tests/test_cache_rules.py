"""The cache's pure rules (RFC 9111 freshness, keys, invalidation) and its edge cases.

Pure functions take ``now`` as an argument; client-level edge cases use
``httpx.MockTransport`` (the behaviour against the real server is in test_cache.py).
"""

from __future__ import annotations

import gzip
import logging
from typing import Any

import httpx
import pytest

import restwell
from restwell._cache import (
    Fresh,
    Miss,
    Revalidate,
    cache_key,
    invalidations,
    lookup,
    make_entry,
    parse_cache_control,
    storable,
)
from restwell._redaction import DEFAULT_REDACTOR

DATE = "Mon, 01 Jan 2024 00:00:00 GMT"
T0 = 1704067200.0  # DATE as a timestamp


def entry_for(headers: dict[str, str], *, status: int = 200, at: float = T0) -> Any:
    request = httpx.Request("GET", "https://h/x")
    return make_entry(
        request, httpx.Response(status, headers=headers), b"body", scope="", shared=False,
        secret=b"k", request_time=at, response_time=at, decoded=False,
    )  # fmt: skip


def decide(stored: Any, now: float, **headers: str) -> Any:
    return lookup((stored,), httpx.Request("GET", "https://h/x", headers=headers), "", now, b"k")


def test_expires_minus_date_is_the_lifetime() -> None:
    stored = entry_for({"Date": DATE, "Expires": "Mon, 01 Jan 2024 00:01:40 GMT"})
    assert stored.lifetime == 100
    assert isinstance(decide(stored, T0 + 99), Fresh)
    assert isinstance(decide(stored, T0 + 101), Revalidate)


def test_invalid_expires_and_max_age_are_stale() -> None:
    assert entry_for({"Expires": "0"}).lifetime == 0
    assert entry_for({"Cache-Control": "max-age=soon"}).lifetime == 0


def test_age_counts_against_freshness() -> None:
    stored = entry_for({"Cache-Control": "max-age=60", "Age": "50"})
    assert isinstance(decide(stored, T0 + 5), Fresh)
    assert isinstance(decide(stored, T0 + 11), Revalidate)
    assert decide(stored, T0 + 5).age == pytest.approx(55)


def test_heuristic_freshness_only_with_last_modified_and_capped() -> None:
    five_days = entry_for({"Date": DATE, "Last-Modified": "Wed, 27 Dec 2023 00:00:00 GMT"})
    assert five_days.lifetime == pytest.approx(43200)  # 10 % of 5 days
    old = entry_for({"Date": DATE, "Last-Modified": "Sat, 01 Jan 2000 00:00:00 GMT"})
    assert old.lifetime == 86400  # capped at a day
    assert entry_for({"Date": DATE}).lifetime == 0
    # A status that is not heuristically cacheable gets no heuristic lifetime.
    assert entry_for({"Last-Modified": DATE}, status=302).lifetime == 0


def test_request_directives() -> None:
    stored = entry_for({"Cache-Control": "max-age=60", "ETag": '"1"'})
    assert isinstance(decide(stored, T0 + 10), Fresh)
    forced = decide(stored, T0 + 10, **{"Cache-Control": "no-cache"})
    assert isinstance(forced, Revalidate)
    assert forced.headers == (("If-None-Match", '"1"'),)
    assert isinstance(decide(stored, T0 + 10, Pragma="no-cache"), Revalidate)
    assert isinstance(decide(stored, T0 + 10, **{"Cache-Control": "max-age=5"}), Revalidate)
    assert isinstance(decide(stored, T0 + 10, **{"Cache-Control": "min-fresh=55"}), Revalidate)


def test_vary_and_scope_pick_the_entry() -> None:
    request = httpx.Request("GET", "https://h/x", headers={"Accept": "a/b"})
    response = httpx.Response(200, headers={"Cache-Control": "max-age=60", "Vary": "Accept"})
    stored = make_entry(request, response, b"", scope="alice", shared=False, secret=b"k",
                        request_time=T0, response_time=T0, decoded=False)  # fmt: skip
    assert isinstance(lookup((stored,), request, "alice", T0, b"k"), Fresh)
    assert isinstance(lookup((stored,), request, "bob", T0, b"k"), Miss)
    other = httpx.Request("GET", "https://h/x", headers={"Accept": "c/d"})
    assert isinstance(lookup((stored,), other, "alice", T0, b"k"), Miss)
    # Vary: * can never match: not stored.
    star = httpx.Response(200, headers={"Cache-Control": "max-age=60", "Vary": "*"})
    assert not storable(request, star, shared=False, scoped=False)


def test_what_is_not_storable() -> None:
    get = httpx.Request("GET", "https://h/x")
    fresh = {"Cache-Control": "max-age=60"}
    assert not storable(httpx.Request("POST", "https://h/x"), httpx.Response(200, headers=fresh),
                        shared=False, scoped=False)  # fmt: skip
    ranged = httpx.Request("GET", "https://h/x", headers={"Range": "bytes=0-1"})
    assert not storable(ranged, httpx.Response(200, headers=fresh), shared=False, scoped=False)
    no_store = httpx.Request("GET", "https://h/x", headers={"Cache-Control": "no-store"})
    assert not storable(no_store, httpx.Response(200, headers=fresh), shared=False, scoped=False)
    assert not storable(get, httpx.Response(500, headers=fresh), shared=False, scoped=False)
    sse = httpx.Response(200, headers={**fresh, "Content-Type": "text/event-stream"})
    assert not storable(get, sse, shared=False, scoped=False)
    # Without explicit freshness: a heuristically cacheable status only.
    assert storable(get, httpx.Response(200), shared=False, scoped=False)
    assert not storable(get, httpx.Response(302), shared=False, scoped=False)


def test_parse_cache_control_quotes_and_case() -> None:
    parsed = parse_cache_control(['No-Cache="a, b", max-age=5', "max-age=9, , public"])
    assert parsed == {"no-cache": "a, b", "max-age": "5", "public": None}


def test_keys_hold_no_secret() -> None:
    secret = b"k" * 16
    plain = httpx.Request("GET", "https://h/x?page=1")
    assert cache_key(plain, None, DEFAULT_REDACTOR, secret) == ("https://h/x?page=1", "")
    userinfo = httpx.Request("GET", "https://user:pw@h/x")
    key, scope = cache_key(userinfo, None, DEFAULT_REDACTOR, secret) or ("", "")
    assert (key, len(scope)) == ("https://h/x", 64)
    basic = cache_key(plain, restwell.BasicAuth("u", "p"), DEFAULT_REDACTOR, secret)
    api_key = cache_key(plain, restwell.APIKeyAuth("k1"), DEFAULT_REDACTOR, secret)
    other_key = cache_key(plain, restwell.APIKeyAuth("k2"), DEFAULT_REDACTOR, secret)
    assert basic is not None
    assert api_key is not None
    assert other_key is not None
    assert len({basic[1], api_key[1], other_key[1]}) == 3
    # A function auth is told apart by the object; one that cannot be is not cached.
    function = restwell._auth.coerce_auth(lambda request: request)
    assert cache_key(plain, function, DEFAULT_REDACTOR, secret) is not None

    class Unhashable(httpx.Auth):
        __hash__ = None  # type: ignore[assignment]

    assert cache_key(plain, Unhashable(), DEFAULT_REDACTOR, secret) is None


def test_invalidations_keep_to_the_origin() -> None:
    post = httpx.Request("POST", "https://h/users")
    response = httpx.Response(201, headers={"Location": "https://evil/x", "Content-Location": "/u"})
    assert [str(u) for u in invalidations(post, response)] == ["https://h/users", "https://h/u"]
    assert invalidations(post, httpx.Response(500)) == []
    assert invalidations(httpx.Request("GET", "https://h/"), httpx.Response(200)) == []


# -- client-level edge cases ----------------------------------------------------------------


def test_a_gzip_stream_is_stored_decoded() -> None:
    body = b'{"a": 1}' * 100

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=gzip.compress(body),
            headers={"Content-Encoding": "gzip", "Cache-Control": "max-age=60"},
        )  # fmt: skip

    with restwell.Client("https://h", transport=httpx.MockTransport(api),
                         cache=restwell.Cache()) as client:  # fmt: skip
        with client.stream("GET", "/x") as response:
            assert response.read() == body
        hit = client.get("/x")
    assert (hit.cache_status, hit.content) == ("hit", body)
    assert "content-encoding" not in hit.headers
    assert hit.headers["content-length"] == str(len(body))


def test_a_body_over_the_entry_limit_is_not_stored(tmp_path: Any) -> None:
    storage = restwell.SQLiteCacheStorage(tmp_path / "c.sqlite", max_entry_bytes=1000)
    api = httpx.MockTransport(
        lambda r: httpx.Response(200, content=b"x" * 5000, headers={"Cache-Control": "max-age=60"})
    )
    with restwell.Client("https://h", transport=api, cache=restwell.Cache(storage)) as client:
        with client.stream("GET", "/x") as response:
            response.read()
        client.get("/y")
        assert client.get("/x").cache_status == "miss"
        assert client.get("/y").cache_status == "miss"
    storage.close()


class BrokenStorage(restwell.MemoryCacheStorage):
    def put(self, key: str, entry: restwell.CacheEntry) -> None:
        raise OSError("disk full")

    def delete(self, key: str) -> None:
        raise OSError("disk full")


def test_a_failing_storage_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    api = httpx.MockTransport(
        lambda r: httpx.Response(200, text="ok", headers={"Cache-Control": "max-age=60"})
    )
    with restwell.Client("https://h", transport=api,
                         cache=restwell.Cache(BrokenStorage())) as client:  # fmt: skip
        assert client.get("/x").text == "ok"
        with client.stream("GET", "/x") as response:
            assert response.read() == b"ok"
        assert client.post("/x").status_code == 200
    assert caplog.text.count("the HTTP cache could not") == 3


def test_reprs_and_views() -> None:
    cache = restwell.Cache(restwell.MemoryCacheStorage(max_bytes=1000))
    assert "MemoryCacheStorage 0/1000" in repr(cache)
    with restwell.Client("https://h", cache=cache) as client:
        view = client.cache
        assert view is not None
        assert view.storage is cache.storage
        assert repr(view) == repr(cache)
    sqlite = restwell.SQLiteCacheStorage(":memory:")
    assert repr(sqlite) == "<SQLiteCacheStorage ':memory:'>"
    sqlite.close()


@pytest.mark.anyio
async def test_async_sqlite_face(tmp_path: Any) -> None:
    storage = restwell.SQLiteCacheStorage(tmp_path / "c.sqlite")
    stored = entry_for({"Cache-Control": "max-age=60"})
    await storage.aput("k", stored)
    assert await storage.aget("k") == (stored,)
    await storage.adelete("k")
    assert await storage.aget("k") == ()
    await storage.aput("k", stored)
    await storage.aclear()
    assert await storage.aget("k") == ()
    await storage.aclose()


def test_logging_names_the_cache_result(caplog: pytest.LogCaptureFixture) -> None:
    api = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"Cache-Control": "max-age=60"})
    )
    with restwell.Client("https://h", transport=api, cache=restwell.Cache()) as client:
        with caplog.at_level(logging.DEBUG, logger="restwell"):
            client.get("/x")
            client.get("/x")
    results = [r.cache for r in caplog.records if hasattr(r, "cache")]  # type: ignore[attr-defined]
    assert results == ["miss", "hit"]


def test_shared_cache_prefers_s_maxage() -> None:
    request = httpx.Request("GET", "https://h/x")
    response = httpx.Response(200, headers={"Cache-Control": "max-age=10, s-maxage=99"})
    shared = make_entry(request, response, b"", scope="", shared=True, secret=b"k",
                        request_time=T0, response_time=T0, decoded=False)  # fmt: skip
    private = make_entry(request, response, b"", scope="", shared=False, secret=b"k",
                         request_time=T0, response_time=T0, decoded=False)  # fmt: skip
    assert (shared.lifetime, private.lifetime) == (99, 10)


def test_stale_if_error_needs_the_response_or_a_window() -> None:
    from restwell._cache import usable_stale  # noqa: PLC0415

    silent = entry_for({"Cache-Control": "max-age=10"})
    assert not usable_stale(silent, T0 + 20, True)  # the response did not allow it
    assert usable_stale(silent, T0 + 20, 60)  # the user's own window
    assert not usable_stale(silent, T0 + 100, 60)
    assert not usable_stale(silent, T0 + 20, False)


def test_a_revalidation_answered_with_no_store_forgets_the_entry() -> None:
    answers = iter([
        httpx.Response(200, text="v1", headers={"Cache-Control": "no-cache", "ETag": '"1"'}),
        httpx.Response(200, text="v2", headers={"Cache-Control": "no-store"}),
    ])  # fmt: skip
    storage = restwell.MemoryCacheStorage()
    transport = httpx.MockTransport(lambda request: next(answers))
    with restwell.Client("https://h", transport=transport,
                         cache=restwell.Cache(storage)) as client:  # fmt: skip
        client.get("/x")
        assert storage.get("https://h/x")
        assert client.get("/x").text == "v2"
    assert storage.get("https://h/x") == ()


def test_an_unparseable_location_is_skipped() -> None:
    post = httpx.Request("POST", "https://h/users")
    response = httpx.Response(201, headers={"Location": "http://[::1"})
    assert [str(u) for u in invalidations(post, response)] == ["https://h/users"]


def test_a_storage_that_cannot_forget_never_fails_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = iter([
        httpx.Response(200, text="v1", headers={"Cache-Control": "no-cache", "ETag": '"1"'}),
        httpx.Response(200, text="v2", headers={"Cache-Control": "no-store"}),
    ])  # fmt: skip

    class CannotForget(restwell.MemoryCacheStorage):
        def delete(self, key: str) -> None:
            raise OSError("read-only")

    transport = httpx.MockTransport(lambda request: next(answers))
    with restwell.Client("https://h", transport=transport,
                         cache=restwell.Cache(CannotForget())) as client:  # fmt: skip
        client.get("/x")
        assert client.get("/x").text == "v2"
    assert "the HTTP cache could not forget a response" in caplog.text
