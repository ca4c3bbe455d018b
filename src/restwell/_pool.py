"""The connection pools restwell drives: httpx's clients, with restwell's middleware inside.

Every exchange on the wire (each attempt, each redirect hop, each request of an auth flow)
goes through httpx's ``_send_single_request``. The pools override it to run the call's
middleware chain around it (see :mod:`restwell._middleware`): the one place that sees them
all, so middleware is written once and neither send loop has a branch for it. While it runs,
httpx's own per-request INFO line is demoted to DEBUG (restwell's observer logs the call).


httpx strips only ``Authorization`` when a redirect leaves the origin; an API key in
``X-API-Key`` (or any header the client's redactor calls secret) would follow the redirect
to the other host. These subclasses strip every secret header on a cross-origin hop.
Overriding httpx's ``_redirect_headers`` hook is the smallest change that keeps httpx's own
redirect handling (history, cookies, method changes) intact; httpx is pinned below 1.0.

A request an auth flow makes for itself (an OAuth2 token request, marked with the
:data:`TOKEN_REQUEST` extension) never follows a redirect, whatever the call's
``follow_redirects``: httpx drives an auth flow's requests through the same redirect loop as
the API request, and a redirect would re-post the client secret to wherever it points.
"""

from __future__ import annotations

import threading
from collections.abc import Set
from typing import Any

import httpx

from ._logfilter import SENDING
from ._middleware import CALL_EXTENSION, adrive, drive, run_chain
from ._redaction import DEFAULT_REDACTOR

__all__ = ["TOKEN_REQUEST", "AsyncPool", "Pool"]

TOKEN_REQUEST = "restwell.token_request"  # noqa: S105 - an extension's name, not a secret
"""Request extension marking an auth flow's own request to an identity provider."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAMES_LOCK = threading.Lock()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


class _StripSecretsOnRedirect:
    #: Lower-case header names dropped on a cross-origin redirect; each client sharing the
    #: pool adds its redactor's names at construction.
    secret_headers: frozenset[str] = DEFAULT_REDACTOR.headers

    def add_secret_headers(self, names: Set[str]) -> None:
        """Also strip ``names`` (lower-case) on cross-origin redirects from now on."""
        if names <= self.secret_headers:  # the common case: nothing new, no lock
            return
        with _NAMES_LOCK:
            self.secret_headers = self.secret_headers | names

    def _redirect_headers(self, request: httpx.Request, url: httpx.URL, method: str) -> Any:
        headers = super()._redirect_headers(request, url, method)  # type: ignore[misc]
        if _origin(url) != _origin(request.url):
            for name in self.secret_headers:
                headers.pop(name, None)
        return headers

    def _send_handling_redirects(
        self, request: httpx.Request, follow_redirects: bool, history: list[httpx.Response]
    ) -> Any:
        # Sync or async alike: the async parent returns a coroutine, awaited by the caller.
        if request.extensions.get(TOKEN_REQUEST):
            follow_redirects = False
        return super()._send_handling_redirects(  # type: ignore[misc]
            request, follow_redirects=follow_redirects, history=history
        )


class Pool(_StripSecretsOnRedirect, httpx.Client):
    """``httpx.Client`` that runs middleware and drops secret headers on redirects."""

    def _send_single_request(self, request: httpx.Request) -> httpx.Response:
        token = SENDING.set(True)
        try:
            call = request.extensions.get(CALL_EXTENSION)
            if call is None or not call.middleware:
                return super()._send_single_request(request)
            flow = run_chain(call.middleware, request, call.context)
            return drive(flow, super()._send_single_request)
        finally:
            SENDING.reset(token)


class AsyncPool(_StripSecretsOnRedirect, httpx.AsyncClient):
    """``httpx.AsyncClient`` that runs middleware and drops secret headers on redirects."""

    async def _send_single_request(self, request: httpx.Request) -> httpx.Response:
        token = SENDING.set(True)
        try:
            call = request.extensions.get(CALL_EXTENSION)
            if call is None or not call.middleware:
                return await super()._send_single_request(request)
            flow = run_chain(call.middleware, request, call.context)
            return await adrive(flow, super()._send_single_request)
        finally:
            SENDING.reset(token)
