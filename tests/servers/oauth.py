"""An OAuth 2.0 authorization server and protected resource for the tests (RFC 6749, 6750).

Each test registers its own client under a uuid ``key`` (`OAuthServer.register`), so tests
never share state. Endpoints (mounted by `TestApp`):

- ``POST /oauth/{key}/token``: the token endpoint. Grants ``client_credentials`` (client
  authenticated by HTTP Basic or by ``client_id``/``client_secret`` in the body, checked
  against the registration) and ``refresh_token`` (one of the refresh tokens it issued, or
  the registration's initial one; rotated on every use). Query ``expires_in`` (default
  3600) sets the lifetime, ``delay`` makes it slow (to pile up concurrent callers), ``fail``
  makes it answer that status with an RFC 6749 §5.2 error body (a failing token endpoint).
- ``GET /oauth/{key}/resource``: answers 200 with the token's number for a valid, unexpired
  access token, else 401 with ``WWW-Authenticate: Bearer error="invalid_token"``.
- ``POST /oauth/{key}/revoke``: invalidates every access token issued so far.

`OAuthServer.stats(key)` tells what happened: token requests, grants, client
authentication methods, scopes, resource requests and rejections.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus

import anyio

if TYPE_CHECKING:
    from .app import Request

__all__ = ["OAuthServer"]


@dataclass
class _Client:
    client_id: str
    client_secret: str
    token_prefix: str
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry
    issued: int = 0
    token_requests: int = 0
    grants: list[str] = field(default_factory=list)
    client_auth: list[str] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    resource_requests: int = 0
    rejected: int = 0


class OAuthServer:
    """State and handlers of the OAuth endpoints; thread-safe (several servers share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}

    def register(
        self,
        key: str,
        client_id: str,
        client_secret: str,
        *,
        refresh_token: str | None = None,
        token_prefix: str = "at",
    ) -> None:
        """Register a client under ``key`` (and an initial refresh token obtained elsewhere)."""
        client = _Client(client_id, client_secret, token_prefix)
        if refresh_token is not None:
            client.refresh_tokens.add(refresh_token)
        with self._lock:
            self._clients[key] = client

    def stats(self, key: str) -> dict[str, Any]:
        """What the endpoints saw for ``key``."""
        with self._lock:
            client = self._clients[key]
            return {
                "token_requests": client.token_requests,
                "grants": list(client.grants),
                "client_auth": list(client.client_auth),
                "forms": [dict(form) for form in client.forms],
                "resource_requests": client.resource_requests,
                "rejected": client.rejected,
                "issued": client.issued,
            }

    def _client(self, request: Request) -> _Client:
        from .app import HTTPException  # noqa: PLC0415 - app imports this module

        client = self._clients.get(request.params["key"])
        if client is None:
            raise HTTPException(404, "no such OAuth client registered")
        return client

    async def token(self, request: Request) -> None:

        form = dict(parse_qsl((await request.read_body()).decode("utf-8"), keep_blank_values=True))
        expires_in = request.query_int("expires_in", 3600)
        delay = request.query_float("delay", 0.0)
        with self._lock:
            client = self._client(request)
            client.token_requests += 1
            client.forms.append(form)
        if delay:
            await anyio.sleep(delay)
        fail = request.query_int("fail", 0)
        if fail:
            await request.send_json(
                {"error": "server_error", "error_description": "the token endpoint failed"}, fail
            )
            return
        error = self._check(request, client, form)
        if error is not None:
            status, code = error
            await request.send_json(
                {"error": code, "error_description": f"rejected: {code}"},
                status,
                headers=[("www-authenticate", 'Basic realm="oauth"')] if status == 401 else [],
            )
            return
        with self._lock:
            client.issued += 1
            number = client.issued
            access_token = f"{client.token_prefix}-{number}"
            client.access_tokens[access_token] = time.monotonic() + expires_in
            body: dict[str, Any] = {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": expires_in,
            }
            if form.get("grant_type") == "refresh_token":
                # Rotation (RFC 9700 §4.14.2): the used refresh token is spent.
                client.refresh_tokens.discard(form.get("refresh_token", ""))
                new_refresh = f"{client.token_prefix}-refresh-{number}"
                client.refresh_tokens.add(new_refresh)
                body["refresh_token"] = new_refresh
            if "scope" in form:
                body["scope"] = form["scope"]
        await request.send_json(body, headers=[("cache-control", "no-store")])

    def _check(
        self, request: Request, client: _Client, form: dict[str, str]
    ) -> tuple[int, str] | None:
        """Authenticate the client and validate the grant; ``(status, error)`` if refused."""
        method, client_id, secret = "none", form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = (request.header("authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return 401, "invalid_client"
            raw_id, _, raw_secret = decoded.partition(":")
            method, client_id, secret = "basic", unquote_plus(raw_id), unquote_plus(raw_secret)
        elif secret is not None:
            method = "post"
        with self._lock:
            client.client_auth.append(method)
            client.grants.append(form.get("grant_type", ""))
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if client_id != client.client_id or secret != client.client_secret:
                return 401, "invalid_client"
            return None
        if grant == "refresh_token":
            if client_id is not None and client_id != client.client_id:
                return 401, "invalid_client"
            if method != "none" and secret != client.client_secret:
                return 401, "invalid_client"
            with self._lock:
                if form.get("refresh_token") not in client.refresh_tokens:
                    return 400, "invalid_grant"
            return None
        return 400, "unsupported_grant_type"

    async def resource(self, request: Request) -> None:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        with self._lock:
            client = self._client(request)
            client.resource_requests += 1
            expiry = client.access_tokens.get(token) if scheme.lower() == "bearer" else None
            valid = expiry is not None and time.monotonic() < expiry
            if not valid:
                client.rejected += 1
        body = await request.read_body()
        if not valid:
            await request.send_json(
                {"error": "invalid_token"},
                401,
                headers=[("www-authenticate", 'Bearer error="invalid_token"')],
            )
            return
        await request.send_json(
            {"token_number": int(token.rsplit("-", 1)[1]), "body": body.decode("utf-8")}
        )

    def revoke_all(self, key: str) -> None:
        """Invalidate every access token issued to ``key`` so far (as ``POST .../revoke``)."""
        with self._lock:
            self._clients[key].access_tokens.clear()

    async def revoke(self, request: Request) -> None:
        await request.drain_body()
        self._client(request)  # 404 for an unknown key
        self.revoke_all(request.params["key"])
        await request.respond(204)
