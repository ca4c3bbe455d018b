"""Redaction of secrets from URLs and headers, before anything is logged, raised or shown.

One place decides what is secret, so that log lines, exception messages and reprs can never
disagree. The lists cover the credentials restwell itself sends (``Authorization``, the API-key
header and query names) and the usual names other APIs use for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode

import httpx

__all__ = ["DEFAULT_REDACTOR", "REDACTED", "Redactor"]

REDACTED: Final = "[REDACTED]"

_SECRET_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
    }
)
_SECRET_QUERY: Final = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "client_secret",
        "password",
        "secret",
        "signature",
        "sig",
    }
)


@dataclass(frozen=True, slots=True)
class Redactor:
    """Which header and query-parameter names hold secrets (matched case-insensitively).

    Example:
        >>> r = Redactor().with_names(headers=["X-Session"])
        >>> r.url("https://u:p@api.example.com/x?api_key=k&page=2")
        'https://[REDACTED]@api.example.com/x?api_key=%5BREDACTED%5D&page=2'
    """

    headers: frozenset[str] = _SECRET_HEADERS
    query: frozenset[str] = _SECRET_QUERY

    def with_names(self, *, headers: Iterable[str] = (), query: Iterable[str] = ()) -> Redactor:
        """Return a redactor that also hides the given header and query-parameter names.

        Example:
            >>> "x-session" in Redactor().with_names(headers=["X-Session"]).headers
            True
        """
        return Redactor(
            headers=self.headers | {name.lower() for name in headers},
            query=self.query | {name.lower() for name in query},
        )

    def url(self, url: httpx.URL | str) -> str:
        """Return ``url`` as text with its userinfo and secret query values hidden.

        Example:
            >>> Redactor().url("https://api.example.com/?token=t")
            'https://api.example.com/?token=%5BREDACTED%5D'
        """
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        if parsed.userinfo:
            parsed = parsed.copy_with(username=REDACTED, password=None)
        query = parsed.query
        if query:
            pairs = parse_qsl(query.decode("ascii", "replace"), keep_blank_values=True)
            if any(key.lower() in self.query for key, _ in pairs):
                hidden = [
                    (key, REDACTED if key.lower() in self.query else value) for key, value in pairs
                ]
                parsed = parsed.copy_with(query=urlencode(hidden).encode("ascii"))
        text = str(parsed)
        # httpx percent-encodes the placeholder inside userinfo; show it plainly.
        return text.replace("%5BREDACTED%5D@", f"{REDACTED}@", 1)

    def header_items(self, headers: httpx.Headers) -> list[tuple[str, str]]:
        """Return the headers as ``(name, value)`` pairs with secret values hidden.

        Example:
            >>> Redactor().header_items(httpx.Headers({"Authorization": "Bearer t"}))
            [('authorization', '[REDACTED]')]
        """
        secret = self.headers
        return [
            (name, REDACTED if name in secret else value) for name, value in headers.multi_items()
        ]


DEFAULT_REDACTOR: Final = Redactor()
