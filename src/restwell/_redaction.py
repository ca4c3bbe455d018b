"""Redaction of secrets from URLs, headers, bodies and free text, before anything is shown.

One place decides what is secret, so that log lines, exception messages and reprs can never
disagree. The lists cover the credentials restwell itself sends (``Authorization``, the API-key
header and query names) and the usual names other APIs use for them. A :class:`Redactor` is a
frozen value: a client builds its own once, at construction (see ``redactor=``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from urllib.parse import parse_qsl, urlencode

import httpx

__all__ = [
    "BODY_EXCERPT_BYTES",
    "DEFAULT_REDACTOR",
    "REDACTED",
    "Redactor",
    "hide_wire_literals",
    "quote_url",
    "redacting_headers",
    "redacting_request",
    "url_error_detail",
]

REDACTED: Final = "[REDACTED]"
_WIRE_REFUSES: Final = re.compile(r"^[ \t]|[ \t]$|[\x00-\x08\x0a-\x1f\x7f]")
"""A header value h11 refuses to send (RFC 9110 §5.5): edge whitespace or a control."""

BODY_EXCERPT_BYTES: Final = 2048
"""How much of a request or response body a DEBUG record quotes."""

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
# Body fields: the query names (form bodies use the same names, e.g. RFC 6749's
# ``client_secret`` and ``refresh_token``) and the header names (APIs echo headers as JSON).
_SECRET_FIELDS: Final = _SECRET_QUERY | _SECRET_HEADERS


def _encoded_name(name: str) -> str:
    """A pattern for ``name`` raw or percent-encoded, as a URL or a form spells it.

    httpx writes ``auth[token]`` as ``auth%5Btoken%5D`` in the URL it logs; a space may be
    ``+`` or ``%20``. Hex digits match in either case (the patterns ignore case).
    """
    parts = []
    for char in name:
        if (char.isascii() and char.isalnum()) or char in "-._~":
            parts.append(re.escape(char))
        elif char == " ":
            parts.append(r"(?: |\+|%20)")
        else:
            escaped = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
            parts.append(f"(?:{re.escape(char)}|{escaped})")
    return "".join(parts)


@lru_cache(maxsize=64)
def _text_patterns(
    quoted: frozenset[str], unquoted: frozenset[str]
) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compile (once per set of names) the two patterns :meth:`Redactor.text` applies."""

    def alternation(names: frozenset[str], *, encoded: bool = False) -> str:
        # Longest first, so that "api_key" wins over a hypothetical "api".
        spell = _encoded_name if encoded else re.escape
        return "|".join(spell(name) for name in sorted(names, key=len, reverse=True))

    # A quoted name, a separator, a quoted value: JSON ("token": "v"), Python reprs of header
    # tuples as httpcore and hpack log them ((b'authorization', b'v') and b'cookie'=b'v').
    # Quotes may be escaped (JSON inside a JSON string: \"token\": \"v\"). A value cut off by
    # the end of a truncated excerpt is hidden too (the \Z branch).
    pair = re.compile(
        rf"""(?P<name>b?(?P<nq>\\?['"])(?:{alternation(quoted)})(?P=nq))\s*[,=:]\s*"""
        rf"""b?(?P<q>\\?['"])(?P<value>(?:(?!(?P=q))(?:\\.|.))*)(?:(?P=q)|\Z)""",
        re.IGNORECASE | re.DOTALL,
    )
    # name=value in query strings and form bodies; and user:password@ in URLs.
    param = re.compile(
        rf"""(?P<name>(?<![\w.-])(?:{alternation(unquoted, encoded=True)}))=(?P<value>[^&\s'"#]*)"""
        r"""|(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/@\s'"]+)@""",
        re.IGNORECASE,
    )
    return pair, param


def _hide_value(match: re.Match[str]) -> str:
    text = match.group(0)
    start, end = match.span("value")
    offset = match.start()
    return text[: start - offset] + REDACTED + text[end - offset :]


def _hide_param(match: re.Match[str]) -> str:
    if match.group("scheme") is not None:
        return f"{match.group('scheme')}{REDACTED}@"
    return f"{match.group('name')}={REDACTED}"


@dataclass(frozen=True, slots=True)
class Redactor:
    """Which header, query-parameter and body-field names hold secrets (case-insensitive).

    Every client has one (``redactor=``, default ``Redactor()``), extended with the names its
    auth uses (an ``APIKeyAuth`` header or query name). It hides secrets in log records,
    exception messages and reprs; the request that goes on the wire is never changed.

    Example:
        >>> r = Redactor().with_names(headers=["X-Session"], body_fields=["ssn"])
        >>> r.url("https://u:p@api.example.com/x?api_key=k&page=2")
        'https://[REDACTED]@api.example.com/x?api_key=%5BREDACTED%5D&page=2'
        >>> r.text('{"ssn": "078-05-1120", "name": "Ada"}')
        '{"ssn": "[REDACTED]", "name": "Ada"}'
    """

    headers: frozenset[str] = _SECRET_HEADERS
    query: frozenset[str] = _SECRET_QUERY
    body_fields: frozenset[str] = _SECRET_FIELDS

    def __post_init__(self) -> None:
        # Accept any iterable of names and store them lower case, so lookups stay O(1).
        for name in ("headers", "query", "body_fields"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise TypeError(f"Redactor {name} must be a collection of names, not {value!r}")
            names = frozenset(str(item).lower() for item in value)
            if any(not item for item in names):
                raise ValueError(f"Redactor {name} holds an empty name")
            object.__setattr__(self, name, names)

    def with_names(
        self,
        *,
        headers: Iterable[str] = (),
        query: Iterable[str] = (),
        body_fields: Iterable[str] = (),
    ) -> Redactor:
        """Return a redactor that also hides the given header, query and body-field names.

        Example:
            >>> "x-session" in Redactor().with_names(headers=["X-Session"]).headers
            True
        """
        headers, query, body_fields = list(headers), list(query), list(body_fields)
        if not (headers or query or body_fields):
            return self
        return Redactor(
            headers=self.headers | {name.lower() for name in headers},
            query=self.query | {name.lower() for name in query},
            body_fields=self.body_fields | {name.lower() for name in body_fields},
        )

    def covers(self, other: Redactor) -> bool:
        """Whether this redactor hides at least every name ``other`` hides.

        Example:
            >>> Redactor().with_names(query=["sig2"]).covers(Redactor())
            True
        """
        return (
            other.headers <= self.headers
            and other.query <= self.query
            and other.body_fields <= self.body_fields
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

        A value the wire refuses (edge whitespace, control characters) is hidden too,
        whatever its name: it is most often a credential pasted with a stray character.

        Example:
            >>> Redactor().header_items(httpx.Headers({"Authorization": "Bearer t"}))
            [('authorization', '[REDACTED]')]
            >>> Redactor().header_items(httpx.Headers({"X-Trace": "sk-1 "}))
            [('x-trace', '[REDACTED]')]
        """
        secret = self.headers
        refused = _WIRE_REFUSES.search
        return [
            (name, REDACTED if name in secret or refused(value) else value)
            for name, value in headers.multi_items()
        ]

    def text(self, text: str) -> str:
        """Hide secret values in free text: JSON fields, form fields, URLs, header reprs.

        Used for body excerpts and for other libraries' log lines (see
        :func:`restwell._logfilter.install_log_filter`). It works on truncated text too, as it
        matches ``"name": "value"`` and ``name=value`` pairs rather than parsing.

        Example:
            >>> Redactor().text("grant_type=refresh_token&refresh_token=r1&scope=read")
            'grant_type=refresh_token&refresh_token=[REDACTED]&scope=read'
            >>> Redactor().text("(b'authorization', b'Bearer t')")
            "(b'authorization', b'[REDACTED]')"
        """
        pair, param = _text_patterns(self.body_fields | self.headers, self.body_fields | self.query)
        return param.sub(_hide_param, pair.sub(_hide_value, text))

    def body(self, content: bytes, *, limit: int = BODY_EXCERPT_BYTES) -> str:
        """A redacted excerpt of at most ``limit`` bytes of a body, for DEBUG records.

        Example:
            >>> Redactor().body(b'{"password": "pw", "user": "ada"}')
            '{"password": "[REDACTED]", "user": "ada"}'
        """
        excerpt = content[:limit].decode("utf-8", "replace")
        more = len(content) - limit
        suffix = f"... ({more} more bytes)" if more > 0 else ""
        return self.text(excerpt) + suffix


DEFAULT_REDACTOR: Final = Redactor()


def quote_url(value: object, redactor: Redactor = DEFAULT_REDACTOR) -> str:
    """``repr`` of a URL for an error message, with its secrets hidden even if it is invalid.

    Example:
        >>> quote_url("https://u:pw@h:99x/?token=t")
        "'https://[REDACTED]@h:99x/?token=[REDACTED]'"
    """
    try:
        return repr(redactor.url(value if isinstance(value, httpx.URL) else str(value)))
    except httpx.InvalidURL:
        pass
    # It does not parse, so hide by position: everything between "//" and the last "@" of
    # the part before the query, then the query's secret names as free text does.
    text = str(value)
    end = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=len(text))
    start, at = text.find("//"), text.rfind("@", 0, end)
    if 0 <= start < at:
        text = f"{text[: start + 2]}{REDACTED}{text[at:]}"
    return repr(redactor.text(text))


_QUOTED: Final = re.compile(r"""[:,]?\s*(['"]).*?\1""")


def url_error_detail(exc: Exception) -> str:
    """The message of httpx's ``InvalidURL`` without the part of the URL it quotes.

    Example:
        >>> url_error_detail(httpx.InvalidURL("Invalid port: 'p@ss'"))
        'Invalid port'
    """
    return _QUOTED.sub("", str(exc)).strip() or type(exc).__name__


# A bytes literal in a transport library's message is raw wire data: h11 quotes a header
# value it refuses (``Illegal header value b'sk-... '``) and a response line it cannot parse
# (``bytearray(b'...')``). Either may be a credential, and no rule based on names can tell,
# so the literal goes whole.
_WIRE_LITERAL: Final = re.compile(
    r"""(?<![\w'"])(?P<array>bytearray\()?b(?P<q>\\?['"])(?:\\.|(?!(?P=q)).)*(?P=q)(?(array)\))""",
    re.DOTALL,
)


def hide_wire_literals(text: str) -> str:
    """``text`` with every bytes literal (raw wire data) replaced by the placeholder.

    For the messages of httpx's, httpcore's and h11's exceptions, which quote what they
    refused to send or could not parse.

    Example:
        >>> hide_wire_literals("Illegal header value b'sk-abc '")
        'Illegal header value [REDACTED]'
    """
    if "b'" not in text and 'b"' not in text:
        return text
    return _WIRE_LITERAL.sub(REDACTED, text)


class _RedactedHeaders(httpx.Headers):
    """httpx's headers, whose repr hides the values the redactor calls secret.

    httpx's own repr hides ``Authorization`` and ``Proxy-Authorization`` only; ``Cookie``,
    ``Set-Cookie`` and API-key headers would show.
    """

    _redactor: Redactor = DEFAULT_REDACTOR

    def __repr__(self) -> str:
        items = self._redactor.header_items(self)
        names = {name for name, _ in items}
        shown: object = dict(items) if len(names) == len(items) else items
        return f"Headers({shown!r})"


class _RedactedRequest(httpx.Request):
    """httpx's request, whose repr hides the URL's userinfo and secret query values."""

    _redactor: Redactor = DEFAULT_REDACTOR

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {self._redactor.url(self.url)!r})>"


def redacting_headers(headers: httpx.Headers, redactor: Redactor) -> httpx.Headers:
    """``headers`` (the same object) with a repr that hides what ``redactor`` hides.

    The object keeps its identity and behaviour; only its class changes, to a subclass of
    httpx's whose ``__repr__`` redacts.

    Example:
        >>> headers = redacting_headers(httpx.Headers({"X-API-Key": "k"}), Redactor())
        >>> headers
        Headers({'x-api-key': '[REDACTED]'})
        >>> headers["x-api-key"], isinstance(headers, httpx.Headers)
        ('k', True)
    """
    if type(headers) is httpx.Headers:
        headers.__class__ = _RedactedHeaders
    if isinstance(headers, _RedactedHeaders) and headers._redactor is not redactor:
        headers._redactor = redactor
    return headers


def redacting_request(request: httpx.Request, redactor: Redactor) -> httpx.Request:
    """``request`` (the same object) whose repr, and its headers', hide what ``redactor`` hides.

    Example:
        >>> redacting_request(httpx.Request("GET", "https://u:p@h/?token=t"), Redactor())
        <Request('GET', 'https://[REDACTED]@h/?token=%5BREDACTED%5D')>
    """
    if type(request) is httpx.Request:
        request.__class__ = _RedactedRequest
    if isinstance(request, _RedactedRequest) and request._redactor is not redactor:
        request._redactor = redactor
    redacting_headers(request.headers, redactor)
    return request
