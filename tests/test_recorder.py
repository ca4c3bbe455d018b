"""Record and replay against the real test server: JSON, a 256 KiB download, an SSE stream
with a mid-stream disconnect and a Last-Event-ID reconnect; then the server stops and
everything replays from the cassette. And no secret ever reaches a cassette."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import restwell
from restwell._redaction import DEFAULT_REDACTOR
from restwell.testing import (
    CassetteError,
    CassetteMismatchError,
    MockRouter,
    Recorder,
    fast_retries,
    network_error,
    response,
)
from restwell.testing._recorder import _redact_chunks
from servers import Request, TestApp, run_uvicorn

GAP = 0.08  # seconds between two events of the recorded stream
SIZE = 256 * 1024
SSE_SECRET = "sse-secret-93f1c2"


class Feed:
    """The state of the SSE route: connections seen, by Last-Event-ID."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_ids: list[str | None] = []


async def feed(request: Request, state: Feed) -> None:
    await request.drain_body()
    last_id = request.header("last-event-id")
    with state.lock:
        state.last_ids.append(last_id)
        number = len(state.last_ids)
    if number == 1:
        await request.start(200, content_type="text/event-stream")
        await request.write(b"retry: 50\nid: 1\ndata: one\n\n")
        await anyio.sleep(GAP)
        secret = json.dumps({"n": 2, "token": SSE_SECRET}).encode()
        await request.write(b"id: 2\ndata: " + secret + b"\n\n")
        await anyio.sleep(GAP)
        await request.write(b"id: 3\ndata: thr")  # cut off mid-event ...
        raise RuntimeError("the connection drops")  # ... and uvicorn drops the connection
    if number == 2 and last_id == "2":
        await request.start(200, content_type="text/event-stream")
        await request.write(b"id: 3\ndata: three\n\n")
        await anyio.sleep(GAP)
        await request.write(b"id: 4\ndata: four\n\n", more_body=False)
        return
    await request.respond(204)


@contextlib.contextmanager
def own_server() -> Iterator[tuple[str, Feed]]:
    """A fresh TestApp with the SSE route, served until the block ends (then stopped)."""
    app = TestApp()
    state = Feed()

    async def handler(request: Request) -> None:
        await feed(request, state)

    app.add_route(r"/feed", handler)
    with run_uvicorn(app) as url:
        yield url, state


def session(client: restwell.Client, tmp: Path) -> dict[str, Any]:
    """The calls whose results must be identical when recorded and when replayed."""
    out: dict[str, Any] = {}
    reply = client.get("/json")
    out["json"] = (reply.status_code, reply.headers.multi_items(), reply.content)
    with client.stream("GET", f"/stream/{SIZE}", params={"chunk": 10000}) as streamed:
        out["chunks"] = list(streamed.iter_bytes())
        out["stream_headers"] = streamed.headers.multi_items()
    target = client.download(f"/bytes/{SIZE}", tmp / "download.bin")
    out["download"] = target.read_bytes()
    events, stamps = [], []
    for event in client.events("/feed", reconnect_delay=0.05):
        stamps.append(time.perf_counter())
        events.append((event.id, event.event, event.data, event.retry))
    out["events"] = events
    out["gaps"] = [stamps[1] - stamps[0], stamps[3] - stamps[2]]  # within each connection
    return out


def hide(data: str) -> str:
    return data.replace(SSE_SECRET, "[REDACTED]")


def recorded_gaps(cassette: Path) -> list[float]:
    """The recorded delay before the second event chunk of each SSE connection."""
    document = json.loads(cassette.read_text())
    gaps = []
    for entry in document["interactions"]:
        if entry["request"]["url"].endswith("/feed") and "response" in entry:
            chunks = entry["response"]["chunks"]
            if len(chunks) > 1:
                gaps.append(chunks[1]["delay"])
    return gaps


def test_round_trip_against_the_real_server_then_replay_without_it(tmp_path: Path) -> None:
    cassette = tmp_path / "cassettes" / "round_trip.json"
    with own_server() as (url, state), Recorder(cassette, record_timing=True).patch_clients():
        with restwell.Client(url) as client:
            live = session(client, tmp_path)
    assert state.last_ids == [None, "2", "4"]  # dropped mid-stream, resumed after id 2
    assert live["events"][0] == ("1", "message", "one", 50)
    assert [e[0] for e in live["events"]] == ["1", "2", "3", "4"]
    assert len(live["chunks"]) > 1
    assert b"".join(live["chunks"]) == live["download"]
    assert len(live["download"]) == SIZE

    # The server is gone: "none" replays everything, and never touches the network.
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
    recorded = recorded_gaps(cassette)
    assert len(recorded) == 2
    # Timed replay: each replayed gap within 10 ms of the recorded one. The machine is
    # shared: a sleep may overrun under load, so the best of three replays counts.
    errors: list[float] = []
    for _ in range(3):
        replayer = Recorder(cassette, mode="none", replay_timing=True)
        with replayer.patch_clients(), restwell.Client(url) as client:
            again = session(client, tmp_path)
        assert replayer.recorded == 0
        assert replayer.played == len(replayer.interactions)
        errors = [abs(a - b) for a, b in zip(again["gaps"], recorded, strict=True)]
        if max(errors) < 0.010:
            break
    assert max(errors) < 0.010, (errors, recorded)
    print(f"timed replay: recorded gaps {recorded}, errors {[round(e, 4) for e in errors]}")

    assert again["json"] == live["json"]  # status, headers (all, in order) and bytes
    assert again["stream_headers"] == live["stream_headers"]
    assert again["chunks"] == live["chunks"]  # the same chunk boundaries
    assert again["download"] == live["download"]
    # The events, but for the secret the cassette never held.
    assert again["events"] == [(i, kind, hide(d), retry) for i, kind, d, retry in live["events"]]
    text = cassette.read_text()
    assert SSE_SECRET not in text
    assert '"type": "RemoteProtocolError"' in text  # the mid-stream drop, kept


@pytest.mark.anyio
async def test_a_sync_recording_replays_on_the_async_client(tmp_path: Path) -> None:
    cassette = tmp_path / "c.json"
    with own_server() as (url, _), Recorder(cassette).patch_clients():
        with restwell.Client(url) as client:
            with client.stream("GET", "/stream/50000", params={"chunk": 7000}) as reply:
                chunks = list(reply.iter_bytes())
            events = [hide(e.data) for e in client.events("/feed", reconnect_delay=0.05)]
    with Recorder(cassette, mode="none").patch_clients():
        async with restwell.AsyncClient(url) as client:
            async with client.stream("GET", "/stream/50000", params={"chunk": 7000}) as reply:
                assert [chunk async for chunk in reply.aiter_bytes()] == chunks
            async with contextlib.aclosing(client.events("/feed", reconnect_delay=0.05)) as feed_:
                assert [e.data async for e in feed_] == events


@pytest.mark.anyio
async def test_async_recording_and_unknown_request_in_none_mode(tmp_path: Path) -> None:
    cassette = tmp_path / "c.json"
    with own_server() as (url, _):
        recorder = Recorder(cassette)
        async with restwell.AsyncClient(url, transport=recorder) as client:
            assert (await client.get("/users/7")).json()["id"] == 7
            await client.post("/users", json={"name": "Ada"})
        assert recorder.save() == cassette
    replayer = Recorder(cassette, mode="none")
    async with restwell.AsyncClient(url, transport=replayer) as client:
        assert (await client.get("/users/7")).json()["id"] == 7
        with pytest.raises(CassetteMismatchError) as info:
            await client.post("/users", json={"name": "Bob"})
    message = str(info.value)
    assert f"POST {url}/users is not in the cassette" in message
    assert f"closest recorded one is POST {url}/users" in message
    assert "differs in body" in message
    assert "It was not sent" in message


# -- modes, matching, errors ---------------------------------------------------------------


def api() -> MockRouter:
    router = MockRouter()
    counter = iter(range(1, 1000))
    router.get("/n").mock(lambda request: response(200, json={"n": next(counter)}))
    router.get("/down").mock(network_error("refused"))
    return router


def test_modes(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    router = api()

    def run(mode: Any, *paths: str) -> list[Any]:
        with Recorder(path, mode=mode, transport=router).patch_clients():
            with restwell.Client("https://api.example.com") as client:
                return [client.get(p).json()["n"] for p in paths]

    assert run("once", "/n") == [1]  # recorded
    assert run("once", "/n") == [1]  # replayed
    with pytest.raises(CassetteMismatchError, match="already played"):
        run("once", "/n", "/n")
    assert run("new_episodes", "/n", "/n") == [1, 2]  # one replayed, one recorded
    assert run("none", "/n", "/n") == [1, 2]
    assert run("all", "/n") == [3]  # recorded afresh, replacing the cassette
    assert len(json.loads(path.read_text())["interactions"]) == 1
    with Recorder(path, mode="none", allow_playback_repeats=True).patch_clients():
        with restwell.Client("https://api.example.com") as client:
            assert [client.get("/n").json()["n"] for _ in range(3)] == [3, 3, 3]


def test_errors_before_a_response_are_recorded_and_replayed(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    with Recorder(path, transport=api()).patch_clients():
        with restwell.Client("https://api.example.com", retry=0) as client:
            with pytest.raises(restwell.ConnectionError, match="refused"):
                client.get("/down")
    with Recorder(path, mode="none").patch_clients():
        with restwell.Client("https://api.example.com", retry=0) as client:
            with pytest.raises(restwell.ConnectionError, match="refused"):
                client.get("/down")


def test_match_on_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    with Recorder(path, transport=api()).patch_clients():
        with restwell.Client("https://api.example.com") as client:
            client.get("/n", params={"page": 1, "ts": 111})
    loose = Recorder(path, mode="none", match_on=("method", "path"))
    with restwell.Client("https://api.example.com", transport=loose) as client:
        assert client.get("/n", params={"page": 2}).json() == {"n": 1}

    def same_page(recorded: dict[str, Any], live: dict[str, Any]) -> bool:
        return httpx.URL(recorded["url"]).params["page"] == httpx.URL(live["url"]).params["page"]

    custom = Recorder(path, mode="none", match_on=("method", "host", same_page))
    with restwell.Client("https://api.example.com", transport=custom) as client:
        assert client.get("/n", params={"page": 1, "ts": 999}).json() == {"n": 1}
        with pytest.raises(CassetteMismatchError, match="differs in same_page"):
            client.get("/n", params={"page": 3})


def test_bad_arguments_and_bad_cassettes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        Recorder(tmp_path / "x.json", mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="match_on holds 'colour'"):
        Recorder(tmp_path / "x.json", match_on=("colour",))
    with pytest.raises(TypeError, match="single string"):
        Recorder(tmp_path / "x.json", match_on="method")
    with pytest.raises(TypeError, match="BaseTransport"):
        Recorder(tmp_path / "x.json", transport=object())  # type: ignore[arg-type]
    bad = tmp_path / "bad.json"
    for content, message in [
        ("{not json", "cannot read"),
        ('{"restwell_cassette": 9, "interactions": []}', "format 9"),
        ('{"interactions": 3}', "format None"),
        ("[1, 2]", "not a restwell cassette"),
        ('{"restwell_cassette": 1, "interactions": [1]}', "not a restwell cassette"),
        # A YAML-style object tag is just text to json: nothing is ever constructed.
        ('{"restwell_cassette": 1, "interactions": "!!python/object:os.system"}', "not a"),
    ]:
        bad.write_text(content)
        with pytest.raises(CassetteError, match=message):
            Recorder(bad)
    empty = Recorder(tmp_path / "missing.json", mode="none")
    with restwell.Client("https://h.example", transport=empty) as client:
        with pytest.raises(CassetteMismatchError, match="holds no interaction"):
            client.get("/")
    assert empty.save() is None
    assert "mode='none'" in repr(empty)


def test_binary_and_compressed_bodies(tmp_path: Path) -> None:
    router = MockRouter()
    blob = bytes(range(256)) * 4
    router.get("/bin").respond(content=blob)
    packed = gzip.compress(b'{"access_token": "gz-secret-4411", "ok": true}')
    router.get("/gz").respond(content=packed, headers={"content-encoding": "gzip"})
    path = tmp_path / "b.json"
    with Recorder(path, transport=router).patch_clients():
        with restwell.Client("https://h.example") as client:
            assert client.get("/bin").content == blob
            assert client.get("/gz").json()["access_token"] == "gz-secret-4411"
    text = path.read_text()
    assert "gz-secret-4411" not in text
    assert "base64" in text
    with Recorder(path, mode="none").patch_clients():
        with restwell.Client("https://h.example") as client:
            assert client.get("/bin").content == blob
            assert client.get("/gz").json() == {"access_token": "[REDACTED]", "ok": True}


# -- secrets ------------------------------------------------------------------------------


SECRETS = {
    "api_key": "key-7c1d0e55",
    "bearer": "bearer-2b8e41aa",
    "password": "basic-pw-51ab93",
    "cookie": "cookie-6f0d2c77",
    "client_secret": "client-secret-a81f",
    "refresh": "refresh-tok-0c3e",
    "query_key": "qkey-93be11aa",
}


def test_no_secret_reaches_a_cassette(tmp_path: Path, server: str, server_app: TestApp) -> None:
    path = tmp_path / "secrets.json"
    key = uuid.uuid4().hex
    server_app.oauth.register(
        key, "app-id", SECRETS["client_secret"], refresh_token=SECRETS["refresh"],
        token_prefix="issued-at-5d1e",
    )  # fmt: skip
    token_url = f"{server}/oauth/{key}/token"
    with Recorder(path).patch_clients():
        with restwell.Client(server, api_key=SECRETS["api_key"]) as client:
            client.get("/echo/key")
        with restwell.Client(server, token=SECRETS["bearer"]) as client:
            client.get("/echo/bearer")
        with restwell.Client(server, auth=("ada", SECRETS["password"])) as client:
            client.get("/echo/basic")
            client.get(f"http://ada:{SECRETS['password']}@{server.split('//')[1]}/echo/userinfo")
        with restwell.Client(server) as client:
            client.get("/cookies/set", params={"session": SECRETS["cookie"]})
            client.get("/cookies")
            client.get("/echo/q", params={"api_key": SECRETS["query_key"]})
        credentials = restwell.OAuth2ClientCredentials(
            token_url, "app-id", SECRETS["client_secret"], client_auth="post"
        )
        with restwell.Client(server, auth=credentials) as client:
            client.get(f"/oauth/{key}/resource")
        refresh = restwell.OAuth2RefreshToken(
            token_url, SECRETS["refresh"], client_id="app-id",
            client_secret=SECRETS["client_secret"],
        )  # fmt: skip
        with restwell.Client(server, auth=refresh) as client:
            client.get(f"/oauth/{key}/resource")
            client.post("/echo/form", data={"refresh_token": "x", "password": SECRETS["password"]})
    text = path.read_text()
    for name, secret in SECRETS.items():
        assert secret not in text, name
    basic = base64.b64encode(f"ada:{SECRETS['password']}".encode()).decode()
    assert basic not in text
    assert "issued-at-5d1e" not in text  # the access tokens the server issued
    assert "session=[REDACTED]; Path=/" in text  # the cookie's name is kept
    # Replay still matches the redacted requests, and sends nothing.
    with Recorder(path, mode="none").patch_clients():
        with restwell.Client(server, api_key=SECRETS["api_key"]) as client:
            assert client.get("/echo/key").status_code == 200
        with restwell.Client(server) as client:
            client.get("/cookies/set", params={"session": SECRETS["cookie"]})
            client.get("/echo/q", params={"api_key": SECRETS["query_key"]})
        with restwell.Client(server, auth=credentials) as client:
            client.get(f"/oauth/{key}/resource")


def test_the_clients_own_redactor_names_are_hidden(tmp_path: Path) -> None:
    router = MockRouter()
    router.get("/me").respond(json={"ssn": "078-05-1120", "name": "Ada"})
    path = tmp_path / "r.json"
    redactor = restwell.Redactor().with_names(headers=["X-Session"], body_fields=["ssn"])
    with Recorder(path, transport=router).patch_clients():
        with restwell.Client("https://h.example", redactor=redactor) as client:
            client.get("/me", headers={"X-Session": "sess-83a1c0"})
    text = path.read_text()
    assert "078-05-1120" not in text
    assert "sess-83a1c0" not in text
    assert "Ada" in text


def test_redaction_keeps_chunk_boundaries_of_sse_lines(tmp_path: Path) -> None:
    chunks = [b'data: {"token": "ab', b'cd"}\n\nda', b"ta: plain\n\n"]
    assert _redact_chunks(chunks, DEFAULT_REDACTOR) == [
        b'data: {"token": "[REDACTED]"}\n',
        b"\nda",
        b"ta: plain\n\n",
    ]
    pretty = [b'{"token":\n "abc"}']
    assert _redact_chunks(pretty, DEFAULT_REDACTOR) == [b'{"token":\n "[REDACTED]"}']
    assert _redact_chunks([b"\xff\xfe"], DEFAULT_REDACTOR) == [b"\xff\xfe"]


def test_fast_retries_with_a_recorder(tmp_path: Path) -> None:
    router = MockRouter()
    router.get("/flaky").sequence(response(503), response(200, text="ok"))
    path = tmp_path / "f.json"
    with (
        Recorder(path, transport=router).patch_clients(),
        restwell.Client("https://h.example") as client,
    ):
        with fast_retries():
            assert client.get("/flaky").text == "ok"
    with (
        Recorder(path, mode="none").patch_clients(),
        restwell.Client("https://h.example") as client,
    ):
        with fast_retries() as waits:
            reply = client.get("/flaky")
    assert (reply.text, reply.attempts, waits.count) == ("ok", 2, 1)
