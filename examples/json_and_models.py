"""JSON in and out: rich request bodies, responses by content type, pydantic models.

Run it with ``python examples/json_and_models.py``. It starts a small local API
(``http.server`` in a thread). With the ``pydantic`` extra installed it also validates
responses into models; without it, it shows the error that says what to install.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import enum
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import restwell

USERS = [
    {"id": 1, "name": "Ada Lovelace", "joined": "1843-07-10"},
    {"id": 2, "name": "Grace Hopper", "joined": "1952-05-01", "role": "admin"},
]


class API(BaseHTTPRequestHandler):
    """Answers JSON, text, a broken JSON body, and echoes what it is sent."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the output to restwell's story."""

    def send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/users":
            self.send(json.dumps(USERS).encode(), "application/json")
        elif self.path == "/users-broken":
            self.send(json.dumps([{"id": "one"}]).encode(), "application/json")
        elif self.path == "/motd":
            self.send("Grüße!".encode(), "text/plain; charset=utf-8")
        elif self.path == "/truncated":
            self.send(b'{"users": [', "application/json")
        else:
            self.send(b'{"error": "not found"}', "application/problem+json", 404)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send(body, "application/json", 201)


@contextmanager
def local_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), API)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Plan(enum.Enum):
    PRO = "pro"


@dataclasses.dataclass
class Invoice:
    id: uuid.UUID
    amount: decimal.Decimal
    due: datetime.date
    plan: Plan


def step(title: str) -> None:
    print(f"\n== {title}")


def requests_and_responses(client: restwell.Client) -> None:
    step("json= takes dataclasses, datetimes, UUIDs, Decimals and enums, nested anywhere")
    invoice = Invoice(
        uuid.UUID(int=42), decimal.Decimal("19.90"), datetime.date(2024, 7, 1), Plan.PRO
    )
    sent = client.post("/invoices", json={"invoices": [invoice]}).content
    print(sent.decode())

    step("A value that cannot be serialised fails before anything is sent, saying where")
    try:
        client.post("/invoices", json={"invoices": [{"tags": {"a", "b"}}]})
    except TypeError as exc:
        print(f"TypeError: {exc}")

    step("response.data decodes by content type")
    for path in ("/users", "/motd"):
        response = client.get(path)
        print(f"{path} ({response.headers['content-type']}) -> {type(response.data).__name__}")

    step("A body that is not JSON raises restwell.ValidationError, quoting its start")
    try:
        client.get("/truncated").json()
    except restwell.ValidationError as exc:
        print(f"ValidationError: {exc}")


def models(client: restwell.Client) -> None:
    try:
        import pydantic  # noqa: PLC0415 - the example runs with or without the extra
    except ImportError:
        step("Without pydantic, parse() says what to install")
        try:
            client.get("/users").parse(list)
        except ImportError as exc:
            print(f"ImportError: {exc}")
        return

    class User(pydantic.BaseModel):
        id: int
        name: str
        joined: datetime.date

    class Admin(User):
        role: str

    step("parse() validates into models, lists of them, unions, TypedDicts, dataclasses")
    users = client.get("/users").parse(list[Admin | User])
    for user in users:
        print(f"{type(user).__name__}: {user!r}")

    step("A body that does not match names the failing fields, not the body")
    try:
        client.get("/users-broken").parse(list[User])
    except restwell.ValidationError as exc:
        print(f"ValidationError: {exc}")
        print(f"  .errors[0]['loc'] = {exc.errors[0]['loc']}")

    step("Models are request bodies too")
    created = client.post("/users", json=users[0]).data
    print(f"sent {created}")


async def async_models(base_url: str) -> None:
    step("AsyncClient: the same, with await")
    async with restwell.AsyncClient(base_url) as client:
        response = await client.get("/users")
        print(f"{len(response.data)} users, first {response.data[0]['name']!r}")


def main() -> None:
    with local_api() as base_url:
        with restwell.Client(base_url) as client:
            requests_and_responses(client)
            models(client)
        asyncio.run(async_models(base_url))
    print("\nDone.")


if __name__ == "__main__":
    main()
