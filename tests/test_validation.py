"""Response bodies: ``data`` by content type, ``json()`` errors, ``parse()`` without pydantic.

These run in every session, with or without the extras; ``parse()`` with pydantic is tested
in ``test_parse.py``. The "install the extra" error is tested with pydantic made
unimportable, so it runs in the main session too.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest

import restwell
from restwell import Response


def response(body: bytes, content_type: str | None = "application/json") -> Response:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    raw = httpx.Response(200, content=body, headers=headers)
    return Response(raw, request_info=restwell.RequestInfo("GET", "https://h.example/x"))


# -- data ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"a": [1, 2.5]}', {"a": [1, 2.5]}),
        ("application/json; charset=utf-8", b"[true, null]", [True, None]),
        ("Application/JSON", b'"x"', "x"),
        ("application/problem+json", b'{"status": 409}', {"status": 409}),
        ("application/vnd.api+json; charset=utf-8", b'{"data": []}', {"data": []}),
        ("application/json", b"", None),
        ("application/hal+json", b"", None),
        ("text/plain; charset=utf-8", "Grüße".encode(), "Grüße"),
        ("text/html", b"<p>hi</p>", "<p>hi</p>"),
        ("text/csv; charset=latin-1", "a;é".encode("latin-1"), "a;é"),
        ("text/plain", b"", ""),
        ("application/octet-stream", b"\x00\x01", b"\x00\x01"),
        ("application/jsonl", b'{"a": 1}\n', b'{"a": 1}\n'),
        ("image/png", b"\x89PNG", b"\x89PNG"),
        (None, b'{"a": 1}', b'{"a": 1}'),
    ],
)
def test_data_by_content_type(content_type: str | None, body: bytes, expected: Any) -> None:
    data = response(body, content_type).data
    assert data == expected
    assert type(data) is type(expected)


def test_data_on_an_invalid_json_body_raises_validation_error() -> None:
    with pytest.raises(restwell.ValidationError, match="not valid JSON"):
        _ = response(b"{oops").data


# -- json() --------------------------------------------------------------------------------


def test_json_on_an_invalid_body_quotes_an_excerpt() -> None:
    bad = response(b'{"broken": ' + b"x" * 1000, "application/json")
    with pytest.raises(restwell.ValidationError) as caught:
        bad.json()
    error = caught.value
    assert not isinstance(error, ValueError)
    assert str(error).startswith("the response body is not valid JSON")
    assert '\'{"broken": xxx' in str(error)
    assert len(str(error)) < 400  # an excerpt, not the body
    assert error.response is bad
    assert error.request == restwell.RequestInfo("GET", "https://h.example/x")


def test_json_on_a_too_deeply_nested_body_is_a_validation_error() -> None:
    with pytest.raises(restwell.ValidationError, match="not valid JSON"):
        response(b"[" * 200_000).json()


def test_json_with_keyword_arguments_uses_the_standard_library() -> None:
    assert response(b'{"n": 1.5}').json(parse_float=str) == {"n": "1.5"}


# -- parse() without pydantic --------------------------------------------------------------


def test_parse_without_pydantic_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydantic", None)  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r'pip install "restwell\[pydantic\]"') as caught:
        response(b'{"id": 1}').parse(dict)
    assert caught.value.name == "pydantic"


def test_json_errors_of_a_hand_built_response_have_no_request() -> None:
    bare = Response(httpx.Response(200, content=b"{"))
    with pytest.raises(restwell.ValidationError) as caught:
        bare.json()
    assert caught.value.request is None
