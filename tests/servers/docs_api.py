"""The stand-in for ``https://api.example.com`` that the documentation's examples call.

`DocsAPI` answers the paths the README and the guide use, then falls back to `TestApp`'s
routes, then to a catch-all ``200`` that echoes the method and path (for example paths such as
``/health`` or ``/payments`` that only need a success).
"""

from __future__ import annotations

import json

from .app import Request, TestApp

CSV = b"".join(b"%d,user-%d\n" % (n, n) for n in range(2000))


class DocsAPI(TestApp):
    """`TestApp` plus the routes of the documentation's examples (matched first)."""

    __test__ = False

    def _install_routes(self) -> None:
        add = self.add_route
        add(r"/users/9", self.missing_user, {"GET"})
        add(r"/users/(?P<id>\d+)", self.user, {"GET"})
        add(r"/users", self.users, {"GET"})
        add(r"/(?:large-file|exports/.+|files/.+)", self.file, {"GET"})
        add(r"/(?:updates|feed)", self.events, {"GET"})
        add(r"/oauth/token", self.token, {"POST"})
        super()._install_routes()
        add(r"/.*", self.ok, None)  # last: anything else succeeds

    async def missing_user(self, request: Request) -> None:
        await request.send_json({"error": "no such user"}, 404)

    async def user(self, request: Request) -> None:
        await request.send_json({"id": int(request.params["id"]), "name": "John Doe"})

    async def users(self, request: Request) -> None:
        await request.send_json(
            [{"id": 1, "name": "Ada", "role": "admin"}, {"id": 2, "name": "Bob"}]
        )

    async def file(self, request: Request) -> None:
        await request.respond(200, CSV, content_type="text/csv")

    async def events(self, request: Request) -> None:
        # One stream of two events; the reconnection (with Last-Event-ID) gets 204: the end.
        if request.header("last-event-id") is not None:
            await request.respond(204)
            return
        body = b"".join(
            b"retry: 10\nid: %d\nevent: update\ndata: %s\n\n" % (n, json.dumps({"n": n}).encode())
            for n in (1, 2)
        )
        await request.respond(200, body, content_type="text/event-stream")

    async def token(self, request: Request) -> None:
        await request.drain_body()
        await request.send_json(
            {"access_token": "at-docs", "token_type": "Bearer", "expires_in": 3600}
        )

    async def ok(self, request: Request) -> None:
        await request.drain_body()
        await request.send_json({"ok": True, "method": request.method, "path": request.path})
