"""Every shape of credential, through every output, on both clients: the secret shows nowhere.

A matrix of credentials (API key in a header and in the query, also under a name that
percent-encodes; bearer token and token provider; Basic; URL userinfo; cookies; OAuth2 client
secret and refresh token), each in several shapes (plain, with the whitespace a ``.env`` file
leaves, with control characters), is sent to the real test server in success and failure
scenarios (4xx, 5xx, a status raised by hand, a closed port, a failing token endpoint, a header
the wire refuses). Where restwell refuses a credential (at construction or before sending),
its error must not quote it; where it accepts one, these must not show it: the error's
``str``/``repr``, its formatted traceback, every link of its ``__cause__``/``__context__``
chain, ``pickle.dumps(error)`` (searched as bytes, Basic also base64-encoded), the reprs of
client, auth, response, request and headers, and every log record (message and every
attribute, ``extra`` fields included) of ``restwell``, ``httpx`` and ``httpcore`` at DEBUG.
"""

from __future__ import annotations

import base64
import logging
import pickle
import socket
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import restwell
from servers import Request, TestApp

SECRET = "sk-SECRET-9f8e7d"

# name -> (prefix, suffix) around f"{SECRET}-{case}"
SHAPES: dict[str, tuple[str, str]] = {
    "plain": ("", ""),
    "trailing-space": ("", " "),
    "trailing-tab": ("", "\t"),
    "leading-space": (" ", ""),
    "inner-space": ("", " x"),
    "newline": ("", "\n"),
    "carriage-return": ("", "\r"),
    "nul": ("", "\x00"),
    "control": ("", "\x01"),
    "non-ascii": ("", "é"),
}
# Shapes h11 itself refuses in a header value (it lets other control characters through).
WIRE_REFUSED = ("trailing-space", "trailing-tab", "leading-space", "newline", "nul")

FAST = restwell.Retry(max_retries=1, backoff_factor=0.001, jitter=False)
LOGGERS = ("restwell", "httpx", "httpcore")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def basic_forms(user: str, password: str) -> set[bytes]:
    """How a Basic credential may show: its base64 token."""
    return {base64.b64encode(f"{user}:{password}".encode()), base64.b64encode(password.encode())}


# -- what is shown ----------------------------------------------------------------------------


def _chain(error: BaseException) -> Iterator[BaseException]:
    pending, seen = [error], set()
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending += [e for e in (link.__cause__, link.__context__) if e is not None]


def _shown_by_error(error: BaseException) -> tuple[list[tuple[str, str]], list[tuple[str, bytes]]]:
    texts = [
        ("str(error)", str(error)),
        ("repr(error)", repr(error)),
        ("traceback", "".join(traceback.format_exception(error))),
    ]
    for link in _chain(error):
        texts += [("chain str", str(link)), ("chain repr", repr(link))]
    blobs = [("pickle", pickle.dumps(error))]
    response = getattr(error, "response", None)
    if response is not None:
        copy = pickle.loads(blobs[0][1])
        # The pickle is redacted, not useless: the response still answers.
        assert copy.status_code == error.status_code  # type: ignore[attr-defined]
        assert copy.headers.get("content-type") == response.headers.get("content-type")
        assert copy.body is not None
        if "json" in response.headers.get("content-type", ""):
            assert copy.response.json() == copy.body
        for shown in (response, copy.response):
            texts += [
                ("repr(response)", repr(shown)),
                ("repr(response.headers)", repr(shown.headers)),
                ("repr(response.request)", repr(shown.request)),
                ("repr(response.request.headers)", repr(shown.request.headers)),
            ]
        texts.append(("repr(error.headers)", repr(error.headers)))  # type: ignore[attr-defined]
    return texts, blobs


def _shown_by_records(records: list[logging.LogRecord]) -> list[tuple[str, str]]:
    texts = []
    for record in records:
        where = f"log {record.name} {record.levelname}"
        texts.append((where, record.getMessage()))
        for key, value in record.__dict__.items():
            texts.append((f"{where} .{key}", f"{value!s} {value!r}"))
    return texts


@dataclass
class Exposure:
    """Collects everything shown in one scenario, then looks for the secret in it."""

    forms: set[bytes] = field(default_factory=lambda: {SECRET.encode()})
    texts: list[tuple[str, str]] = field(default_factory=list)
    blobs: list[tuple[str, bytes]] = field(default_factory=list)

    def error(self, error: BaseException) -> None:
        texts, blobs = _shown_by_error(error)
        self.texts += texts
        self.blobs += blobs

    def objects(self, *objects: object) -> None:
        self.texts += [(f"repr({type(obj).__name__})", repr(obj)) for obj in objects]

    def response(self, response: restwell.Response) -> None:
        self.objects(response, response.headers, response.request, response.request.headers)
        self.blobs.append(("pickle(response)", pickle.dumps(response)))

    def check(self, label: str, caplog: pytest.LogCaptureFixture) -> None:
        texts = self.texts + _shown_by_records(caplog.records) + [("caplog.text", caplog.text)]
        leaks = [
            f"{where}: {text[:300]!r}"
            for where, text in texts
            for form in self.forms
            if form.decode() in text
        ]
        leaks += [f"{where}" for where, blob in self.blobs for form in self.forms if form in blob]
        assert not leaks, f"{label}: the secret shows in {leaks[:3]}"
        caplog.clear()
        self.texts.clear()
        self.blobs.clear()


# -- the matrix -------------------------------------------------------------------------------


@dataclass
class Case:
    """How one kind of credential is given: to the client, to each request, or in the URL."""

    client: Callable[[str], dict[str, Any]] = lambda _: {}
    request: Callable[[str], dict[str, Any]] = lambda _: {}
    userinfo: bool = False
    basic_user: str | None = None


CASES: dict[str, Case] = {
    "api_key": Case(client=lambda v: {"api_key": v}),
    "api_key_header": Case(client=lambda v: {"auth": restwell.APIKeyAuth(v, header="X-Svc-Key")}),
    "client_header": Case(client=lambda v: {"headers": {"X-API-Key": v}}),
    "request_header": Case(request=lambda v: {"headers": {"Authorization": f"Token {v}"}}),
    "api_key_query": Case(client=lambda v: {"auth": restwell.APIKeyAuth(v, query="api_key")}),
    "encoded_query_name": Case(
        client=lambda v: {"auth": restwell.APIKeyAuth(v, query="auth[token]")}
    ),
    "spaced_query_name": Case(client=lambda v: {"auth": restwell.APIKeyAuth(v, query="my key")}),
    "request_param": Case(request=lambda v: {"params": {"access_token": v}}),
    "token": Case(client=lambda v: {"token": v}),
    "token_provider": Case(client=lambda v: {"auth": restwell.BearerAuth(lambda: v)}),
    "basic": Case(client=lambda v: {"auth": restwell.BasicAuth("user", v)}, basic_user="user"),
    "basic_tuple": Case(client=lambda v: {"auth": ("ada", v)}, basic_user="ada"),
    "userinfo": Case(userinfo=True, basic_user="user"),
    "client_cookie": Case(client=lambda v: {"cookies": {"session": v}}),
    "request_cookie": Case(request=lambda v: {"cookies": {"sid": v}}),
}


def auth_objects(case: Case, value: str) -> list[object]:
    """The auth objects a case builds (their reprs are checked; plain strings are not)."""
    return [obj for obj in case.client(value).values() if isinstance(obj, httpx.Auth)]


def credential(case: str, shape: str) -> str:
    prefix, suffix = SHAPES[shape]
    return f"{prefix}{SECRET}-{case}{suffix}"


@dataclass
class Step:
    """One scenario: a request, and whether it must fail."""

    label: str
    url: str
    fails: bool
    kwargs: dict[str, Any] = field(default_factory=dict)
    by_hand: bool = False


def steps(server: str, case: Case, value: str) -> list[Step]:
    host = server.removeprefix("http://")
    base = f"http://user:{value}@{host}" if case.userinfo else ""
    closed = f"http://{'user:' + value + '@' if case.userinfo else ''}127.0.0.1:{closed_port()}"
    extra = case.request(value)
    return [
        Step("200 echo", f"{base}/echo", False, extra),
        Step("401", f"{base}/status/401", True, extra),
        Step("500 retried", f"{base}/status/500", True, extra),
        Step("400 echoing the request", f"{base}/matrix/echo/400", True, extra),
        Step(
            "400 raised by hand",
            f"{base}/matrix/echo/400",
            True,
            {**extra, "raise_for_status": False},
            by_hand=True,
        ),
        Step("connection refused", f"{closed}/x", True, extra),
    ]


@pytest.fixture(scope="module", autouse=True)
def echo_with_status(server_app: TestApp) -> None:
    """``ANY /matrix/echo/{code}``: the request as JSON (headers, query) with that status."""

    async def handler(request: Request) -> None:
        await request.send_json(
            {
                "query": [list(pair) for pair in request.query],
                "headers": [list(pair) for pair in request.headers],
            },
            int(request.params["code"]),
            headers=[("set-cookie", f"session={SECRET}-set-cookie; Path=/")],
        )

    server_app.add_route(r"/matrix/echo/(?P<code>\d+)", handler, None)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _client_options(case: Case, value: str) -> dict[str, Any]:
    return {"retry": FAST, **case.client(value)}


def _outcome(step: Step, error: BaseException | None, exposure: Exposure) -> None:
    if error is not None:
        exposure.error(error)
    elif step.fails:
        pytest.fail(f"{step.label} did not fail")


def _run_sync(client: restwell.Client, step: Step, exposure: Exposure) -> None:
    error: BaseException | None = None
    try:
        response = client.get(step.url, **step.kwargs)
        exposure.response(response)
        if step.by_hand:
            response.raise_for_status()
    except (restwell.ClientError, ValueError) as exc:
        error = exc
    _outcome(step, error, exposure)


async def _run_async(client: restwell.AsyncClient, step: Step, exposure: Exposure) -> None:
    error: BaseException | None = None
    try:
        response = await client.get(step.url, **step.kwargs)
        exposure.response(response)
        if step.by_hand:
            response.raise_for_status()
    except (restwell.ClientError, ValueError) as exc:
        error = exc
    _outcome(step, error, exposure)


def _exposure(case: Case, value: str) -> Exposure:
    exposure = Exposure()
    if case.basic_user is not None:
        exposure.forms |= basic_forms(case.basic_user, value)
    return exposure


def _refused(error: BaseException, label: str, exposure: Exposure, caplog: Any) -> None:
    exposure.error(error)
    exposure.check(f"{label} (refused)", caplog)


@pytest.mark.parametrize("case_name", list(CASES))
def test_matrix_sync(server: str, debug_logs: pytest.LogCaptureFixture, case_name: str) -> None:
    case = CASES[case_name]
    accepted = 0
    for shape in SHAPES:
        value = credential(case_name, shape)
        exposure = _exposure(case, value)
        label = f"{case_name}/{shape}"
        try:
            client = restwell.Client(server, **_client_options(case, value))
        except (ValueError, TypeError) as exc:
            _refused(exc, label, exposure, debug_logs)
            continue
        accepted += 1
        with client:
            exposure.objects(client, client.headers, *auth_objects(case, value))
            for step in steps(server, case, value):
                _run_sync(client, step, exposure)
                exposure.check(f"{label}: {step.label}", debug_logs)
    assert accepted  # the plain shape at least went through every scenario


@pytest.mark.anyio
@pytest.mark.parametrize("case_name", list(CASES))
async def test_matrix_async(
    server: str, debug_logs: pytest.LogCaptureFixture, case_name: str
) -> None:
    case = CASES[case_name]
    accepted = 0
    for shape in SHAPES:
        value = credential(case_name, shape)
        exposure = _exposure(case, value)
        label = f"{case_name}/{shape}"
        try:
            client = restwell.AsyncClient(server, **_client_options(case, value))
        except (ValueError, TypeError) as exc:
            _refused(exc, label, exposure, debug_logs)
            continue
        accepted += 1
        async with client:
            exposure.objects(client, client.headers, *auth_objects(case, value))
            for step in steps(server, case, value):
                await _run_async(client, step, exposure)
                exposure.check(f"{label}: {step.label}", debug_logs)
    assert accepted


# -- a header the wire refuses ------------------------------------------------------------------


def _smuggle(name: str, value: str) -> Callable[[httpx.Request], httpx.Request]:
    """An auth callable: adds a header after restwell checked the request (h11 will refuse)."""

    def auth(request: httpx.Request) -> httpx.Request:
        request.headers[name] = value
        return request

    return auth


@pytest.mark.parametrize("shape", WIRE_REFUSED)
@pytest.mark.parametrize("header", ["X-API-Key", "X-Trace"])  # a secret name, and not
def test_header_refused_by_the_wire_sync(
    server: str, debug_logs: pytest.LogCaptureFixture, shape: str, header: str
) -> None:
    value = credential("wire", shape)
    exposure = Exposure()
    with restwell.Client(server, retry=FAST, auth=_smuggle(header, value)) as client:
        with pytest.raises(restwell.ClientError) as info:
            client.get("/echo")
    assert "LocalProtocolError" in str(info.value)
    assert info.value.attempts == 1  # a mistake made here is not retried
    exposure.error(info.value)
    exposure.check(f"wire/{header}/{shape}", debug_logs)


@pytest.mark.anyio
@pytest.mark.parametrize("shape", WIRE_REFUSED)
@pytest.mark.parametrize("header", ["X-API-Key", "X-Trace"])
async def test_header_refused_by_the_wire_async(
    server: str, debug_logs: pytest.LogCaptureFixture, shape: str, header: str
) -> None:
    value = credential("wire", shape)
    exposure = Exposure()
    async with restwell.AsyncClient(server, retry=FAST, auth=_smuggle(header, value)) as client:
        with pytest.raises(restwell.ClientError) as info:
            await client.get("/echo")
    assert "LocalProtocolError" in str(info.value)
    assert info.value.attempts == 1
    exposure.error(info.value)
    exposure.check(f"wire/{header}/{shape}", debug_logs)


# -- OAuth2: the client secret and the refresh token ---------------------------------------------

OAUTH_SHAPES = ("plain", "trailing-space", "inner-space", "newline", "non-ascii")


def _oauth_auths(oauth: str, secret: str, refresh: str, *, fail: int | None) -> list[Any]:
    url = f"{oauth}/token" + (f"?fail={fail}" if fail else "")
    return [
        restwell.OAuth2ClientCredentials(url, "client-app", secret),
        restwell.OAuth2ClientCredentials(url, "client-app", secret, client_auth="post"),
        restwell.OAuth2RefreshToken(
            url, refresh, client_id="client-app", client_secret=secret, access_token=None
        ),
    ]


def _oauth_setup(server_app: TestApp, server: str, shape: str) -> tuple[str, str, str, str]:
    prefix, suffix = SHAPES[shape]
    secret = f"{prefix}{SECRET}-client-secret{suffix}"
    refresh = f"{prefix}{SECRET}-refresh{suffix}"
    key = uuid.uuid4().hex
    server_app.oauth.register(
        key, "client-app", secret, refresh_token=refresh, token_prefix=f"{SECRET}-access"
    )
    wrong = uuid.uuid4().hex  # registered with another secret: invalid_client (401)
    server_app.oauth.register(wrong, "client-app", "another-secret", token_prefix="at")
    return secret, refresh, f"{server}/oauth/{key}", f"{server}/oauth/{wrong}"


def _oauth_plan(oauth: str, wrong: str, secret: str, refresh: str) -> list[tuple[str, Any, bool]]:
    """(label, (server, auth), must fail) for each grant: success, 400, 500 and 401."""
    plan: list[tuple[str, Any, bool]] = []
    for where, fail in ((oauth, None), (oauth, 400), (oauth, 500), (wrong, None)):
        for index, auth in enumerate(_oauth_auths(where, secret, refresh, fail=fail)):
            status = fail or (401 if where == wrong else 200)
            plan.append((f"{status}-{index}", (where, auth), status != 200))
    return plan


@pytest.mark.parametrize("shape", OAUTH_SHAPES)
def test_oauth2_secrets_sync(
    server_app: TestApp, server: str, debug_logs: pytest.LogCaptureFixture, shape: str
) -> None:
    secret, refresh, oauth, wrong = _oauth_setup(server_app, server, shape)
    exposure = Exposure()
    exposure.forms |= basic_forms("client-app", secret)
    try:
        plan = _oauth_plan(oauth, wrong, secret, refresh)
    except ValueError as exc:
        _refused(exc, f"oauth/{shape}", exposure, debug_logs)
        assert shape != "plain"
        return
    with restwell.Client(server, retry=FAST) as client:
        for label, (where, auth), fails in plan:
            exposure.objects(auth)
            _run_sync(client, Step(label, f"{where}/resource", fails, {"auth": auth}), exposure)
            exposure.check(f"oauth/{shape}/{label}", debug_logs)


@pytest.mark.anyio
@pytest.mark.parametrize("shape", OAUTH_SHAPES)
async def test_oauth2_secrets_async(
    server_app: TestApp, server: str, debug_logs: pytest.LogCaptureFixture, shape: str
) -> None:
    secret, refresh, oauth, wrong = _oauth_setup(server_app, server, shape)
    exposure = Exposure()
    exposure.forms |= basic_forms("client-app", secret)
    try:
        plan = _oauth_plan(oauth, wrong, secret, refresh)
    except ValueError as exc:
        _refused(exc, f"oauth/{shape}", exposure, debug_logs)
        assert shape != "plain"
        return
    async with restwell.AsyncClient(server, retry=FAST) as client:
        for label, (where, auth), fails in plan:
            exposure.objects(auth)
            step = Step(label, f"{where}/resource", fails, {"auth": auth})
            await _run_async(client, step, exposure)
            exposure.check(f"oauth/{shape}/{label}", debug_logs)
