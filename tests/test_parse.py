"""``Response.parse()``: bodies validated into pydantic models and other types.

Skipped as a whole (saying why) in the CI session without the ``pydantic`` extra.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
from typing import Annotated, Literal

import pytest
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

import restwell
from restwell._validation import _adapter
from test_validation import response

pydantic = pytest.importorskip("pydantic", reason="the pydantic extra is not installed")


pydantic = pytest.importorskip("pydantic", reason="the pydantic extra is not installed")


class User(pydantic.BaseModel):
    id: int
    name: str


class Admin(pydantic.BaseModel):
    id: int
    name: str
    role: str


class UserDict(TypedDict):
    id: int
    name: str


@dataclasses.dataclass
class UserData:
    id: int
    name: str


class Order(pydantic.BaseModel):
    id: int
    items: list[Item]


class Item(pydantic.BaseModel):
    sku: str
    price: float


Order.model_rebuild()


def test_parse_into_a_model() -> None:
    user = response(b'{"id": 7, "name": "Ada"}').parse(User)
    assert user == User(id=7, name="Ada")


def test_parse_into_lists_unions_typeddicts_and_dataclasses() -> None:
    users = b'[{"id": 1, "name": "a"}, {"id": 2, "name": "b", "role": "root"}]'
    assert response(users).parse(list[User]) == [User(id=1, name="a"), User(id=2, name="b")]
    mixed = response(users).parse(list[Admin | User])
    assert [type(u) for u in mixed] == [User, Admin]
    assert response(users).parse(list[UserDict])[1] == {"id": 2, "name": "b"}
    assert response(users).parse(list[UserData])[0] == UserData(1, "a")
    assert response(b'{"a": 1}').parse(dict[str, int]) == {"a": 1}


def test_parse_ignores_the_content_type() -> None:
    # Plenty of servers send JSON as text/plain; parse() is asked for a type, so it tries.
    assert response(b'{"id": 1, "name": "x"}', "text/plain").parse(User).id == 1


def test_parse_of_an_empty_body_validates_none() -> None:
    assert response(b"").parse(User | None) is None
    with pytest.raises(restwell.ValidationError, match=r"does not match User: <body>"):
        response(b"").parse(User)


def test_parse_failure_names_field_paths_not_the_body() -> None:
    body = b'{"id": 1, "items": [{"sku": "a", "price": 1}, {"sku": 5, "price": "s3cr3t"}]}'
    with pytest.raises(restwell.ValidationError) as caught:
        response(body).parse(Order)
    error = caught.value
    message = str(error)
    assert message.startswith("the response body does not match Order: ")
    assert "items[1].sku: Input should be a valid string" in message
    assert "items[1].price: Input should be a valid number" in message
    assert "s3cr3t" not in message
    # pydantic's own message quotes the input, so it is not chained.
    assert error.__cause__ is None
    assert error.__context__ is None
    assert [e["loc"] for e in error.errors] == [("items", 1, "sku"), ("items", 1, "price")]
    assert all("input" not in e for e in error.errors)
    assert error.response is not None
    assert error.response.status_code == 200
    assert error.request == restwell.RequestInfo("GET", "https://h.example/x")


def test_parse_failure_at_the_root_and_in_lists() -> None:
    root = r"<body>: Input should be a valid (list|array)"
    with pytest.raises(restwell.ValidationError, match=root):
        response(b"{}").parse(list[User])
    with pytest.raises(restwell.ValidationError, match=r"list\[.*User\]: \[1\]\.name: Field"):
        response(b'[{"id": 1, "name": "a"}, {"id": 2}]').parse(list[User])


@pytest.mark.parametrize(
    ("type_", "name"),
    [
        (dict[str, User], "dict[str, User]"),
        (User | None, "User | None"),
        (Annotated[list[Admin | User], "meta"], "list[Admin | User]"),
        (tuple[int, ...], "tuple[int, ...]"),
        (Literal["a", 1], "Literal['a', 1]"),
    ],
)
def test_parse_failure_names_the_type_readably(type_: object, name: str) -> None:
    with pytest.raises(restwell.ValidationError, match=rf"does not match {re.escape(name)}: "):
        response(b'"text"').parse(type_)


def test_parse_failure_lists_at_most_five_errors() -> None:
    with pytest.raises(restwell.ValidationError, match=r"\[4\].*; and 3 more$") as caught:
        response(b"[" + b",".join([b'"x"'] * 8) + b"]").parse(list[int])
    assert len(caught.value.errors) == 8


def test_parse_of_invalid_json_says_so() -> None:
    with pytest.raises(restwell.ValidationError, match="not valid JSON: Invalid JSON") as caught:
        response(b'{"id": ').parse(User)
    assert "does not match" not in str(caught.value)


def test_parse_validation_errors_pickle() -> None:
    with pytest.raises(restwell.ValidationError) as caught:
        response(b'{"id": "x", "name": "a"}').parse(User)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value)
    assert copy.errors[0]["loc"] == ("id",)


def test_type_adapters_are_cached_per_type() -> None:
    _adapter.cache_clear()
    for _ in range(3):
        response(b"[1]").parse(list[int])
        response(b'{"id": 1, "name": "a"}').parse(User)
    info = _adapter.cache_info()
    assert (info.misses, info.hits) == (2, 4)


def test_unhashable_types_are_validated_without_the_cache() -> None:
    unhashable = Annotated[int, pydantic.Field(gt=0), ["not", "hashable"]]
    with pytest.raises(TypeError):
        hash(unhashable)
    assert response(b"5").parse(unhashable) == 5
    with pytest.raises(restwell.ValidationError, match="greater than 0"):
        response(b"-5").parse(unhashable)
