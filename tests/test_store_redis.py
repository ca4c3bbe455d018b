"""RedisStore: rate limits, circuit breakers and retry budgets shared by processes.

Against the real test server and a real redis-server (the `redis_url` fixture; a private
`RedisServer` where a test stops it). Two stores on one Redis stand for two processes: each
has its own client, connections and in-memory fallback, and nothing else in common.

The Lua scripts are checked against the pure transitions they port (table-driven and with
hypothesis), with the time given to the script instead of Redis ``TIME``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

import restwell
from restwell._breaker import (
    HALF_OPEN_RETRY_AFTER,
    BreakerRecord,
    CircuitState,
    before_call,
    on_failure,
    on_release,
    on_success,
)
from restwell._budget import MemoryRetryBudgetStore
from restwell._ratelimit import (
    LimitRecord,
    Quota,
    Reservation,
    apply_quota,
    pause,
    reserve,
    wait_left,
)
from restwell._store_redis import RedisStore
from servers import RedisServer, TestApp
from servers.redis_server import _free_port as free_port

PASSWORD = "s3cret-redis-pa55"
_names = itertools.count()


def fresh(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def sync_store(url: str, **kwargs: Any) -> RedisStore:
    return RedisStore.from_url(url, **kwargs)


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "restwell"
        and r.levelno == logging.WARNING
        and "shared store" in r.getMessage()
    ]


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    value = sync_store(redis_url)
    yield value
    value.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as client:
        yield client


# -- the scripts are the pure transitions ---------------------------------------------------


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def put_limit(raw: redis.Redis, key: str, record: LimitRecord) -> None:
    raw.delete(key)
    raw.hset(
        key,
        mapping={
            "tat": repr(record.tat),
            "paused_until": repr(record.paused_until),
            "shift": repr(record.shift),
            "quota_interval": repr(record.quota_interval),
            "quota_burst": str(record.quota_burst),
            "quota_until": repr(record.quota_until),
        },
    )


def get_limit(raw: redis.Redis, key: str) -> LimitRecord:
    h = {text(k): text(v) for k, v in raw.hgetall(key).items()}
    return LimitRecord(
        float(h.get("tat", 0)),
        float(h.get("paused_until", 0)),
        float(h.get("shift", 0)),
        float(h.get("quota_interval", 0)),
        int(h.get("quota_burst", 0)),
        float(h.get("quota_until", 0)),
    )


def script(store: RedisStore, name: str, key: str, args: list[str]) -> Any:
    return store._scripts[name](keys=[key], args=args)


def limit_args(now: float, config: restwell.RateLimit, *rest: str) -> list[str]:
    return [repr(now), repr(config.interval), str(config.burst_size), "60000", *rest]


limit_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"),
            st.floats(0, 2),
            st.one_of(st.none(), st.floats(0, 3)),
        ),
        st.tuples(st.just("pause"), st.floats(0, 2), st.floats(0, 5)),
        st.tuples(st.just("quota"), st.floats(0, 2), st.integers(-1, 20), st.floats(-1, 10)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 5),
    ops=limit_ops,
)
def test_rate_limit_scripts_match_the_pure_transitions(
    redis_server: RedisServer, rate: float, burst: int, ops: list[tuple[Any, ...]]
) -> None:
    config = restwell.RateLimit(rate, burst=burst)
    with redis.Redis.from_url(redis_server.url) as raw:
        store = RedisStore(raw)
        key = fresh("rl")
        now = 1000.0
        record = LimitRecord()
        for op in ops:
            now += op[1]
            if op[0] == "reserve":
                limit = op[2]
                ticket, record = reserve(record, now, config, key=key, limit=limit)
                got = script(
                    store,
                    "reserve",
                    key,
                    limit_args(now, config, "" if limit is None else repr(limit)),
                )
                assert bool(got[0]) == ticket.granted
                assert float(got[1]) == pytest.approx(ticket.wait, abs=1e-9)
                assert float(got[2]) == pytest.approx(ticket.shift, abs=1e-9)
            elif op[0] == "pause":
                record = pause(record, now, now + op[2], config)
                script(store, "pause", key, limit_args(now, config, repr(op[2])))
            else:
                quota = Quota(op[2], op[3])
                record = apply_quota(record, now, quota, config)
                script(store, "quota", key, limit_args(now, config, str(op[2]), repr(op[3])))
            stored = get_limit(raw, key)
            for field in ("tat", "paused_until", "shift", "quota_interval", "quota_until"):
                assert getattr(stored, field) == pytest.approx(getattr(record, field), abs=1e-6)
            assert stored.quota_burst == record.quota_burst


@pytest.mark.parametrize(
    ("record", "slot", "shift", "now"),
    [
        (LimitRecord(), 5.0, 0.0, 4.0),
        (LimitRecord(shift=3.0, paused_until=4.5), 2.0, 0.0, 2.0),
        (LimitRecord(shift=3.0, paused_until=9.0), 2.0, 1.0, 3.0),
        (LimitRecord(shift=1.0), 2.0, 1.0, 3.0),
    ],
)
def test_the_wait_script_matches_wait_left(
    store: RedisStore, raw: redis.Redis, record: LimitRecord, slot: float, shift: float, now: float
) -> None:
    put_limit(raw, "w", record)
    ticket = Reservation("w", slot=slot, shift=shift, reserved_at=0.0, wait=0.0)
    got = float(
        script(store, "wait", "w", [repr(now), "0", "1", "0", repr(slot - now), repr(shift)])
    )
    assert got == pytest.approx(wait_left(record, ticket, now), abs=1e-9)


def breaker_of(raw_answer: list[Any], start: int) -> BreakerRecord:
    state, failures, opened, inflight, trial = (
        v.decode() if isinstance(v, bytes) else str(v) for v in raw_answer[start : start + 5]
    )
    return BreakerRecord(
        CircuitState(state), int(failures), float(opened), int(inflight), float(trial)
    )


@settings(max_examples=80, deadline=None)
@given(
    threshold=st.integers(1, 3),
    recovery=st.floats(0.5, 5),
    half_open=st.integers(1, 2),
    ops=st.lists(
        st.tuples(st.sampled_from(["admit", "success", "failure", "release"]), st.floats(0, 3)),
        min_size=1,
        max_size=15,
    ),
)
def test_breaker_scripts_match_the_pure_transitions(
    redis_server: RedisServer,
    threshold: int,
    recovery: float,
    half_open: int,
    ops: list[tuple[str, float]],
) -> None:
    config = restwell.CircuitBreaker(
        failure_threshold=threshold, recovery_timeout=recovery, half_open_max_calls=half_open
    )
    transitions = {"success": on_success, "failure": on_failure, "release": on_release}
    with redis.Redis.from_url(redis_server.url) as raw:
        store = RedisStore(raw)
        key = fresh("cb")
        now = 1000.0
        record = BreakerRecord()
        for name, dt in ops:
            now += dt
            args = [repr(now), str(threshold), repr(config.recovery_timeout), str(half_open),
                    "60000", repr(HALF_OPEN_RETRY_AFTER)]  # fmt: skip
            got = script(store, name, key, args)
            old = record
            if name == "admit":
                admission, record = before_call(record, now, config)
                assert bool(got[10]) == admission.allowed
                assert float(got[11]) == pytest.approx(admission.retry_after, abs=1e-9)
            else:
                record = transitions[name](record, now, config)
            assert breaker_of(got, 0) == old
            assert breaker_of(got, 5) == record


@settings(max_examples=60, deadline=None)
@given(
    ratio=st.floats(0, 1),
    window=st.floats(1, 20),
    per_second=st.floats(0, 1),
    ops=st.lists(
        st.tuples(st.sampled_from(["deposit", "withdraw", "available"]), st.floats(0, 4)),
        min_size=1,
        max_size=30,
    ),
)
def test_budget_scripts_match_the_memory_store(
    redis_server: RedisServer,
    ratio: float,
    window: float,
    per_second: float,
    ops: list[tuple[str, float]],
) -> None:
    config = restwell.RetryBudget(ratio=ratio, window=window, min_per_second=per_second)
    memory = MemoryRetryBudgetStore()
    with redis.Redis.from_url(redis_server.url) as raw:
        store = RedisStore(raw)
        key = fresh("rb")
        now = 1000.0
        for name, dt in ops:
            now += dt
            args = [repr(now), repr(window), repr(config.ratio), repr(config.floor), "60000"]
            got = script(store, name, key, args)
            if name == "deposit":
                memory.deposit(key, now, config)
                assert int(got[1]) == memory.available(key, now, config)
            elif name == "withdraw":
                assert bool(got[0]) == memory.try_withdraw(key, now, config)
                assert int(got[1]) == memory.available(key, now, config)
            else:
                assert float(got) == memory.available(key, now, config)


# -- keys, TTLs, joining ---------------------------------------------------------------------


def test_keys_carry_the_namespace_a_hash_tag_and_a_ttl(
    redis_url: str, raw: redis.Redis, server: str
) -> None:
    store = sync_store(redis_url, namespace="team-a")
    client = restwell.Client(
        base_url=server,
        retry=restwell.Retry(max_retries=1, backoff_factor=0.0),
        rate_limit=restwell.RateLimit(10, store=store),
        circuit_breaker=restwell.CircuitBreaker(recovery_timeout=30.0, store=store),
        retry_budget=restwell.RetryBudget(store=store),
    )
    with client:
        with pytest.raises(restwell.ServerError):
            client.get("/status/503")
    host = server.removeprefix("http://")
    names = sorted(text(name) for name in raw.keys("*"))
    assert names == [
        f"team-a:breaker:{{{host}}}",
        f"team-a:budget:{{{host}}}",
        f"team-a:ratelimit:{{{host}}}",
    ]
    for name in names:
        assert 0 < raw.pttl(name) <= 120_000 + 1000  # breaker: 4 x 30 s
    assert raw.pttl(f"team-a:ratelimit:{{{host}}}") <= 61_000
    # A key with braces of its own cannot break the hash tag.
    assert store.key("ratelimit", "a}b").count("{") == 1
    store.close()


def test_a_joiner_reads_the_state_and_never_resets_it(redis_url: str) -> None:
    first, second = sync_store(redis_url), sync_store(redis_url)
    limit_a = restwell.RateLimit(10, burst=1, store=first)
    breaker_a = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, store=first)
    for _ in range(5):
        limit_a.reserve("h", 0.0)
    breaker_a.record_failure("h", 0.0)
    # A process that starts now, with its own objects.
    limit_b = restwell.RateLimit(10, burst=1, store=second)
    breaker_b = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, store=second)
    assert breaker_b.state("h", 0.0) is CircuitState.OPEN
    wait = breaker_b.admit("h", 0.0)
    assert wait is not None
    assert 29.0 < wait <= 30.0
    assert limit_b.reserve("h", 0.0).wait == pytest.approx(0.5, abs=0.05)
    breaker_b.reset("h")
    assert breaker_a.state("h", 0.0) is CircuitState.CLOSED
    first.close()
    second.close()


def test_the_constructor_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match=r"redis\.Redis or a redis\.asyncio\.Redis"):
        RedisStore("redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="namespace"):
        RedisStore(redis.Redis(), namespace="a{b}")
    with pytest.raises(TypeError, match="fail_closed"):
        RedisStore(redis.Redis(), fail_closed="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="url must be a str"):
        RedisStore.from_url(b"redis://x")  # type: ignore[arg-type]


def test_a_sync_client_cannot_use_an_asyncio_store(server: str) -> None:
    store = RedisStore(redis.asyncio.Redis())
    with restwell.Client(base_url=server, rate_limit=restwell.RateLimit(10, store=store)) as client:
        with pytest.raises(TypeError, match=r"redis\.asyncio client"):
            client.get("/json")


# -- two processes, one state --------------------------------------------------------------


def test_two_clients_share_a_rate_limit(redis_url: str, server: str) -> None:
    stores = [sync_store(redis_url), sync_store(redis_url)]
    clients = [
        restwell.Client(base_url=server, rate_limit=restwell.RateLimit(10, per=1.0, store=s))
        for s in stores
    ]
    errors: list[BaseException] = []

    def run(client: restwell.Client) -> None:
        try:
            for _ in range(10):
                client.get("/json")
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert not errors
    # A burst of 10, then one every 0.1 s: the 20th goes at 1.0 s (alone, each in 0 s).
    assert 0.95 <= elapsed <= 1.3
    for client, store in zip(clients, stores, strict=True):
        client.close()
        store.close()


def test_a_breaker_opened_by_one_client_refuses_on_the_other(
    redis_url: str, server: str, server_app: TestApp
) -> None:
    stores = [sync_store(redis_url), sync_store(redis_url)]
    first, second = (
        restwell.Client(
            base_url=server,
            retry=False,
            circuit_breaker=restwell.CircuitBreaker(failure_threshold=2, store=s),
        )
        for s in stores
    )
    for _ in range(2):
        with pytest.raises(restwell.ServerError):
            first.get("/status/503")
    key = fresh("refused")
    with pytest.raises(restwell.CircuitOpenError):
        second.get(f"/attempts/{key}")
    assert server_app.attempts_for(key)[0] == 0
    first.close()
    second.close()


def test_exactly_one_half_open_probe_across_threads(redis_url: str, server: str) -> None:
    opener = sync_store(redis_url)
    breaker = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=0.3, store=opener)
    host = server.removeprefix("http://")
    breaker.record_failure(host, 0.0)
    time.sleep(0.35)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        store = sync_store(redis_url)
        config = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=0.3, store=store)
        with restwell.Client(base_url=server, retry=False, circuit_breaker=config) as client:
            barrier.wait()
            try:
                client.get("/delay/0.3")
                outcome = "sent"
            except restwell.CircuitOpenError:
                outcome = "refused"
        store.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["sent"]
    assert breaker.state(host, 0.0) is CircuitState.CLOSED
    opener.close()


def test_a_shared_retry_budget_counts_every_process(redis_url: str) -> None:
    budgets = [
        restwell.RetryBudget(ratio=0.5, min_per_second=0.0, store=sync_store(redis_url))
        for _ in range(2)
    ]
    for budget in budgets:
        for _ in range(2):
            budget.record_request("h", 0.0)
    # 4 requests in all allow 2 retries, whichever process asks.
    assert [budgets[0].try_spend("h", 0.0), budgets[1].try_spend("h", 0.0)] == [True, True]
    assert budgets[1].try_spend("h", 0.0) is False
    assert budgets[0].available("h", 0.0) == 0.0


_BUSY = """
local t = redis.call('TIME')
local start = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now = start
while now - start < tonumber(ARGV[1]) do
  t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
return 1
"""


def busy(url: str, seconds: float) -> None:
    """Hold the Redis server at ``url`` for ``seconds`` (a script runs alone)."""
    with redis.Redis.from_url(url) as raw:
        raw.eval(_BUSY, 0, repr(seconds))


# -- outages -------------------------------------------------------------------------------


def test_calls_go_on_under_local_limits_while_redis_is_down(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisServer() as private, redis.Redis.from_url(private.url) as raw:
        store = sync_store(private.url)
        client = restwell.Client(
            base_url=server,
            rate_limit=restwell.RateLimit(20, burst=1, store=store),
            circuit_breaker=restwell.CircuitBreaker(store=store),
            retry_budget=restwell.RetryBudget(store=store),
        )
        with caplog.at_level(logging.DEBUG, logger="restwell"):
            client.get("/json")
            assert raw.keys("*")
            private.stop()
            started = time.monotonic()
            for _ in range(6):
                client.get("/json")  # no Redis error reaches the caller
            # The local limit holds: 6 calls at 20/s, burst 1, take 0.25 s at least.
            assert time.monotonic() - started >= 0.24
            assert len(store_warnings(caplog)) == 1
            private.start()
            back = time.monotonic()
            while not raw.keys("*"):
                client.get("/json")
                assert time.monotonic() - back < 1.0, "Redis not used again within 1 s"
        assert len(store_warnings(caplog)) == 1
        assert "answers again" in caplog.text
        assert "redis.exceptions" not in caplog.text
        client.close()
        store.close()


def test_a_slot_taken_during_an_outage_ignores_older_pauses_in_redis(store: RedisStore) -> None:
    limit = restwell.RateLimit(100, store=store)
    limit.pause("h", 0.2, 0.0)  # Redis: shift 0.2, paused until 0.2 s from now
    time.sleep(0.25)
    store._outage.failed(ConnectionError("refused"))  # an outage, as seen here (0.25 s)
    ticket = limit.reserve("h", 0.0)
    assert ticket.wait == 0.0
    store._outage.answered()  # Redis answers again
    assert limit.wait(ticket, 0.0) == 0.0  # not 0.2 s: the old pause was over
    limit.pause("h", 0.5, 0.0)  # a pause in force still holds it
    assert 0.4 < limit.wait(ticket, 0.0) <= 0.5


def test_a_slow_redis_costs_a_call_at_most_the_socket_timeout(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisServer() as private:
        store = sync_store(private.url)  # socket_timeout 0.25 s
        limit = restwell.RateLimit(100, store=store)
        with restwell.Client(base_url=server, rate_limit=limit) as client:
            client.get("/json")  # connected, scripts loaded
            thread = threading.Thread(target=busy, args=(private.url, 1.0))
            thread.start()
            time.sleep(0.05)
            with caplog.at_level(logging.DEBUG, logger="restwell"):
                started = time.monotonic()
                for _ in range(3):
                    client.get("/json")
                elapsed = time.monotonic() - started
            thread.join()
        store.close()
    # One command timed out (0.25 s); the next calls used local state without asking.
    assert 0.2 <= elapsed < 0.6
    assert len(store_warnings(caplog)) == 1
    assert "TimeoutError" in store_warnings(caplog)[0].getMessage()


def test_fail_closed_refuses_without_sending_and_hides_the_password(
    server: str, server_app: TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    store = sync_store(url, fail_closed=True)
    key = fresh("closed")
    with restwell.Client(base_url=server, rate_limit=restwell.RateLimit(10, store=store)) as client:
        with caplog.at_level(logging.DEBUG, logger="restwell"):
            with pytest.raises(restwell.StoreUnavailableError) as caught:
                client.get(f"/attempts/{key}")
            with pytest.raises(restwell.StoreUnavailableError):
                client.get(f"/attempts/{key}")
    assert server_app.attempts_for(key)[0] == 0
    assert isinstance(caught.value, restwell.ClientError)
    assert "RedisStore(redis://127.0.0.1:" in str(caught.value)
    assert caught.value.store == store.description
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(store)
    assert len(store_warnings(caplog)) == 1


def test_fail_open_hides_the_password_too(server: str, caplog: pytest.LogCaptureFixture) -> None:
    store = sync_store(f"redis://user:{PASSWORD}@127.0.0.1:{free_port()}/0")
    breaker = restwell.CircuitBreaker(store=store)
    with restwell.Client(base_url=server, circuit_breaker=breaker) as client:
        with caplog.at_level(logging.DEBUG, logger="restwell"):
            assert client.get("/json").status_code == 200
    assert len(store_warnings(caplog)) == 1
    assert PASSWORD not in caplog.text


# -- AsyncClient -----------------------------------------------------------------------------


@pytest.fixture(params=["sync", "asyncio"])
def redis_kind(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    kind: str = request.param
    if kind == "asyncio" and anyio_backend == "trio":
        pytest.skip("redis.asyncio runs on asyncio only (trio uses a sync client)")
    return kind


class Stores:
    """Stores made for one async test, closed at its end."""

    def __init__(self, url: str, kind: str) -> None:
        self.url, self.kind = url, kind
        self.made: list[RedisStore] = []

    def __call__(self, **kwargs: Any) -> RedisStore:
        store = RedisStore.from_url(self.url, asynchronous=self.kind == "asyncio", **kwargs)
        self.made.append(store)
        return store

    async def aclose(self) -> None:
        for store in self.made:
            await store.aclose()


@pytest.fixture
async def stores(redis_url: str, redis_kind: str) -> AsyncIterator[Stores]:
    made = Stores(redis_url, redis_kind)
    yield made
    await made.aclose()


@pytest.mark.anyio
async def test_two_async_clients_share_a_rate_limit(stores: Stores, server: str) -> None:
    clients = [
        restwell.AsyncClient(base_url=server, rate_limit=restwell.RateLimit(10, store=stores()))
        for _ in range(2)
    ]
    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for client in clients:
            for _ in range(10):
                group.start_soon(client.get, "/json")
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed <= 1.3
    for client in clients:
        await client.aclose()


@pytest.mark.anyio
async def test_an_async_breaker_opened_by_one_client_refuses_on_the_other(
    stores: Stores, server: str, server_app: TestApp
) -> None:
    first, second = (
        restwell.AsyncClient(
            base_url=server,
            retry=False,
            circuit_breaker=restwell.CircuitBreaker(failure_threshold=2, store=stores()),
        )
        for _ in range(2)
    )
    for _ in range(2):
        with pytest.raises(restwell.ServerError):
            await first.get("/status/503")
    key = fresh("refused")
    with pytest.raises(restwell.CircuitOpenError):
        await second.get(f"/attempts/{key}")
    assert server_app.attempts_for(key)[0] == 0
    await first.aclose()
    await second.aclose()


@pytest.mark.anyio
async def test_exactly_one_half_open_probe_across_tasks(stores: Stores, server: str) -> None:
    host = server.removeprefix("http://")
    with redis.Redis.from_url(stores.url) as raw:
        opener = restwell.CircuitBreaker(
            failure_threshold=1, recovery_timeout=0.3, store=RedisStore(raw)
        )
        opener.record_failure(host, 0.0)
        await anyio.sleep(0.35)
        clients = [
            restwell.AsyncClient(
                base_url=server,
                retry=False,
                circuit_breaker=restwell.CircuitBreaker(
                    failure_threshold=1, recovery_timeout=0.3, store=stores()
                ),
            )
            for _ in range(8)
        ]
        outcomes: list[str] = []

        async def run(client: restwell.AsyncClient) -> None:
            try:
                await client.get("/delay/0.3")
                outcomes.append("sent")
            except restwell.CircuitOpenError:
                outcomes.append("refused")

        async with anyio.create_task_group() as group:
            for client in clients:
                group.start_soon(run, client)
        assert sorted(outcomes) == ["refused"] * 7 + ["sent"]
        assert opener.state(host, 0.0) is CircuitState.CLOSED
        for client in clients:
            await client.aclose()


@pytest.mark.anyio
async def test_an_async_client_goes_on_while_redis_is_down(
    redis_kind: str, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisServer() as private, redis.Redis.from_url(private.url) as raw:
        store = RedisStore.from_url(private.url, asynchronous=redis_kind == "asyncio")
        client = restwell.AsyncClient(
            base_url=server,
            retry=restwell.Retry(max_retries=1, backoff_factor=0.0),
            rate_limit=restwell.RateLimit(20, burst=1, store=store),
            circuit_breaker=restwell.CircuitBreaker(store=store),
            retry_budget=restwell.RetryBudget(store=store),
        )
        with caplog.at_level(logging.DEBUG, logger="restwell"):
            await client.get("/json")
            assert raw.keys("*")
            private.stop()
            started = time.monotonic()
            for _ in range(6):
                await client.get("/json")
            assert time.monotonic() - started >= 0.24
            with pytest.raises(restwell.ServerError):  # retried once, on the local budget
                await client.get("/status/503")
            assert len(store_warnings(caplog)) == 1
            private.start()
            back = time.monotonic()
            while not raw.keys("*"):
                await client.get("/json")
                assert time.monotonic() - back < 1.0, "Redis not used again within 1 s"
        assert len(store_warnings(caplog)) == 1
        assert "answers again" in caplog.text
        await client.aclose()
        await store.aclose()


@pytest.mark.anyio
async def test_async_fail_closed_refuses_without_sending(
    redis_kind: str, server: str, server_app: TestApp
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    store = RedisStore.from_url(url, asynchronous=redis_kind == "asyncio", fail_closed=True)
    key = fresh("closed")
    breaker = restwell.CircuitBreaker(store=store)
    async with restwell.AsyncClient(base_url=server, circuit_breaker=breaker) as client:
        with pytest.raises(restwell.StoreUnavailableError) as caught:
            await client.get(f"/attempts/{key}")
    assert server_app.attempts_for(key)[0] == 0
    assert PASSWORD not in str(caught.value)
    await store.aclose()


@pytest.mark.anyio
async def test_an_asyncio_store_says_so_on_trio(anyio_backend: str, server: str) -> None:
    if anyio_backend != "trio":
        pytest.skip("about trio")
    store = RedisStore(redis.asyncio.Redis())
    limit = restwell.RateLimit(10, store=store)
    async with restwell.AsyncClient(base_url=server, rate_limit=limit) as client:
        with pytest.raises(TypeError, match="asyncio only"):
            await client.get("/json")


@pytest.mark.anyio
async def test_an_asyncio_store_never_blocks_the_event_loop(
    anyio_backend: str, redis_url: str, server: str
) -> None:
    if anyio_backend == "trio":
        pytest.skip("redis.asyncio runs on asyncio only")
    store = RedisStore.from_url(redis_url, asynchronous=True, socket_timeout=2.0)
    limit = restwell.RateLimit(10, store=store)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with restwell.AsyncClient(base_url=server, rate_limit=limit) as client:
        await client.get("/json")  # connected, scripts loaded
        thread = threading.Thread(target=busy, args=(redis_url, 0.3))
        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            thread.start()
            await anyio.sleep(0.05)
            ticks = 0
            started = time.monotonic()
            await client.get("/json")
            elapsed = time.monotonic() - started
            during = ticks
            group.cancel_scope.cancel()
        thread.join()
    await store.aclose()
    assert elapsed >= 0.15  # the store's script waited for the busy server
    assert during >= 8  # and the event loop kept running meanwhile (blocked: 0 or 1)


@pytest.mark.anyio
async def test_two_async_clients_share_a_retry_budget(stores: Stores, server: str) -> None:
    retry = restwell.Retry(max_retries=1, backoff_factor=0.0)
    first, second = (
        restwell.AsyncClient(
            base_url=server,
            retry=retry,
            # One retry per 10 s window, whatever the traffic, in all processes together.
            retry_budget=restwell.RetryBudget(ratio=0.0, min_per_second=0.1, store=stores()),
        )
        for _ in range(2)
    )
    with pytest.raises(restwell.ServerError) as caught:
        await first.get("/status/503")
    assert caught.value.attempts == 2
    with pytest.raises(restwell.ServerError) as caught:
        await second.get("/status/503")
    assert caught.value.attempts == 1
    assert "retry budget" in str(caught.value)
    await first.aclose()
    await second.aclose()


def test_a_store_leaves_a_client_it_was_given_open(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as raw:
        store = RedisStore(raw)
        restwell.RateLimit(10, store=store).reserve("h", 0.0)
        store.close()
        assert raw.ping()
