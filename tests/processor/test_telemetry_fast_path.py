"""The validation fast path (payload without "$" or \\u escapes) gives the same verdicts as the full path: it exists
for speed only, so any difference would be a bug seen only under load."""

import json

import pytest

from processor import telemetry
from processor.telemetry import Position, Rejection, validate


def fields(payload_text):
    return {b"ts": b"2026-05-02T11:00:00.000Z", b"device_id": b"d1", b"codec": b"08",
            b"payload": payload_text.encode()}


@pytest.mark.parametrize("payload_text, expected", [
    ('{"latitude":1,"longitude":2,"io":{"1":5}}', Position),
    ('{"latitude":1,"longitude":2,"io":{"1":{"\\u0024bigint":"18446744073709551615"}}}', Position),
    ('{"latitude":1,"longitude":2,"io":{"1":{"$bytes":"AQ=="}}}', Position),
    ('{"latitude":1,"longitude":2,"note":"a\\u0000b"}', "bad_payload"),
    ('{"latitude":1,"longitude":2,"note":"\\ud800"}', "bad_payload"),
    ('{"latitude":1,"longitude":2,"io":{"1":{"$bigint":"x"}}}', "bad_payload"),
])
def test_escapes_and_sentinels_take_the_full_path(payload_text, expected):
    result = validate("1-0", fields(payload_text))
    if expected is Position:
        assert isinstance(result, Position)
    else:
        assert isinstance(result, Rejection) and result.reason == expected


def test_a_plain_payload_skips_the_sentinel_walk(monkeypatch):
    def boom(value):
        raise AssertionError("decode called on a plain payload")

    monkeypatch.setattr(telemetry.codec, "decode", boom)  # type: ignore[attr-defined]  # patching the module's own codec import
    result = validate("1-0", fields(json.dumps({"latitude": 1.5, "longitude": 2.5, "io": {"1": 7}})))
    assert isinstance(result, Position) and result.io == '{"1":7}'
