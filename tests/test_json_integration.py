"""JSON bodies and validation on both clients, against the real test server.

Every test runs with each JSON backend the session has (the standard library always,
orjson when its extra is installed) and on ``Client`` and ``AsyncClient`` (asyncio and trio).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from typing import Any

import pytest

import restwell
from restwell._serialization import stdlib_dumps, stdlib_loads
from servers import Request, TestApp

ROUTES_ADDED = "_json_integration_routes"
USERS = [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace", "role": "admin"}]
BIG_ID = 2**64 + 1  # beyond orjson's 64-bit integers: decoded by the standard library


@pytest.fixture(scope="module")
def api(server_app: TestApp, server: str) -> str:
    """The server's base URL, with this module's routes registered (once per session)."""
    if not getattr(server_app, ROUTES_ADDED, False):
        setattr(server_app, ROUTES_ADDED, True)

        async def users(request: Request) -> None:
            body: list[dict[str, Any]] = [dict(user) for user in USERS]
            if request.query_value("bad") is not None:
                body[1]["id"] = "two"
                del body[1]["name"]
            await request.send_json(body)

        async def typed(request: Request) -> None:
            # Any body under any Content-Type: /v6/typed?type=...&body=...
            content_type = request.query_value("type")
            headers = [("content-type", content_type)] if content_type else []
            body = (request.query_value("body") or "").encode("utf-8")
            await request.respond(200, body, headers=headers)

        async def big(request: Request) -> None:
            items = [{"id": BIG_ID + i, "score": i / 7, "name": f"user {i}"} for i in range(2000)]
            await request.send_json({"items": items})

        server_app.add_route(r"/v6/users", users)
        server_app.add_route(r"/v6/typed", typed)
        server_app.add_route(r"/v6/big", big)
    return server


@pytest.fixture(params=["stdlib", "default"])
def json_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Client options choosing a JSON backend: the standard library, or the automatic one."""
    if request.param == "stdlib":
        return {"json_dumps": stdlib_dumps, "json_loads": stdlib_loads}
    pytest.importorskip("orjson", reason="the orjson extra is not installed in this session")
    return {}


class Status(enum.Enum):
    ACTIVE = "active"


@dataclasses.dataclass
class Payment:
    amount: decimal.Decimal
    due: datetime.date
    status: Status


REQUEST_BODY = {
    "id": uuid.UUID(int=7),
    "at": datetime.datetime(2024, 6, 1, 9, 30, tzinfo=datetime.timezone.utc),
    "payments": [Payment(decimal.Decimal("19.99"), datetime.date(2024, 7, 1), Status.ACTIVE)],
    "name": "Zoë",
    "missing": None,
}
SENT_BODY = {
    "id": "00000000-0000-0000-0000-000000000007",
    "at": "2024-06-01T09:30:00+00:00",
    "payments": [{"amount": "19.99", "due": "2024-07-01", "status": "active"}],
    "name": "Zoë",
    "missing": None,
}


def check_types_by_content_type(get: Any) -> None:
    """Shared by the sync and async tests: ``get(path, **params)`` returns ``.data``."""
    assert get("/json")["nested"] == {"name": "Zoë", "tags": ["a", "b"]}
    assert get("/problem+json")["status"] == 200
    assert get("/json-empty") is None
    assert get("/text").startswith("Grüße aus Köln")
    assert get("/html").startswith("<!doctype html>")
    assert get("/bytes/5") == b"\x00\x01\x02\x03\x04"
    vendor = {"type": "application/vnd.api+json; charset=utf-8", "body": '{"data": [1]}'}
    assert get("/v6/typed", **vendor) == {"data": [1]}
    assert get("/v6/typed", type="text/csv", body="a,b") == "a,b"
    assert get("/v6/typed", body='{"a": 1}') == b'{"a": 1}'


# -- requests ---------------------------------------------------------------------------


def test_json_bodies_with_extended_types_sync(api: str, json_options: dict[str, Any]) -> None:
    with restwell.Client(api, **json_options) as client:
        echoed = client.post("/echo", json=REQUEST_BODY).json()
    assert json.loads(echoed["body"]) == SENT_BODY
    assert ["content-type", "application/json"] in echoed["headers"]


@pytest.mark.anyio
async def test_json_bodies_with_extended_types_async(
    api: str, json_options: dict[str, Any]
) -> None:
    async with restwell.AsyncClient(api, **json_options) as client:
        echoed = (await client.put("/echo", json=[REQUEST_BODY])).json()
    assert json.loads(echoed["body"]) == [SENT_BODY]


def test_json_bodies_with_pydantic_models(api: str, json_options: dict[str, Any]) -> None:
    pydantic = pytest.importorskip("pydantic", reason="the pydantic extra is not installed")

    class NewUser(pydantic.BaseModel):
        name: str
        joined: datetime.date

    with restwell.Client(api, **json_options) as client:
        created = client.post("/users", json=NewUser(name="Ada", joined=datetime.date(1843, 1, 1)))
    assert created.status_code == 201
    assert created.data == {"name": "Ada", "joined": "1843-01-01", "id": 101}


def test_unserialisable_body_fails_before_any_io_sync(
    api: str, json_options: dict[str, Any]
) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(api, **json_options) as client:
        with pytest.raises(TypeError, match=r"json\['tags'\]\[1\].*type set"):
            client.post(f"/flaky/{key}", json={"tags": ["ok", {"no"}]}, idempotency_key=True)
        with pytest.raises(TypeError, match=r"json\['score'\].*nan"):
            client.put(f"/flaky/{key}", json={"score": float("nan")})
        assert client.get(f"/attempts/{key}").json()["attempts"] == 0


@pytest.mark.anyio
async def test_unserialisable_body_fails_before_any_io_async(
    api: str, json_options: dict[str, Any]
) -> None:
    key = uuid.uuid4().hex
    async with restwell.AsyncClient(api, **json_options) as client:
        with pytest.raises(TypeError, match=r"json\[0\]\['at'\].*type timedelta"):
            await client.post(f"/flaky/{key}", json=[{"at": datetime.timedelta(seconds=1)}])
        assert (await client.get(f"/attempts/{key}")).json()["attempts"] == 0


# -- responses ---------------------------------------------------------------------------


def test_data_by_content_type_sync(api: str, json_options: dict[str, Any]) -> None:
    with restwell.Client(api, **json_options) as client:
        check_types_by_content_type(lambda path, **params: client.get(path, params=params).data)


@pytest.mark.anyio
async def test_data_by_content_type_async(api: str, json_options: dict[str, Any]) -> None:
    async with restwell.AsyncClient(api, **json_options) as client:
        responses: dict[tuple[str, str], Any] = {}
        paths = [
            ("/json", {}), ("/problem+json", {}), ("/json-empty", {}), ("/text", {}),
            ("/html", {}), ("/bytes/5", {}),
            ("/v6/typed", {"type": "application/vnd.api+json; charset=utf-8",
                           "body": '{"data": [1]}'}),
            ("/v6/typed", {"type": "text/csv", "body": "a,b"}),
            ("/v6/typed", {"body": '{"a": 1}'}),
        ]  # fmt: skip
        for path, params in paths:
            response = await client.get(path, params=params)
            responses[path, json.dumps(params)] = response.data
    check_types_by_content_type(lambda path, **params: responses[path, json.dumps(params)])


def test_invalid_json_is_a_validation_error_sync(api: str, json_options: dict[str, Any]) -> None:
    with restwell.Client(api, **json_options) as client:
        response = client.get("/json-invalid")
        for read in (response.json, lambda: response.data):
            with pytest.raises(restwell.ValidationError, match=r"not valid JSON.*'\{\"broken\": '"):
                read()
        with pytest.raises(restwell.ValidationError) as caught:
            response.json()
    assert caught.value.request == restwell.RequestInfo("GET", f"{api}/json-invalid")


@pytest.mark.anyio
async def test_invalid_json_is_a_validation_error_async(
    api: str, json_options: dict[str, Any]
) -> None:
    async with restwell.AsyncClient(api, **json_options) as client:
        response = await client.get("/json-invalid")
    with pytest.raises(restwell.ValidationError, match="not valid JSON") as caught:
        response.json()
    assert caught.value.response is response


def test_large_bodies_decode_exactly_sync(api: str, json_options: dict[str, Any]) -> None:
    with restwell.Client(api, **json_options) as client:
        items = client.get("/v6/big").data["items"]
    assert len(items) == 2000
    assert items[5] == {"id": BIG_ID + 5, "score": 5 / 7, "name": "user 5"}
    assert type(items[0]["id"]) is int


@pytest.mark.anyio
async def test_large_bodies_decode_exactly_async(api: str, json_options: dict[str, Any]) -> None:
    async with restwell.AsyncClient(api, **json_options) as client:
        items = (await client.get("/v6/big")).json()["items"]
    assert items[-1]["id"] == BIG_ID + 1999


# -- parse() -------------------------------------------------------------------------------


def models() -> tuple[Any, Any]:
    pydantic = pytest.importorskip("pydantic", reason="the pydantic extra is not installed")

    class User(pydantic.BaseModel):
        id: int
        name: str

    class Admin(User):
        role: str

    return User, Admin


def test_parse_sync(api: str, json_options: dict[str, Any]) -> None:
    user_type, admin_type = models()
    with restwell.Client(api, **json_options) as client:
        user = client.get("/users/12").parse(user_type)
        assert user == user_type(id=12, name="User 12")
        users = client.get("/v6/users").parse(list[admin_type | user_type])
        assert [type(u) for u in users] == [user_type, admin_type]
        with pytest.raises(restwell.ValidationError) as caught:
            client.get("/v6/users", params={"bad": "1"}).parse(list[user_type])
    message = str(caught.value)
    assert "[1].id: Input should be a valid integer" in message
    assert "[1].name: Field required" in message
    assert "two" not in message  # the failing value is not quoted
    assert caught.value.request == restwell.RequestInfo("GET", f"{api}/v6/users?bad=1")


@pytest.mark.anyio
async def test_parse_async(api: str, json_options: dict[str, Any]) -> None:
    user_type, _ = models()
    async with restwell.AsyncClient(api, **json_options) as client:
        users = (await client.get("/v6/users")).parse(list[user_type])
        assert [u.name for u in users] == ["Ada", "Grace"]
        response = await client.get("/json-invalid")
    with pytest.raises(restwell.ValidationError, match="not valid JSON"):
        response.parse(user_type)


def test_parse_of_an_error_body(api: str) -> None:
    user_type, _ = models()
    with restwell.Client(api) as client:
        with pytest.raises(restwell.NotFoundError) as caught:
            client.get("/users/9999")
        with pytest.raises(restwell.ValidationError, match="does not match User"):
            caught.value.response.parse(user_type)


def test_validation_errors_hide_the_clients_secrets(api: str) -> None:
    auth = restwell.APIKeyAuth("s3cr3t-key", query="zz_key")
    with restwell.Client(api, auth=auth) as client:
        response = client.get("/json-invalid")
    with pytest.raises(restwell.ValidationError) as caught:
        response.json()
    assert caught.value.request is not None
    assert "s3cr3t" not in caught.value.request.url
    assert caught.value.request.url.startswith(f"{api}/json-invalid?zz_key=")
