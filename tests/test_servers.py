"""Sanity checks of the test servers themselves, with plain httpx (no restwell)."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
import trustme

from servers import RawServer, RedisServer, Request, TestApp, pattern_bytes, run_uvicorn

# -- the app over plain HTTP ---------------------------------------------------------------


def test_echo_round_trip(server: str) -> None:
    response = httpx.post(
        f"{server}/echo/sub/path?a=1&a=&b=%C3%BC",
        headers={"X-Test": "yes", "X-Multi": "1"},
        content=b"h\xc3\xa9llo \xff",
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/echo/sub/path"
    assert echoed["query"] == [["a", "1"], ["a", ""], ["b", "ü"]]
    names = [name for name, _ in echoed["headers"]]
    assert names.index("x-test") < names.index("x-multi")
    assert ["x-test", "yes"] in echoed["headers"]
    assert echoed["body"] == "héllo \ufffd"
    assert echoed["body_length"] == 8


def test_not_found_method_not_allowed_and_head(server: str) -> None:
    missing = httpx.get(f"{server}/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"error": "not found"})
    wrong = httpx.delete(f"{server}/json")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, HEAD"
    head = httpx.head(f"{server}/json")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(httpx.get(f"{server}/json").content)


def test_users(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        assert client.get("/users/123").json() == {"id": 123, "name": "User 123"}
        assert client.get("/users/999").json() == {"error": "no such user", "status": 404}
        created = client.post("/users", json={"name": "John Doe"})
        assert (created.status_code, created.json()) == (201, {"name": "John Doe", "id": 101})
        assert client.patch("/users/7", json={"name": "N"}).json() == {"name": "N", "id": 7}
        assert client.delete("/users/7").status_code == 204
        assert client.post("/users", content=b"{").status_code == 400


def test_status(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        teapot = client.get(
            "/status/418", params=[("retry_after", "7"), ("header", "X-A: 1"), ("header", "X-B:2")]
        )
        assert teapot.status_code == 418
        assert teapot.json() == {"error": "I'm a Teapot", "status": 418}
        assert teapot.headers["retry-after"] == "7"
        assert (teapot.headers["x-a"], teapot.headers["x-b"]) == ("1", "2")
        text = client.post("/status/500", params={"content_type": "text"})
        assert text.headers["content-type"] == "text/plain; charset=utf-8"
        assert text.text == "status 500"
        empty = client.get("/status/204")
        assert (empty.status_code, empty.content) == (204, b"")
        assert "content-length" not in empty.headers


def test_content_types(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        assert client.get("/json").json()["nested"]["name"] == "Zoë"
        text = client.get("/text")
        assert text.headers["content-type"] == "text/plain; charset=utf-8"
        assert "ü" in text.text
        assert client.get("/html").headers["content-type"].startswith("text/html")
        invalid = client.get("/json-invalid")
        assert invalid.headers["content-type"] == "application/json"
        assert invalid.content == b'{"broken": '
        assert client.get("/json-empty").content == b""
        problem = client.get("/problem+json", params={"status": "403"})
        assert problem.status_code == 403
        assert problem.headers["content-type"] == "application/problem+json"


def test_redirects_and_cookies(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        held = client.get("/redirect/2")
        assert (held.status_code, held.headers["location"]) == (302, "/redirect/1")
        followed = client.get("/redirect/2", follow_redirects=True)
        assert followed.url.path == "/echo"
        assert len(followed.history) == 3
        to = client.get("/redirect-to", params={"url": "https://example.com/x", "status": "307"})
        assert (to.status_code, to.headers["location"]) == (307, "https://example.com/x")
        setter = client.get("/cookies/set", params={"flavour": "oat", "size": "big"})
        assert setter.headers.get_list("set-cookie") == ["flavour=oat; Path=/", "size=big; Path=/"]
        assert client.get("/cookies").json() == {"cookies": {"flavour": "oat", "size": "big"}}


def test_flaky_counts_per_key(server: str, server_app: TestApp) -> None:
    key, other = uuid.uuid4().hex, uuid.uuid4().hex
    with httpx.Client(base_url=server) as client:
        params = {"fail": "2", "status": "429", "retry_after": "0"}
        first = client.post(f"/flaky/{key}", params=params, headers={"Idempotency-Key": "k1"})
        assert (first.status_code, first.headers["retry-after"]) == (429, "0")
        assert client.get(f"/flaky/{other}").json()["attempts"] == 1
        assert client.post(f"/flaky/{key}", params=params).status_code == 429
        third = client.post(
            f"/flaky/{key}", params=params, headers={"Idempotency-Key": "k1"}, content=b"again"
        )
        assert third.json() == {"attempts": 3, "idempotency_key": "k1", "body": "again"}
        assert client.get(f"/attempts/{key}").json() == {
            "attempts": 3,
            "idempotency_keys": ["k1", "k1"],
        }
        assert server_app.attempts_for(other) == (1, [])
        assert client.post(f"/reset/{key}").status_code == 204
        assert client.get(f"/attempts/{key}").json() == {"attempts": 0, "idempotency_keys": []}


def test_flaky_counter_is_thread_safe(server: str) -> None:
    key = uuid.uuid4().hex
    with httpx.Client(base_url=server) as client:

        def hit() -> None:
            for _ in range(10):
                client.get(f"/flaky/{key}")

        threads = [threading.Thread(target=hit) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert client.get(f"/attempts/{key}").json()["attempts"] == 40


def test_bytes_length_and_pattern(server: str) -> None:
    response = httpx.get(f"{server}/bytes/200003")
    assert response.headers["content-length"] == "200003"
    assert response.content == pattern_bytes(0, 200003)
    assert response.content[251:253] == b"\x00\x01"
    with httpx.stream("GET", f"{server}/bytes/10000", params={"chunk": "1000"}) as streamed:
        assert b"".join(streamed.iter_raw()) == pattern_bytes(0, 10000)
    assert httpx.get(f"{server}/bytes/0").content == b""


def test_stream_is_chunked(server: str) -> None:
    response = httpx.get(f"{server}/stream/100000", params={"chunk": "4096"})
    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.content == pattern_bytes(0, 100000)


def test_upload_is_streamed(server: str) -> None:
    def body() -> Iterator[bytes]:
        for index in range(10):
            yield pattern_bytes(index * 65536, 65536)

    response = httpx.put(
        f"{server}/upload", content=body(), headers={"Content-Type": "application/x-test"}
    )
    assert response.json() == {
        "received": 655360,
        "sha256": hashlib.sha256(pattern_bytes(0, 655360)).hexdigest(),
        "content_length": None,
        "transfer_encoding": "chunked",
        "content_type": "application/x-test",
    }
    fixed = httpx.post(f"{server}/upload", content=b"abc").json()
    assert (fixed["received"], fixed["content_length"]) == (3, "3")


def test_delay_trickle_and_stall(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        assert client.get("/delay/0.01").json() == {"delayed": 0.01}
        with pytest.raises(httpx.ReadTimeout):
            client.get("/delay/5", timeout=0.1)
        trickled = client.get("/trickle", params={"bytes": "5", "interval": "0.01"})
        assert (trickled.headers["content-length"], trickled.content) == ("5", pattern_bytes(0, 5))
        with client.stream("GET", "/stall-body", timeout=0.2) as stalled:
            assert stalled.headers["content-length"] == "10"
            with pytest.raises(httpx.ReadTimeout):
                stalled.read()
        assert client.get("/delay/abc").status_code == 400


def test_auth(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        bearer = client.get("/auth/bearer", headers={"Authorization": "Bearer t0k"})
        assert bearer.json() == {"token": "t0k"}
        refused = client.get("/auth/bearer")
        assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
        basic = client.get("/auth/basic", auth=("ann", "s3:cret"))
        assert basic.json() == {"user": "ann", "password": "s3:cret"}
        garbled = base64.b64encode(b"no-colon").decode()
        assert (
            client.get("/auth/basic", headers={"Authorization": f"Basic {garbled}"}).status_code
            == 401
        )
        by_header = client.get("/auth/api-key", headers={"X-API-Key": "k"}).json()
        assert by_header == {"api_key": "k", "source": "header"}
        by_query = client.get("/auth/api-key", params={"api_key": "q"}).json()
        assert by_query == {"api_key": "q", "source": "query"}
        assert client.get("/auth/api-key").status_code == 401


@pytest.mark.anyio
async def test_async_clients_on_both_backends(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        echoed = (await client.put("/echo", json={"a": 1})).json()
        assert (echoed["method"], echoed["body"]) == ("PUT", '{"a":1}')
        async with client.stream("GET", "/stream/70000") as response:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        assert body == pattern_bytes(0, 70000)


# -- extending the app and stopping servers -------------------------------------------------


def test_custom_route_and_shutdown_with_open_connections() -> None:
    app = TestApp()

    @app.route(r"/hello/(?P<name>\w+)")
    async def hello(request: Request) -> None:
        await request.send_text(f"hello {request.params['name']}")

    with httpx.Client(timeout=5) as idle, httpx.Client(timeout=5) as client, ExitStack() as stack:
        with run_uvicorn(app) as url:
            assert idle.get(f"{url}/hello/ann").text == "hello ann"  # stays open, keep-alive
            stalled = stack.enter_context(client.stream("GET", f"{url}/stall-body"))
            assert stalled.headers["content-length"] == "10"
            started = time.monotonic()
        # The server stopped at once, despite a response in flight and an idle connection.
        assert time.monotonic() - started < 2.0
        with pytest.raises(httpx.RemoteProtocolError):
            stalled.read()


# -- the raw peer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "errors"),
    [
        ("/reset", (httpx.ReadError, httpx.RemoteProtocolError)),
        ("/close", (httpx.RemoteProtocolError,)),
        ("/truncated", (httpx.RemoteProtocolError,)),
        ("/garbage", (httpx.RemoteProtocolError,)),
    ],
)
def test_raw_server_misbehaves(
    raw_server: RawServer, path: str, errors: tuple[type[Exception], ...]
) -> None:
    before = raw_server.connections
    with pytest.raises(errors):
        httpx.get(f"{raw_server.url}{path}", timeout=5)
    assert raw_server.connections == before + 1
    assert raw_server.paths[-1] == path


def test_raw_server_stalls_and_trickles(raw_server: RawServer) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{raw_server.url}/stall", timeout=0.2)
    trickled = httpx.get(f"{raw_server.url}/trickle-headers?interval=0.01", timeout=1)
    assert (trickled.status_code, trickled.text) == (200, "ok")
    assert httpx.get(f"{raw_server.url}/ok").text == "ok"


def test_raw_server_stops_with_open_connections() -> None:
    with RawServer() as raw:
        host, port = raw.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET /stall HTTP/1.1\r\nHost: raw\r\n\r\n")
            assert raw.wait_for_requests(1)
            started = time.monotonic()
            raw.stop()
            assert time.monotonic() - started < 1.0
            assert sock.recv(10) == b""  # the server closed its side
    assert raw.connections == 1
    assert raw.paths == ["/stall"]


# -- TLS -----------------------------------------------------------------------------------


def test_tls_server(tls_server: str, tls_context: ssl.SSLContext) -> None:
    assert tls_server.startswith("https://127.0.0.1:")
    with httpx.Client(verify=tls_context) as client:
        assert client.get(f"{tls_server}/json").status_code == 200
        localhost = tls_server.replace("127.0.0.1", "localhost")
        assert client.get(f"{localhost}/users/1").json()["id"] == 1
    with httpx.Client() as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get(f"{tls_server}/json")


def test_mtls_server(mtls_server: str, tls_ca: trustme.CA, tls_context: ssl.SSLContext) -> None:
    with (
        httpx.Client(verify=tls_context) as anonymous,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        anonymous.get(f"{mtls_server}/json")
    tls_ca.issue_cert("client@restwell.test").configure_cert(tls_context)
    with httpx.Client(verify=tls_context) as client:
        assert client.get(f"{mtls_server}/json").status_code == 200


def test_redis_server_answers_and_comes_back_after_a_kill(redis_server: RedisServer) -> None:
    import redis  # noqa: PLC0415 - only when a redis-server runs here

    redis_server.flush()
    with redis.Redis.from_url(redis_server.url, socket_timeout=2) as client:
        client.set("k", "v")
        assert client.get("k") == b"v"
        redis_server.stop()
        with pytest.raises(redis.ConnectionError):
            client.get("k")
        redis_server.start()
        assert client.get("k") is None  # a new, empty server on the same port


def test_quota_is_a_sliding_window_with_headers(server: str, server_app: TestApp) -> None:
    key = uuid.uuid4().hex
    with httpx.Client(base_url=server) as client:
        first = client.get(f"/quota/{key}", params={"limit": 2, "window": 0.5})
        second = client.get(f"/quota/{key}", params={"limit": 2, "window": 0.5})
        third = client.get(f"/quota/{key}", params={"limit": 2, "window": 0.5})
        time.sleep(0.55)
        fourth = client.get(f"/quota/{key}", params={"limit": 2, "window": 0.5})
    assert [r.status_code for r in (first, second, third, fourth)] == [200, 200, 429, 200]
    assert first.headers["ratelimit-limit"] == "2"
    assert first.headers["ratelimit-remaining"] == "1"
    assert second.headers["ratelimit-remaining"] == "0"
    assert third.headers["retry-after"] == third.headers["ratelimit-reset"] == "1"
    assert [accepted for _, accepted in server_app.quota_log(key)] == [True, True, False, True]
