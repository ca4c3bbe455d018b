"""The client-side rate limit: the pure limiter (injected clock), the server's headers
(a parser table, fuzzed), and both clients against the real test server."""

from __future__ import annotations

import logging
import pickle
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import restwell
from restwell._config import MAX_SECONDS
from restwell._ratelimit import (
    LimitRecord,
    MemoryRateLimitStore,
    Quota,
    RateLimit,
    apply_quota,
    parse_quota,
    pause,
    reserve,
    reset_seconds,
    server_pause,
    wait_left,
)

HOST = "api.example.com"
WALL = 1_700_000_000.0  # a wall-clock "now" for epoch resets


class Waits(restwell.Observer):
    """Collects RateLimitWaited events (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[restwell.RateLimitWaited] = []
        self.lock = threading.Lock()

    def on_event(self, event: restwell.Event) -> None:
        if isinstance(event, restwell.RateLimitWaited):
            with self.lock:
                self.events.append(event)

    def count(self) -> int:
        with self.lock:
            return len(self.events)


# -- the pure limiter ------------------------------------------------------------------------


def test_burst_then_one_slot_per_interval_in_arrival_order() -> None:
    limit = RateLimit(10, per=1.0, burst=3)
    record = LimitRecord()
    waits = []
    for _ in range(6):
        ticket, record = reserve(record, 100.0, limit)
        waits.append(round(ticket.wait, 9))
    # Three at once, then one per 0.1 s: slots are handed out in arrival order (FIFO).
    assert waits == [0.0, 0.0, 0.0, 0.1, 0.2, 0.3]


def test_an_idle_key_refills_to_a_full_burst() -> None:
    limit = RateLimit(10, burst=2)
    record = LimitRecord()
    for _ in range(4):
        _, record = reserve(record, 0.0, limit)
    ticket, _ = reserve(record, 10.0, limit)
    assert ticket.wait == 0.0
    assert LimitRecord(tat=10.0).idle(10.0)


def test_a_slot_beyond_the_limit_is_not_taken() -> None:
    limit = RateLimit(1, burst=1)
    _, record = reserve(LimitRecord(), 0.0, limit)
    refused, after = reserve(record, 0.0, limit, limit=0.5)
    assert not refused.granted
    assert refused.wait == 1.0
    assert after is record  # nothing reserved: the next caller gets the same slot
    assert reserve(after, 0.0, limit)[0].wait == 1.0


def test_a_pause_moves_the_whole_queue_back_and_restarts_without_a_burst() -> None:
    limit = RateLimit(10, burst=5)
    record = LimitRecord()
    tickets = []
    for _ in range(7):
        ticket, record = reserve(record, 0.0, limit)
        tickets.append(ticket)
    record = pause(record, 0.05, 2.05, limit)  # a 429 with Retry-After: 2, at t=0.05
    # Waiters holding slots (at 0.1 and 0.2) keep their order and spacing, 2 s later.
    lefts = [round(wait_left(record, t, 0.05), 9) for t in tickets[5:]]
    assert lefts == [2.05, 2.15]
    # A newcomer queues behind them.
    ticket, record = reserve(record, 0.05, limit)
    assert round(ticket.wait, 9) == 2.25
    # On an idle key the pause ends with an empty bucket: paced, not a burst.
    record = pause(LimitRecord(), 0.0, 1.0, limit)
    waits = []
    for _ in range(3):
        ticket, record = reserve(record, 0.0, limit)
        waits.append(round(ticket.wait, 9))
    assert waits == [1.0, 1.1, 1.2]


def test_a_shorter_pause_changes_nothing_and_a_longer_one_adds_only_the_difference() -> None:
    limit = RateLimit(10)
    record = pause(LimitRecord(), 0.0, 2.0, limit)
    assert pause(record, 1.0, 1.5, limit) is record
    longer = pause(record, 1.0, 3.0, limit)
    assert (longer.paused_until, longer.shift) == (3.0, 3.0)


def test_a_quota_slows_the_key_until_its_reset() -> None:
    limit = RateLimit(100, burst=10)  # 10 ms apart on its own
    record = apply_quota(LimitRecord(), 0.0, Quota(remaining=4, reset=2.0), limit)
    waits = []
    for _ in range(6):
        ticket, record = reserve(record, 0.0, limit)
        waits.append(round(ticket.wait, 9))
    # Bursts of at most the 4 left, then one per 2 s / 4 = 0.5 s.
    assert waits == [0.0, 0.0, 0.0, 0.0, 0.5, 1.0]
    # After the reset the configured pace is back.
    assert round(reserve(LimitRecord(tat=2.0), 2.0, limit)[0].wait, 9) == 0.0


def test_a_quota_with_nothing_left_pauses_until_the_reset() -> None:
    limit = RateLimit(100)
    record = apply_quota(LimitRecord(), 5.0, Quota(remaining=0, reset=3.0), limit)
    assert reserve(record, 5.0, limit)[0].wait == 3.0
    assert apply_quota(record, 5.0, Quota(remaining=0, reset=0.0), limit) is record


def test_observe_pauses_on_429_and_503_only() -> None:
    limit = RateLimit(100)
    limit.observe("a", 200, {"retry-after": "5"}, 0.0, WALL)
    limit.observe("b", 503, {"retry-after": "5"}, 0.0, WALL)
    limit.observe("c", 429, {"retry-after-ms": "1500"}, 0.0, WALL)
    limit.observe("d", 429, {}, 0.0, WALL)
    assert [limit.reserve(k, 0.0).wait for k in "abcd"] == pytest.approx([0.0, 5.0, 1.5, 0.0])


def test_wait_after_sleeping_to_the_slot_is_zero_and_a_pause_pushes_it() -> None:
    limit = RateLimit(1, burst=1)
    limit.reserve(HOST, 0.0)
    ticket = limit.reserve(HOST, 0.0)
    assert ticket.wait == 1.0
    assert limit.wait(ticket, 0.99995) == 0.0  # woken a hair early: on time
    limit.pause(HOST, 2.0, 0.5)  # arrives while the ticket's holder sleeps
    assert limit.wait(ticket, 1.0) == pytest.approx(2.0)


def test_threads_share_one_schedule_without_duplicates() -> None:
    limit = RateLimit(1000, burst=1)
    slots: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            slot = limit.reserve(HOST, 0.0).slot
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(round(s, 6) for s in slots) == [round(i / 1000, 6) for i in range(1600)]


def test_the_memory_store_forgets_idle_keys() -> None:
    store = MemoryRateLimitStore()
    limit = RateLimit(1, store=store)
    for i in range(3000):
        limit.reserve(f"user-{i}", float(i))
    assert len(store._records) < 2048
    assert "keys=" in repr(store)
    assert store.get("user-2999").tat > 0


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"rate": 0}, ValueError, "rate"),
        ({"rate": -1}, ValueError, "rate"),
        ({"rate": float("nan")}, ValueError, "rate"),
        ({"rate": "10"}, TypeError, "rate"),
        ({"rate": True}, TypeError, "rate"),
        ({"rate": 1, "per": 0}, ValueError, "per"),
        ({"rate": 1, "per": -1}, ValueError, "per"),
        ({"rate": 1, "per": MAX_SECONDS * 2}, ValueError, "per"),
        ({"rate": 1, "per": "1"}, TypeError, "per"),
        ({"rate": 1, "burst": 0}, ValueError, "burst"),
        ({"rate": 1, "burst": 1.5}, TypeError, "burst"),
        ({"rate": 1, "max_wait": -1}, ValueError, "max_wait"),
        ({"rate": 1, "max_wait": float("inf")}, ValueError, "max_wait"),
        ({"rate": 1, "key": "host"}, TypeError, "key"),
        ({"rate": 1, "store": {}}, TypeError, "store"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        RateLimit(**kwargs)


def test_defaults_and_equality() -> None:
    assert RateLimit(2.5).burst_size == 3
    assert RateLimit(0.1, per=60).burst_size == 1
    assert RateLimit(10, per=2).interval == 0.2
    assert RateLimit(10) == RateLimit(10)  # configuration only, not state
    assert RateLimit(10).store is not RateLimit(10).store


def test_clients_refuse_a_rate_limit_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="rate_limit"):
        restwell.Client(rate_limit=10)  # type: ignore[arg-type]


def test_the_key_function_chooses_the_limit() -> None:
    request = httpx.Request("GET", "https://api.example.com/users", headers={"x-tenant": "t1"})
    assert RateLimit(1).key_for(request) == "api.example.com"
    assert RateLimit(1, key=lambda r: r.headers["x-tenant"]).key_for(request) == "t1"
    with pytest.raises(TypeError, match="key function must return a str"):
        RateLimit(1, key=lambda r: 1).key_for(request)  # type: ignore[arg-type,return-value]


def test_the_wait_error_pickles_and_is_a_client_error() -> None:
    error = restwell.RateLimitWaitError("too long", retry_after=3.0, max_wait=1.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.retry_after, copy.max_wait, str(copy)) == (3.0, 1.0, "too long")
    assert isinstance(copy, restwell.ClientError)


# -- the server's headers ------------------------------------------------------------------

PARSER_TABLE: list[tuple[dict[str, str], Quota | None]] = [
    # The IETF draft: Structured Fields lists.
    ({"ratelimit": '"burst";r=50;t=30'}, Quota(50, 30.0)),
    ({"ratelimit": "burst;r=0;t=7"}, Quota(0, 7.0)),
    ({"ratelimit": '"a";r=50;t=30, "b";r=1;t=60'}, Quota(1, 60.0)),  # slowest pace wins
    ({"ratelimit": '"a";r=0;t=3, "b";r=0;t=9, "c";r=5;t=1'}, Quota(0, 9.0)),
    ({"ratelimit": '"burst";r=5', "ratelimit-policy": '"burst";q=100;w=60'}, Quota(5, 60.0)),
    ({"ratelimit": '"burst";r=5'}, None),  # no reset, no policy window: nothing to follow
    ({"ratelimit": '"burst";r=5;t=10;pk=:abc=:'}, Quota(5, 10.0)),  # unknown params skipped
    ({"ratelimit": '"a\\"b,c";r=1;t=2'}, Quota(1, 2.0)),  # an escaped quote, a comma inside
    # The older draft.
    (
        {"ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": "12"},
        Quota(0, 12.0),
    ),
    ({"ratelimit-remaining": "3"}, None),
    # X-RateLimit-*: seconds to go, epoch seconds, epoch milliseconds, Reset-After.
    ({"x-ratelimit-remaining": "9", "x-ratelimit-reset": "30"}, Quota(9, 30.0)),
    ({"x-ratelimit-remaining": "9", "x-ratelimit-reset": "1700000045"}, Quota(9, 45.0)),
    ({"x-ratelimit-remaining": "9", "x-ratelimit-reset": "1700000001500"}, Quota(9, 1.5)),
    ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1600000000"}, Quota(0, 0.0)),  # past
    ({"x-ratelimit-remaining": "1", "x-ratelimit-reset-after": "2.25"}, Quota(1, 2.25)),
    # Precedence: the newest family present and well formed.
    (
        {"ratelimit": '"q";r=1;t=5', "x-ratelimit-remaining": "0", "x-ratelimit-reset": "9"},
        Quota(1, 5.0),
    ),
    ({"ratelimit": "r=", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "9"}, Quota(0, 9.0)),
    # Malformed: ignored.
    ({"ratelimit": '"unterminated;r=1;t=1'}, None),
    ({"ratelimit": "(inner);r=1;t=1"}, None),
    ({"ratelimit": '"a";R=1;t=1'}, None),
    ({"ratelimit-remaining": "-1", "ratelimit-reset": "5"}, None),
    ({"x-ratelimit-remaining": "lots", "x-ratelimit-reset": "5"}, None),
    ({"x-ratelimit-remaining": "1", "x-ratelimit-reset": "soon"}, None),
    ({"x-ratelimit-remaining": "1", "x-ratelimit-reset": "nan"}, None),
    ({"x-ratelimit-remaining": "1", "x-ratelimit-reset": "1e400"}, None),
    ({"x-ratelimit-remaining": "\u0661", "x-ratelimit-reset": "5"}, None),  # Arabic-Indic 1
    ({}, None),
]


@pytest.mark.parametrize(("headers", "expected"), PARSER_TABLE)
def test_quota_parser_table(headers: dict[str, str], expected: Quota | None) -> None:
    assert parse_quota(headers, now_wall=WALL) == expected
    if all(value.isascii() for value in headers.values()):  # as a response carries them
        assert parse_quota(httpx.Headers(headers), now_wall=WALL) == expected


def test_a_malformed_header_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="restwell"):
        assert (
            parse_quota({"x-ratelimit-remaining": "lots", "x-ratelimit-reset": "5"}, WALL) is None
        )
        assert server_pause(429, {"retry-after": "soon"}, WALL) is None
        assert parse_quota({"ratelimit": '"a', "ratelimit-policy": "(x)"}, WALL) is None
    messages = [record.getMessage() for record in caplog.records]
    assert any("X-RateLimit-Remaining" in m for m in messages)
    assert any("Retry-After" in m for m in messages)
    assert any("RateLimit-Policy" in m for m in messages)
    assert all(record.levelno == logging.DEBUG for record in caplog.records)


def test_reset_magnitude_rule() -> None:
    assert reset_seconds(0, WALL) == 0.0
    assert reset_seconds(9_999_999, WALL) == 9_999_999.0  # just below 1e9: seconds to go
    assert reset_seconds(999_999_999, WALL) == MAX_SECONDS  # seconds to go, capped
    assert reset_seconds(WALL + 10, WALL) == 10.0
    assert reset_seconds((WALL + 10) * 1000, WALL) == 10.0
    assert reset_seconds(1e30, WALL) == MAX_SECONDS


HEADER_NAMES = st.sampled_from(
    [
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "retry-after",
        "retry-after-ms",
    ]
)
SF_ALPHABET = st.sampled_from(list('"\\;=,: ()*-._abrtqw0123456789\t\u0661'))
VALUES = st.one_of(
    st.text(max_size=40),
    st.text(SF_ALPHABET, max_size=40),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@settings(max_examples=500, deadline=None)
@given(
    headers=st.dictionaries(HEADER_NAMES, VALUES, max_size=6),
    status=st.sampled_from([200, 429, 503]),
    now_wall=st.floats(0, 4e9),
)
def test_parsers_never_raise_and_stay_in_range(
    headers: dict[str, str], status: int, now_wall: float
) -> None:
    quota = parse_quota(headers, now_wall)
    if quota is not None:
        assert quota.remaining >= 0
        assert 0.0 <= quota.reset <= MAX_SECONDS
    seconds = server_pause(status, headers, now_wall)
    assert seconds is None or 0.0 <= seconds <= MAX_SECONDS
    limit = RateLimit(10)
    limit.observe(HOST, status, headers, 0.0, now_wall)  # never raises either
    assert limit.reserve(HOST, 0.0).wait <= MAX_SECONDS


@settings(max_examples=200, deadline=None)
@given(
    remaining=st.integers(0, 10**6),
    reset=st.integers(0, 10**14),
    family=st.sampled_from(["ietf", "legacy", "x"]),
)
def test_well_formed_headers_of_each_family_round_trip(
    remaining: int, reset: int, family: str
) -> None:
    headers = {
        "ietf": {"ratelimit": f'"p";r={remaining};t={reset}'},
        "legacy": {"ratelimit-remaining": str(remaining), "ratelimit-reset": str(reset)},
        "x": {"x-ratelimit-remaining": str(remaining), "x-ratelimit-reset": str(reset)},
    }[family]
    quota = parse_quota(headers, WALL)
    assert quota is not None
    assert quota.remaining == remaining
    if family == "ietf" or reset < 1e9:  # the draft's t is always seconds to go
        assert quota.reset == min(reset, MAX_SECONDS)


# -- both clients against the real server --------------------------------------------------


def test_sync_twenty_requests_at_ten_per_second(server: str) -> None:
    with restwell.Client(server, rate_limit=RateLimit(10)) as client:
        client.get("/json")  # warm the connection: the bucket refills during the test's setup
        time.sleep(1.1)
        started = time.monotonic()
        for _ in range(20):
            client.get("/json")
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed <= 1.3


@pytest.mark.anyio
async def test_async_twenty_concurrent_requests_at_ten_per_second(server: str) -> None:
    async with restwell.AsyncClient(server, rate_limit=RateLimit(10)) as client:
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(client.get, "/json")
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed <= 1.3


def test_sync_threads_are_served_first_in_first_out(server: str) -> None:
    key = uuid.uuid4().hex
    waits = Waits()
    limit = RateLimit(20, burst=1)
    arrivals: dict[int, int] = {}
    with restwell.Client(server, rate_limit=limit, observers=[waits]) as client:
        host = httpx.URL(server).netloc.decode()
        limit.reserve(host, time.monotonic())  # take the free slot: every caller queues

        def call(index: int) -> None:
            arrivals[index] = client.get(f"/ratelimited/{key}").json()["attempts"]

        threads = []
        for index in range(8):
            thread = threading.Thread(target=call, args=(index,))
            thread.start()
            threads.append(thread)
            give_up = time.monotonic() + 5
            while waits.count() <= index:  # this caller holds its slot: start the next
                assert time.monotonic() < give_up, "a caller was never held"
                time.sleep(0.001)
        for thread in threads:
            thread.join()
    assert [arrivals[i] for i in range(8)] == list(range(1, 9))


@pytest.mark.anyio
async def test_async_tasks_are_served_first_in_first_out(server: str) -> None:
    key = uuid.uuid4().hex
    waits = Waits()
    limit = RateLimit(20, burst=1)
    arrivals: dict[int, int] = {}
    async with restwell.AsyncClient(server, rate_limit=limit, observers=[waits]) as client:
        host = httpx.URL(server).netloc.decode()
        limit.reserve(host, time.monotonic())

        async def call(index: int) -> None:
            arrivals[index] = (await client.get(f"/ratelimited/{key}")).json()["attempts"]

        async with anyio.create_task_group() as group:
            for index in range(8):
                group.start_soon(call, index)
                with anyio.fail_after(5):
                    while waits.count() <= index:
                        await anyio.sleep(0.001)
    assert [arrivals[i] for i in range(8)] == list(range(1, 9))


def _pause_url(key: str) -> str:
    return f"/ratelimited/{key}?status=429&retry_after=2"


def test_sync_one_429_pauses_every_thread_of_the_host(server: str) -> None:
    key = uuid.uuid4().hex
    finished: list[tuple[float, int]] = []
    lock = threading.Lock()
    with restwell.Client(server, rate_limit=RateLimit(5, burst=1)) as client:
        started = time.monotonic()

        def call() -> None:
            response = client.get(_pause_url(key))
            with lock:
                finished.append((time.monotonic() - started, response.json()["attempts"]))

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # The first answer (a 429, Retry-After: 2) came back at once; every other request,
    # the retry included, reached the server only after the pause.
    assert sorted(attempts for _, attempts in finished) == [2, 3, 4, 5]
    assert min(elapsed for elapsed, _ in finished) >= 1.9
    assert max(elapsed for elapsed, _ in finished) < 4.0


@pytest.mark.anyio
async def test_async_one_429_pauses_every_task_of_the_host(server: str) -> None:
    key = uuid.uuid4().hex
    finished: list[tuple[float, int]] = []
    async with restwell.AsyncClient(server, rate_limit=RateLimit(5, burst=1)) as client:
        started = time.monotonic()

        async def call() -> None:
            response = await client.get(_pause_url(key))
            finished.append((time.monotonic() - started, response.json()["attempts"]))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(call)
    assert sorted(attempts for _, attempts in finished) == [2, 3, 4, 5]
    assert min(elapsed for elapsed, _ in finished) >= 1.9
    assert max(elapsed for elapsed, _ in finished) < 4.0


def _family_headers(family: str) -> list[str]:
    if family == "ietf":
        return ['RateLimit:"default";r=0;t=1', 'RateLimit-Policy:"default";q=10;w=1']
    if family == "legacy":
        return ["RateLimit-Limit:10", "RateLimit-Remaining:0", "RateLimit-Reset:1"]
    # An epoch reset, 2 s ahead in whole seconds: between 1 and 2 s to go.
    return ["X-RateLimit-Limit:10", "X-RateLimit-Remaining:0",
            f"X-RateLimit-Reset:{int(time.time()) + 2}"]  # fmt: skip


FAMILIES = pytest.mark.parametrize("family", ["ietf", "legacy", "x"])


@FAMILIES
def test_sync_each_header_family_slows_the_client_down(server: str, family: str) -> None:
    key = uuid.uuid4().hex
    params = {"header": _family_headers(family)}
    with restwell.Client(server, rate_limit=RateLimit(100)) as client:
        client.get(f"/ratelimited/{key}", params=params)  # "nothing left for ~1 s"
        started = time.monotonic()
        assert client.get(f"/ratelimited/{key}").json()["attempts"] == 2
        elapsed = time.monotonic() - started
    assert 0.8 <= elapsed < 2.5


@FAMILIES
@pytest.mark.anyio
async def test_async_each_header_family_slows_the_client_down(server: str, family: str) -> None:
    key = uuid.uuid4().hex
    params = {"header": _family_headers(family)}
    async with restwell.AsyncClient(server, rate_limit=RateLimit(100)) as client:
        await client.get(f"/ratelimited/{key}", params=params)
        started = time.monotonic()
        assert (await client.get(f"/ratelimited/{key}")).json()["attempts"] == 2
        elapsed = time.monotonic() - started
    assert 0.8 <= elapsed < 2.5


@pytest.mark.anyio
async def test_a_low_quota_spreads_the_rest_over_the_window(server: str) -> None:
    key = uuid.uuid4().hex
    params = {"header": ["X-RateLimit-Remaining:2", "X-RateLimit-Reset:1"]}
    async with restwell.AsyncClient(server, rate_limit=RateLimit(100)) as client:
        await client.get(f"/ratelimited/{key}", params=params)
        started = time.monotonic()
        for _ in range(3):  # 2 left over 1 s: two at once, the third 0.5 s later
            await client.get(f"/ratelimited/{key}")
        elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.0


def test_sync_a_wait_beyond_max_wait_raises_at_once_without_sending(server: str) -> None:
    key = uuid.uuid4().hex
    limit = RateLimit(1, burst=1, max_wait=0.5)
    with restwell.Client(server, rate_limit=limit) as client:
        client.get(f"/ratelimited/{key}")
        started = time.monotonic()
        with pytest.raises(restwell.RateLimitWaitError) as info:
            client.get(f"/ratelimited/{key}")
        assert time.monotonic() - started < 0.2
        unlimited = client.with_options(rate_limit=None)
        assert unlimited.get(f"/attempts/{key}").json()["attempts"] == 1
    host = httpx.URL(server).netloc.decode()
    assert f"rate limit for {host}" in str(info.value)
    assert "max_wait=0.5" in str(info.value)
    assert info.value.max_wait == 0.5
    assert 0.5 < info.value.retry_after <= 1.0
    assert info.value.attempts == 0


@pytest.mark.anyio
async def test_async_a_wait_beyond_max_wait_raises_at_once_without_sending(server: str) -> None:
    key = uuid.uuid4().hex
    limit = RateLimit(1, burst=1, max_wait=0.5)
    async with restwell.AsyncClient(server, rate_limit=limit) as client:
        await client.get(f"/ratelimited/{key}")
        started = time.monotonic()
        with pytest.raises(restwell.RateLimitWaitError):
            await client.get(f"/ratelimited/{key}")
        assert time.monotonic() - started < 0.2
        unlimited = client.with_options(rate_limit=None)
        assert (await unlimited.get(f"/attempts/{key}")).json()["attempts"] == 1


def test_sync_a_wait_past_the_total_deadline_raises_a_total_timeout(server: str) -> None:
    with restwell.Client(server, rate_limit=RateLimit(1, burst=1), timeout=restwell.Timeout(
        total=0.5
    )) as client:  # fmt: skip
        client.get("/json")
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError) as info:
            client.get("/json")
    assert time.monotonic() - started < 0.2
    assert info.value.kind == "total"
    assert "rate limit" in str(info.value)
    assert "not sent" in str(info.value)


@pytest.mark.anyio
async def test_async_a_wait_past_the_total_deadline_raises_a_total_timeout(server: str) -> None:
    limit = RateLimit(1, burst=1)
    async with restwell.AsyncClient(server, rate_limit=limit, timeout=restwell.Timeout(
        total=0.5
    )) as client:  # fmt: skip
        await client.get("/json")
        with pytest.raises(restwell.TimeoutError) as info:
            await client.get("/json")
    assert info.value.kind == "total"


# -- the pipeline, on MockTransport --------------------------------------------------------


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def test_every_attempt_takes_a_slot_retries_included() -> None:
    statuses = iter([503, 503, 200])
    limit = RateLimit(10, burst=1)
    waits = Waits()
    with restwell.Client(
        "https://api.example.com",
        transport=_mock(lambda r: httpx.Response(next(statuses))),
        rate_limit=limit,
        retry=restwell.Retry(max_retries=2, backoff_factor=0.001, jitter=False),
        observers=[waits],
    ) as client:
        started = time.monotonic()
        assert client.get("/").attempts == 3
        elapsed = time.monotonic() - started
    # Three slots 0.1 s apart: the two retries were held by the limit, once each.
    assert len(waits.events) == 2
    assert all(e.host == "api.example.com" and 0 < e.wait <= 0.1 for e in waits.events)
    assert 0.18 <= elapsed < 0.5


def test_a_retry_held_too_long_raises_with_the_last_failure_as_cause() -> None:
    limit = RateLimit(1, burst=1, max_wait=0.5)
    with restwell.Client(
        "https://api.example.com",
        transport=_mock(lambda r: httpx.Response(503)),
        rate_limit=limit,
        retry=restwell.Retry(max_retries=2, backoff_factor=0.01, jitter=False),
    ) as client:
        started = time.monotonic()
        with pytest.raises(restwell.RateLimitWaitError) as info:
            client.get("/")
    assert time.monotonic() - started < 0.3
    assert info.value.attempts == 1
    assert "after 1 attempt(s)" in str(info.value)
    assert isinstance(info.value.__cause__, restwell.ServerError)


def test_with_options_shares_the_limit_and_can_change_it() -> None:
    limit = RateLimit(1, burst=1, max_wait=0.1)
    api = _mock(lambda r: httpx.Response(200))
    with restwell.Client("https://api.example.com", transport=api, rate_limit=limit) as client:
        client.get("/")
        copy = client.with_options(timeout=10)
        with pytest.raises(restwell.RateLimitWaitError):
            copy.get("/")  # the same RateLimit: the same slots
        unlimited = client.with_options(rate_limit=None)
        unlimited.get("/")
        other = client.with_options(rate_limit=RateLimit(1, burst=1))
        other.get("/")


def test_a_custom_key_limits_per_tenant() -> None:
    limit = RateLimit(1, burst=1, max_wait=0.1, key=lambda r: r.headers.get("x-tenant", ""))
    api = _mock(lambda r: httpx.Response(200))
    with restwell.Client("https://api.example.com", transport=api, rate_limit=limit) as client:
        client.get("/", headers={"x-tenant": "a"})
        client.get("/", headers={"x-tenant": "b"})  # another tenant: its own slots
        with pytest.raises(restwell.RateLimitWaitError):
            client.get("/", headers={"x-tenant": "a"})


@pytest.mark.anyio
async def test_a_pause_arriving_while_held_can_push_a_waiter_past_max_wait() -> None:
    first = True

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal first
        if first:
            first = False
            await anyio.sleep(0.1)
            return httpx.Response(429, headers={"retry-after": "3"})
        return httpx.Response(200)

    limit = RateLimit(5, burst=1, max_wait=1.0)
    errors: list[BaseException] = []
    async with restwell.AsyncClient(
        "https://api.example.com", transport=httpx.MockTransport(handler), rate_limit=limit,
        retry=False, raise_for_status=False,
    ) as client:  # fmt: skip

        async def second() -> None:
            await anyio.sleep(0.01)  # queued behind the first: slot at +0.2 s
            try:
                await client.get("/")
            except restwell.RateLimitWaitError as exc:
                errors.append(exc)

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(client.get, "/")
            group.start_soon(second)
        elapsed = time.monotonic() - started
    assert len(errors) == 1
    assert "paused" in str(errors[0])
    assert elapsed < 0.6  # told when it woke at its slot, not after the pause


@pytest.mark.anyio
async def test_a_cancelled_waiter_leaves_its_slot_and_the_queue_keeps_order() -> None:
    limit = RateLimit(10, burst=1)
    order: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        order.append(request.url.path)
        return httpx.Response(200)

    async with restwell.AsyncClient(
        "https://api.example.com", transport=_mock(handler), rate_limit=limit
    ) as client:
        await client.get("/first")
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            with anyio.move_on_after(0.05) as scope:
                await client.get("/cancelled")  # slot at +0.1 s; cancelled while waiting
            assert scope.cancelled_caught
            group.start_soon(client.get, "/third")  # slot at +0.2 s: one slot wasted
        elapsed = time.monotonic() - started
    assert order == ["/first", "/third"]
    assert 0.15 <= elapsed < 0.4


async def _spawn_waiters(count: int, wait: Callable[[int], float]) -> tuple[float, float]:
    """Run ``count`` tasks that each sleep ``wait(i)``; the (wall, CPU) seconds it took."""

    async def waiter(index: int) -> None:
        await anyio.sleep(wait(index))

    cpu = time.process_time()
    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for index in range(count):
            group.start_soon(waiter, index)
    return time.monotonic() - started, time.process_time() - cpu


@pytest.mark.anyio
async def test_ten_thousand_waiters_sleep_once_each_and_do_not_spin() -> None:
    """Each waiter sleeps once, exactly to its slot: it costs what 10,000 plain sleeps cost."""
    count = 10_000
    limit = RateLimit(count, burst=1)  # the last slot is 1 s after the first
    late: list[float] = []

    def reserve_slot(index: int) -> float:
        ticket = limit.reserve(HOST, time.monotonic())
        if index % 100 == 0:
            late.append(ticket.slot)
        return ticket.wait

    # The baseline: the same tasks, each sleeping once for a spread of times.
    _, plain_cpu = await _spawn_waiters(count, lambda index: index / count)
    elapsed, limited_cpu = await _spawn_waiters(count, reserve_slot)
    assert late == sorted(late)  # slots in arrival order
    assert elapsed >= 0.95
    # A queue that polled (or woke every waiter per slot) would cost many times more.
    assert limited_cpu < 1.5 * plain_cpu + 0.3, (limited_cpu, plain_cpu)


@pytest.mark.anyio
async def test_client_callers_are_held_at_most_once_each() -> None:
    limit = RateLimit(1000, burst=1)
    waits = Waits()
    api = _mock(lambda r: httpx.Response(200))
    async with restwell.AsyncClient(
        "https://api.example.com", transport=api, rate_limit=limit, observers=[waits]
    ) as client:
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for _ in range(500):
                group.start_soon(client.get, "/")
        elapsed = time.monotonic() - started
    call_ids = [event.call_id for event in waits.events]
    assert len(call_ids) == len(set(call_ids)) >= 450  # no caller woke twice
    assert 0.45 <= elapsed < 1.5
