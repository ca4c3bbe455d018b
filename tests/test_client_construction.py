"""What a new user trips over when building a client: clear errors naming public names."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import pytest

import restwell

CLIENTS = pytest.mark.parametrize("client_class", [restwell.Client, restwell.AsyncClient])


@CLIENTS
def test_unknown_keyword_names_the_public_class(client_class: type[Any]) -> None:
    with pytest.raises(TypeError) as info:
        client_class("https://h", foo=1)
    message = str(info.value)
    assert message == f"{client_class.__name__}.__init__() got an unexpected keyword argument 'foo'"
    assert "BaseClient" not in message


@CLIENTS
def test_the_renamed_constructor_keeps_its_signature(client_class: type[Any]) -> None:
    parameters = inspect.signature(client_class).parameters
    assert list(parameters)[:2] == ["base_url", "headers"]
    assert parameters["retry_budget"].default is True
    assert client_class.__init__.__doc__ == restwell.Client.__mro__[1].__init__.__doc__


def test_a_user_subclass_is_named_too() -> None:
    class MyClient(restwell.Client):
        pass

    with pytest.raises(TypeError, match=r"\.MyClient\.__init__\(\) got an unexpected"):
        MyClient(foo=1)


def test_a_user_subclass_with_its_own_init_keeps_it() -> None:
    class Named(restwell.Client):
        def __init__(self, name: str, **kwargs: Any) -> None:
            self.name = name
            super().__init__(**kwargs)

    with Named("x", base_url="https://h") as client:
        assert client.name == "x"
    with pytest.raises(TypeError, match=r"Client\.__init__\(\) got an unexpected"):
        Named("x", colour=1)


def test_request_methods_and_with_options_name_public_methods() -> None:
    api = httpx.MockTransport(lambda r: httpx.Response(200))
    with restwell.Client("https://h", transport=api) as client:
        with pytest.raises(TypeError, match=r"^Client\.request\(\) got an unexpected .*'jsn'"):
            client.get("/x", jsn={})  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"^Client\.download\(\) got an unexpected"):
            client.download("/x", "f", jsn={})  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"^with_options\(\) got unknown option\(s\): jsn"):
            client.with_options(jsn={})


@pytest.mark.anyio
async def test_async_request_methods_name_public_methods() -> None:
    api = httpx.MockTransport(lambda r: httpx.Response(200))
    async with restwell.AsyncClient("https://h", transport=api) as client:
        with pytest.raises(TypeError, match=r"^AsyncClient\.request\(\) got an unexpected"):
            await client.get("/x", jsn={})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("client_class", "transport", "expected"),
    [
        (restwell.AsyncClient, httpx.HTTPTransport(), "httpx.AsyncBaseTransport"),
        (restwell.Client, httpx.AsyncHTTPTransport(), "httpx.BaseTransport"),
        (restwell.Client, "http://proxy", "httpx.BaseTransport"),
    ],
)
def test_a_transport_of_the_wrong_kind_fails_at_construction(
    client_class: type[Any], transport: Any, expected: str
) -> None:
    with pytest.raises(
        TypeError, match=rf"^transport must be an {expected} for {client_class.__name__}, got "
    ):
        client_class("https://h", transport=transport)


@pytest.mark.anyio
async def test_a_mock_transport_serves_both_clients() -> None:
    api = httpx.MockTransport(lambda r: httpx.Response(204))
    with restwell.Client("https://h", transport=api) as client:
        assert client.get("/x").status_code == 204
    async with restwell.AsyncClient("https://h", transport=api) as async_client:
        assert (await async_client.get("/x")).status_code == 204
