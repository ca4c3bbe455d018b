"""JSON bodies: the extended types, path-naming errors, and orjson meaning what json means.

The standard-library backend is tested everywhere; the orjson tests skip (saying why) in the
CI session without the extras. Equivalence is checked by meaning (the decoded values, types
included: ``1`` is not ``1.0``), since the two may spell a float differently (``1e+16``).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import restwell
from restwell._serialization import (
    default_json,
    encode_json,
    json_default,
    stdlib_dumps,
    stdlib_loads,
)

Dumps = Callable[[Any], bytes]
Loads = Callable[[bytes | str], Any]


def _orjson_pair() -> tuple[Dumps, Loads]:
    pytest.importorskip("orjson", reason="the orjson extra is not installed in this session")
    from restwell._orjson import orjson_dumps, orjson_loads  # noqa: PLC0415 - after the skip

    return orjson_dumps, orjson_loads


@pytest.fixture(params=["stdlib", "orjson"])
def backend(request: pytest.FixtureRequest) -> tuple[Dumps, Loads]:
    """Each JSON backend restwell may choose: the tests hold for both."""
    if request.param == "orjson":
        return _orjson_pair()
    return stdlib_dumps, stdlib_loads


@pytest.fixture
def without_orjson(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``import orjson`` fail, as in an environment without the extra."""
    monkeypatch.setitem(sys.modules, "orjson", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "restwell._orjson", raising=False)
    default_json.cache_clear()
    yield
    default_json.cache_clear()


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, recursively (NaN equal to NaN, 1 not equal to 1.0)."""
    return repr(a) == repr(b)


# -- the extended types ----------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int
    at: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Tagged:
    tag: Colour
    when: datetime.date


class LaterDate(datetime.date):
    """Subclasses (pendulum's, say) convert like their base."""


class TaggedUUID(uuid.UUID):
    pass


class Money(decimal.Decimal):
    pass


EXTENDED: list[tuple[Any, Any]] = [
    (datetime.datetime(2024, 6, 1, 12, 30, 5, 250, tzinfo=datetime.timezone.utc),
     "2024-06-01T12:30:05.000250+00:00"),
    (datetime.datetime(2024, 6, 1, 12, 30), "2024-06-01T12:30:00"),
    (datetime.datetime(2024, 6, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
     "2024-06-01T00:00:00-05:00"),
    (datetime.date(2024, 6, 1), "2024-06-01"),
    (datetime.time(7, 5, 3), "07:05:03"),
    (datetime.time(7, 5, tzinfo=datetime.timezone.utc), "07:05:00+00:00"),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    (decimal.Decimal("19.990"), "19.990"),
    (decimal.Decimal("1E+3"), "1E+3"),
    (Colour.RED, "red"),
    (Level.HIGH, 3),
    (Point(1, datetime.datetime(2024, 1, 1)), {"x": 1, "at": "2024-01-01T00:00:00"}),
    (Tagged(Colour.RED, datetime.date(2020, 2, 29)), {"tag": "red", "when": "2020-02-29"}),
    ([Colour.RED, {"d": decimal.Decimal("0.1")}], ["red", {"d": "0.1"}]),
    ((1, "two", None), [1, "two", None]),
    (LaterDate(2030, 1, 2), "2030-01-02"),
    (TaggedUUID(int=1), "00000000-0000-0000-0000-000000000001"),
    (Money("2.50"), "2.50"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), EXTENDED)
def test_extended_types(backend: tuple[Dumps, Loads], value: Any, expected: Any) -> None:
    dumps, _ = backend
    assert json.loads(encode_json({"v": value}, dumps)) == {"v": expected}


def test_both_backends_write_extended_types_byte_for_byte() -> None:
    orjson_dumps, _ = _orjson_pair()
    values = [value for value, _ in EXTENDED]
    assert orjson_dumps(values) == stdlib_dumps(values)


def test_pydantic_models_use_their_own_json_mode(backend: tuple[Dumps, Loads]) -> None:
    pydantic = pytest.importorskip("pydantic", reason="the pydantic extra is not installed")
    dumps, _ = backend

    class Address(pydantic.BaseModel):
        city: str
        since: datetime.date

    class User(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(populate_by_name=True)
        id: int
        tags: set[str]
        address: Address
        nickname: str | None = pydantic.Field(default=None, alias="nickName")

    user = User(id=1, tags={"a"}, address=Address(city="Köln", since=datetime.date(2001, 1, 1)))
    body = json.loads(encode_json({"user": user, "all": [user]}, dumps))
    expected = json.loads(user.model_dump_json())
    assert body == {"user": expected, "all": [expected]}
    assert body["user"]["address"] == {"city": "Köln", "since": "2001-01-01"}


def test_json_default_refuses_unknown_types_naming_only_the_type() -> None:
    class Secretive:
        def __repr__(self) -> str:
            return "hunter2"

    with pytest.raises(TypeError, match="Secretive") as caught:
        json_default(Secretive())
    assert "hunter2" not in str(caught.value)


# -- errors name the type and the path, before any I/O ------------------------------------


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(token='s3cr3t')"


@dataclasses.dataclass
class Holder:
    inner: Any


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append({"again": loop})
    return loop


def _deep(levels: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(levels):
        node.append([])
        node = node[0]
    node.append({1})
    return root


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "json= cannot be serialised: an object of type set"),
        ({"a": 1.5, "b": [1, "x", None, 2.5], "c": {"d": 1}, "e": {3}}, r"json\['e'\].*set"),
        ({"items": [1, {"when": Opaque()}]}, r"json\['items'\]\[1\]\['when'\].*type Opaque"),
        ({"p": Holder(inner=b"raw")}, r"json\['p'\]\['inner'\].*type bytes"),
        ({"x": [math.nan]}, r"json\['x'\]\[0\].*nan is not a JSON number"),
        ({"x": -math.inf}, r"json\['x'\].*-inf is not a JSON number"),
        ({"k": {(1, 2): "v"}}, r"json\['k'\].*a key of type tuple"),
        ({math.nan: 1}, r"json=.*the key nan"),
        ({"k": "bad \ud800"}, r"json\['k'\].*lone surrogate"),
        ({"bad \udfff": 1}, r"json=.*a key holds a lone surrogate"),
        ([decimal.Decimal("NaN")], r"json=?\[0\].*non-finite Decimal"),
        (_circular(), r"json\[0\]\['again'\].*circular reference"),
        (_deep(600), r"json\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\[...\]\[0\].*nests more than 500"),
    ],
)
def test_unserialisable_values_name_type_and_path(
    backend: tuple[Dumps, Loads], value: Any, message: str
) -> None:
    dumps, _ = backend
    with pytest.raises(TypeError, match=message) as caught:
        encode_json(value, dumps)
    assert "s3cr3t" not in str(caught.value)


def test_an_int_too_long_to_write_is_named() -> None:
    if not hasattr(sys, "set_int_max_str_digits"):  # pragma: no cover - Python 3.10
        pytest.skip("Python 3.10 writes ints of any length")
    with pytest.raises(TypeError, match=r"json\['n'\].*int has more digits"):
        encode_json({"n": 10**5000}, stdlib_dumps)


def test_pydantic_serialisation_errors_name_the_model_not_the_value() -> None:
    pydantic = pytest.importorskip("pydantic", reason="the pydantic extra is not installed")

    class Token(pydantic.BaseModel):
        secret: str

        @pydantic.field_serializer("secret")
        def fail(self, value: str) -> str:
            raise ValueError(f"cannot write {value}")

    with pytest.raises(TypeError, match=r"json\['t'\].*Token") as caught:
        encode_json({"t": Token(secret="s3cr3t")}, stdlib_dumps)
    assert "s3cr3t" not in str(caught.value)


def test_custom_dumps_errors_are_passed_on() -> None:
    def picky(value: Any) -> str:
        raise ValueError("no lists today")

    with pytest.raises(TypeError, match="json_dumps raised ValueError: no lists today"):
        encode_json([1], picky)


def test_custom_dumps_may_return_str() -> None:
    assert encode_json({"a": "é"}, json.dumps) == b'{"a": "\\u00e9"}'


def test_serialisation_fails_before_any_io() -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    with restwell.Client("https://h.example", transport=httpx.MockTransport(record)) as client:
        with pytest.raises(TypeError, match=r"json\['when'\].*type timedelta"):
            client.post("/x", json={"when": datetime.timedelta(1)}, idempotency_key=True)
    assert sent == []


# -- orjson means what json means -----------------------------------------------------

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers() | finite_floats | st.text()
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
# Keys the standard library converts to strings (RFC 8259 §4 only has string keys).
odd_keys = st.none() | st.booleans() | st.integers() | finite_floats | st.text(max_size=4)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_orjson_dumps_means_what_stdlib_dumps_means(value: Any) -> None:
    orjson_dumps, _ = _orjson_pair()
    assert same(json.loads(orjson_dumps(value)), json.loads(stdlib_dumps(value)))


@given(st.dictionaries(odd_keys, scalars, max_size=6))
@settings(max_examples=200, deadline=None)
def test_non_str_keys_are_written_as_the_standard_library_writes_them(value: Any) -> None:
    orjson_dumps, _ = _orjson_pair()
    ours, theirs = json.loads(orjson_dumps(value)), json.loads(stdlib_dumps(value))
    # The keys as the same strings; the values by meaning (orjson writes 1.2e-7 where the
    # standard library writes 1.2e-07: the same float).
    assert list(ours) == list(theirs)
    assert same(ours, theirs)


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        [1, {"x": math.inf}],
        {"nullable": None, "score": -math.inf},
        2**64,
        -(2**63) - 1,
        {1: "one", False: "no", None: "none", 2.5: "half"},
        {"s": "\ud800"},
        _circular(),
        _deep(300),
        {"text": "null", "value": None},
    ],
)
def test_orjson_dumps_agrees_with_stdlib_on_edge_cases(value: Any) -> None:
    orjson_dumps, _ = _orjson_pair()

    def outcome(dumps: Dumps) -> Any:
        try:
            return json.loads(encode_json(value, dumps))
        except TypeError as exc:
            return f"TypeError: {exc}"

    assert same(outcome(orjson_dumps), outcome(stdlib_dumps))


@given(json_values | st.integers(min_value=-(10**30), max_value=10**30))
@settings(max_examples=300, deadline=None)
def test_orjson_loads_reads_what_stdlib_loads_reads(value: Any) -> None:
    _, orjson_loads = _orjson_pair()
    text = json.dumps(value)
    assert same(orjson_loads(text.encode()), stdlib_loads(text.encode()))
    assert same(orjson_loads(text), stdlib_loads(text))


TOKENS = [
    "[", "]", "{", "}", ",", ":", " ", '"a"', '"\\ud800"', '"\\u00e9"', "0", "-0", "-0.0",
    "1", "1.5", "1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity", "true", "null",
    "18446744073709551615", "18446744073709551616", "-9223372036854775808",
    "-9223372036854775809", "12345678901234567890.5", "\ufeff", "\t", "01", '"\x01"',
]  # fmt: skip


@given(st.lists(st.sampled_from(TOKENS), max_size=12).map("".join))
@settings(max_examples=500, deadline=None)
def test_orjson_loads_accepts_and_refuses_what_stdlib_does(text: str) -> None:
    _, orjson_loads = _orjson_pair()
    for data in (text.encode("utf-8", "surrogatepass"), text.encode("utf-16")):

        def outcome(loads: Loads, data: bytes = data) -> Any:
            try:
                return loads(data)
            except ValueError:
                return ValueError

        assert same(outcome(orjson_loads), outcome(stdlib_loads))


@given(st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_orjson_loads_on_arbitrary_bytes(data: bytes) -> None:
    _, orjson_loads = _orjson_pair()

    def outcome(loads: Loads) -> Any:
        try:
            return loads(data)
        except ValueError:
            return ValueError

    assert same(outcome(orjson_loads), outcome(stdlib_loads))


def test_big_integers_keep_every_digit(backend: tuple[Dumps, Loads]) -> None:
    _, loads = backend
    body = b'{"id": 123456789012345678901234567890, "neg": -9223372036854775809, "f": 0.5}'
    assert loads(body) == {"id": 123456789012345678901234567890, "neg": -(2**63) - 1, "f": 0.5}
    assert type(loads(b"[18446744073709551616]")[0]) is int


def test_deep_nesting_is_a_value_error(backend: tuple[Dumps, Loads]) -> None:
    _, loads = backend
    with pytest.raises(ValueError, match="nests too deeply"):
        loads(b"[" * 200_000)


# -- which backend a client uses ------------------------------------------------------------


def test_clients_choose_orjson_when_installed() -> None:
    orjson_dumps, orjson_loads = _orjson_pair()
    default_json.cache_clear()
    with restwell.Client("https://h.example") as client:
        assert client._settings.json_dumps is orjson_dumps
        assert client._settings.json_loads is orjson_loads


@pytest.mark.usefixtures("without_orjson")
def test_clients_use_the_standard_library_without_orjson() -> None:
    with restwell.Client("https://h.example") as client:
        assert client._settings.json_dumps is stdlib_dumps
        assert client._settings.json_loads is stdlib_loads


def test_explicit_functions_win() -> None:
    with restwell.Client("https://h.example", json_dumps=json.dumps, json_loads=json.loads) as c:
        assert c._settings.json_dumps is json.dumps
        assert c._settings.json_loads is json.loads
        assert c.with_options(json_loads=None)._settings.json_loads is default_json()[1]


def test_orjson_is_imported_at_client_construction_not_at_import() -> None:
    pytest.importorskip("orjson", reason="the orjson extra is not installed in this session")
    code = (
        "import sys, restwell\n"
        "before = 'orjson' in sys.modules\n"
        "restwell.Client('https://h.example').close()\n"
        "print(before, 'orjson' in sys.modules, 'pydantic' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True", "False"]
