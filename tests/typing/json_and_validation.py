"""Checked by mypy --strict and pyright (not run): JSON and validation as users write them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Optional, Union

from typing_extensions import TypedDict, assert_type

import restwell

if TYPE_CHECKING:
    # Never imported at run time: pytest collects this file (for doctests) in the CI
    # session without the pydantic extra too.
    import pydantic

    class User(pydantic.BaseModel):
        id: int
        name: str

    class Admin(User):
        role: str


class UserDict(TypedDict):
    id: int


@dataclasses.dataclass
class UserData:
    id: int


def dumps(value: Any) -> bytes:
    return b"{}"


def loads(data: bytes | str) -> Any:
    return {}


def sync_usage() -> None:
    with restwell.Client("https://api.example.com", json_dumps=dumps, json_loads=loads) as client:
        assert_type(client.get("/users/1").parse(User), User)
        assert_type(client.get("/users").parse(list[User]), list[User])
        assert_type(client.get("/users").parse(dict[str, User]), dict[str, User])
        assert_type(client.get("/users/1").parse(UserData), UserData)
        assert_type(client.get("/users/1").parse(int), int)
        response = client.post("/users", json=User(id=1, name="Ada"))
        assert_type(response.data, Any)
        assert_type(response.json(), Any)
        user: User | Admin = response.parse(User | Admin)  # a union is accepted
        typed: UserDict = response.parse(UserDict)  # so is a TypedDict
        del user, typed
        # A union is a value of type types.UnionType (or a typing special form): neither
        # checker can see its members there, so parse() types it as Any (mypy shows
        # "Any | User" for "User | None"), never the first member alone. Annotate
        # the variable to get the precise type:
        assert_type(response.parse(Optional[User]), Any)  # noqa: UP045 - what users write
        assert_type(response.parse(Union[User, None]), Any)  # noqa: UP007
        maybe: User | None = response.parse(User | None)
        maybe = response.parse(Optional[User])  # noqa: UP045
        number: int | str = response.parse(int | str)
        del maybe, number
    restwell.Client("https://h", json_dumps=lambda v: "{}", json_loads=lambda d: None).close()


async def async_usage() -> None:
    async with restwell.AsyncClient("https://api.example.com") as client:
        response = await client.get("/users/1")
        assert_type(response.parse(User), User)
        assert_type(response.parse(list[Admin]), list[Admin])


def errors() -> None:
    try:
        pass
    except restwell.ValidationError as exc:
        assert_type(exc.errors, list[Any])
        assert_type(exc.response, restwell.Response | None)
