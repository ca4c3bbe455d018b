"""Logging and redaction: restwell's records, other libraries' records, error messages."""

from __future__ import annotations

import logging

import httpx
import pytest

import restwell
from restwell._logfilter import FILTERED_LOGGERS, install_log_filter, secret_filter
from restwell._redaction import REDACTED, Redactor

FAST_RETRY = restwell.Retry(max_retries=1, backoff_factor=0.01, jitter=False)


def restwell_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "restwell" and r.levelno == level]


# -- the Redactor -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"token": "t1", "a": 1}', '{"token": "[REDACTED]", "a": 1}'),
        ('{"Password":"p w"}', '{"Password":"[REDACTED]"}'),
        ('{"token": "esc\\"aped", "b": "c"}', '{"token": "[REDACTED]", "b": "c"}'),
        ('{"refresh_token": "cut-off', '{"refresh_token": "[REDACTED]'),
        ('[["authorization", "Bearer t"]]', '[["authorization", "[REDACTED]"]]'),
        ("a=1&client_secret=s&b=2", "a=1&client_secret=[REDACTED]&b=2"),
        ("GET https://u:p@h/x?api_key=k", "GET https://[REDACTED]@h/x?api_key=[REDACTED]"),
        ("(b'set-cookie', b'id=s; Path=/')", "(b'set-cookie', b'[REDACTED]')"),
        ("Adding b'authorization'=b'Basic x' to", "Adding b'authorization'=b'[REDACTED]' to"),
        ("mytoken=x notatoken", "mytoken=x notatoken"),
        ("nothing secret here", "nothing secret here"),
        ('"body": "{\\"token\\": \\"t\\"}"', '"body": "{\\"token\\": \\"[REDACTED]\\"}"'),
    ],
)
def test_redactor_text(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


def test_redactor_names_and_validation() -> None:
    custom = Redactor().with_names(headers=["X-Session"], query=["Sig2"], body_fields=["SSN"])
    assert {"x-session", "sig2", "ssn"} <= custom.headers | custom.query | custom.body_fields
    assert custom.covers(Redactor())
    assert not Redactor().covers(custom)
    assert Redactor().with_names() == Redactor()
    assert custom.text('{"ssn": "1"} sig2=x') == '{"ssn": "[REDACTED]"} sig2=[REDACTED]'
    assert custom.url("https://h/?sig2=x") == "https://h/?sig2=%5BREDACTED%5D"
    assert Redactor(headers=["A"]).headers == frozenset({"a"})
    with pytest.raises(TypeError, match="headers"):
        Redactor(headers="authorization")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        Redactor(query=[""])
    assert Redactor().body(b"x" * 3000, limit=10) == "xxxxxxxxxx... (2990 more bytes)"
    with pytest.raises(TypeError, match="redactor"):
        restwell.Client(redactor={"x"})  # type: ignore[arg-type]


def test_log_filter_is_installed_once_and_grows() -> None:
    install_log_filter(Redactor())
    install_log_filter(Redactor().with_names(query=["only_in_this_test"]))
    for name in FILTERED_LOGGERS:
        assert logging.getLogger(name).filters.count(secret_filter) == 1
    assert "only_in_this_test" in secret_filter.redactor.query
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "%s", ("x?only_in_this_test=v",), None
    )
    assert secret_filter.filter(record)
    assert record.getMessage() == "x?only_in_this_test=[REDACTED]"
    broken = logging.LogRecord("httpx", logging.INFO, __file__, 1, "%d", ("nan",), None)
    assert secret_filter.filter(broken)  # left for the handler to report


# -- restwell's records, both clients against the real server -----------------------------


def check_debug_records(caplog: pytest.LogCaptureFixture, server: str) -> None:
    debug = restwell_records(caplog, logging.DEBUG)
    assert len(debug) == 1
    record = debug[0]
    text = record.getMessage()
    assert text.startswith(f"attempt 1: POST {server}/echo?api_key=%5BREDACTED%5D&page=2")
    assert f"x-api-key: {REDACTED}" in text
    assert f"authorization: {REDACTED}" not in text  # the request had none
    assert 'request body: {"password":"[REDACTED]"}' in text
    assert "-> HTTP/1.1 200 OK" in text
    assert '["x-api-key","[REDACTED]"]' in text  # the echoed headers in the response body
    assert record.method == "POST"  # type: ignore[attr-defined]
    assert record.status == 200  # type: ignore[attr-defined]
    assert record.attempt == 1  # type: ignore[attr-defined]
    assert ("x-api-key", REDACTED) in record.request_headers  # type: ignore[attr-defined]
    info = restwell_records(caplog, logging.INFO)
    assert len(info) == 1
    line = info[0].getMessage()
    assert line.startswith(f"POST {server}/echo?api_key=%5BREDACTED%5D&page=2 -> 200 OK in ")
    assert line.endswith(" ms")
    assert info[0].elapsed > 0  # type: ignore[attr-defined]
    assert "hunter2" not in caplog.text
    assert "key-123" not in caplog.text


def test_debug_and_info_records_sync(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with restwell.Client(server, api_key="key-123") as client:
        client.post("/echo", params={"api_key": "key-123", "page": 2}, json={"password": "hunter2"})
    check_debug_records(caplog, server)


@pytest.mark.anyio
async def test_debug_and_info_records_async(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with restwell.AsyncClient(server, api_key="key-123") as client:
        await client.post(
            "/echo", params={"api_key": "key-123", "page": 2}, json={"password": "hunter2"}
        )
    check_debug_records(caplog, server)


def test_warning_and_error_records(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with restwell.Client(server, retry=FAST_RETRY, token="tok-secret") as client:
        with pytest.raises(restwell.ServerError):
            client.get("/status/503", params={"token": "tok-secret"})
    warnings = restwell_records(caplog, logging.WARNING)
    errors = restwell_records(caplog, logging.ERROR)
    assert len(warnings) == 1
    assert "503 Service Unavailable" in warnings[0].getMessage()
    assert warnings[0].attempt == 1  # type: ignore[attr-defined]
    assert len(errors) == 1
    assert errors[0].status == 503  # type: ignore[attr-defined]
    assert errors[0].attempt == 2  # type: ignore[attr-defined]
    assert "tok-secret" not in caplog.text


def test_httpx_records_are_redacted(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # httpx at INFO, httpcore at DEBUG
    with restwell.Client(server, api_key="qk-secret-1", retry=False) as client:
        client.get("/echo", auth=restwell.APIKeyAuth("qk-secret-2", query="custom_key"))
        client.get("/cookies/set", params={"session": "x"}, cookies={"a": "b"})
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any(f"custom_key={REDACTED}" in line for line in httpx_lines)
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    assert "set-cookie', b'[REDACTED]'" in caplog.text
    assert "qk-secret" not in caplog.text


def test_nothing_is_formatted_when_logging_is_off(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    class Counting(Redactor):
        def url(self, url: httpx.URL | str) -> str:
            calls.append("url")
            return Redactor.url(self, url)

        def header_items(self, headers: httpx.Headers) -> list[tuple[str, str]]:
            calls.append("headers")
            return Redactor.header_items(self, headers)

    caplog.set_level(logging.CRITICAL, logger="restwell")
    with restwell.Client(server, redactor=Counting(), retry=FAST_RETRY) as client:
        client.get("/echo")
        client.get("/status/404", raise_for_status=False)
    assert calls == []
    caplog.set_level(logging.DEBUG, logger="restwell")
    with restwell.Client(server, redactor=Counting()) as client:
        client.get("/echo")
    assert "url" in calls
    assert "headers" in calls


def test_custom_redactor_on_client(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    redactor = Redactor().with_names(headers=["X-Session"], query=["sid"], body_fields=["ssn"])
    with restwell.Client(server, redactor=redactor) as client:
        with pytest.raises(restwell.BadRequestError) as info:
            client.post(
                "/status/400",
                params={"sid": "sid-secret"},
                headers={"X-Session": "hdr-secret"},
                json={"ssn": "ssn-secret"},
            )
    text = caplog.text + str(info.value) + repr(info.value) + repr(info.value.request)
    for secret in ("sid-secret", "hdr-secret", "ssn-secret"):
        assert secret not in text


def test_error_message_body_excerpt_is_redacted() -> None:
    mock = httpx.MockTransport(
        lambda r: httpx.Response(400, json={"error": "bad", "access_token": "echoed-secret"})
    )
    with restwell.Client("https://api.example.com", transport=mock) as client:
        with pytest.raises(restwell.BadRequestError) as raised:
            client.get("/x")
    assert "echoed-secret" not in str(raised.value)
    assert '"access_token":"[REDACTED]"' in str(raised.value)


def test_transport_error_detail_is_redacted() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ProxyError("proxy http://user:proxy-pw@proxy.local:3128 refused")

    with restwell.Client("https://api.example.com", transport=httpx.MockTransport(fail)) as c:
        with pytest.raises(restwell.ConnectionError) as info:
            c.get("/x", retry=False)
    assert "proxy-pw" not in str(info.value)
