"""The API's JSON parsing limits (hub/web/http.py): nesting depth checked
before parsing, strings skipped whole, never a RecursionError."""
import json

import pytest

from hub.web.http import MAX_JSON_DEPTH, HttpError, json_depth_ok, parse_json


@pytest.mark.parametrize("data,ok", [
    (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, True),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), False),
    (b'{"a": "' + b"[" * 1000 + b'"}', True),                 # brackets inside a string
    (b'{"a": "\\"' + b"[" * 1000 + b'"}', True),              # ... after an escaped quote
    (b'{"a": [{"b": [{"c": {}}]}]}', True),
    (b"[" * 100_000, False),
])
def test_depth(data, ok):
    assert json_depth_ok(data) is ok


def test_deep_json_is_a_400_naming_the_limit():
    with pytest.raises(HttpError) as err:
        parse_json(b"[" * 100_000 + b"]" * 100_000)
    assert (err.value.status, err.value.code) == (400, "bad_json")
    assert "deeper than %d" % MAX_JSON_DEPTH in err.value.detail


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b'{"a": 1', b""])
def test_malformed_json_is_a_400(data):
    with pytest.raises(HttpError) as err:
        parse_json(data)
    assert err.value.status == 400


def test_a_large_photo_body_is_checked_quickly():
    body = json.dumps({"photo": "A" * (9 * 1024 * 1024)}).encode()
    assert json_depth_ok(body) and parse_json(body)["photo"][:3] == "AAA"
