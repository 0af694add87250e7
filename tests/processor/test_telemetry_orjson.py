"""The C fast paths of validation (orjson for payloads and ``io``, ``fromisoformat`` for the common timestamp form)
give exactly the verdicts and values of the json module and the general timestamp parser: property tests. They
exist for speed only, so any difference would be a value stored differently, seen by nobody until it matters."""

import json
import math
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from processor import codec, telemetry
from processor.telemetry import parse_ts, parse_ts_general


def shape(value: Any) -> Any:
    """Values with their types (``1`` is not ``1.0`` here) and the sign of zero."""
    if isinstance(value, dict):
        return ("dict", [(k, shape(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [shape(v) for v in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


def outcome(parse: Any, text: str) -> Any:
    try:
        return shape(parse(text))
    except ValueError:
        return "refused"


scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False) | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8))
trees = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                     | st.dictionaries(st.text(max_size=4), children, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(trees)
@example({"latitude": 1e308, "x": 18446744073709551616})
@example({"x": -9223372036854775809})
@example([1.2345678901234567])
def test_any_json_document_parses_to_the_same_values(value):
    text = json.dumps(value, ensure_ascii=False)
    if "\\u" in text:
        return  # such payloads take the json module's path anyway
    assert outcome(telemetry._loads_plain, text) == outcome(codec.loads, text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='{}[]":,0123456789.eE+- \t\ntrueflsnaINfiy\\/x', max_size=30))
@example("[1e400]")
@example("NaN")
@example('{"a":01}')
@example("[" * 300 + "]" * 300)
def test_any_text_gets_the_same_verdict(text):
    assert outcome(telemetry._loads_plain, text) == outcome(codec.loads, text)


@settings(max_examples=300, deadline=None)
@given(trees)
@example({"1": 1e16, "2": 1e-7, "3": [[[[]]]]})
@example({"1": [[]] * 2, "deep": json.loads("[" * 300 + "]" * 300)})
def test_io_is_stored_as_the_same_json_value(value):
    try:
        expected = codec.dumps(value)
    except codec.SentinelError as exc:
        try:
            telemetry._dumps(value)
        except codec.SentinelError as again:
            assert str(again) == str(exc)
            return
        raise AssertionError("the fast path accepted what the json module refuses") from None
    assert shape(json.loads(telemetry._dumps(value))) == shape(json.loads(expected))


digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


@settings(max_examples=500, deadline=None)
@given(st.lists(digits, min_size=17, max_size=17))
@example(list("20261126240000000"))
@example(list("20260230000000000"))
@example(list("20261126235960000"))
@example(list("00000101000000000"))
@example(list("99991231235959999"))
def test_the_common_timestamp_form_parses_to_the_same_instant_or_the_same_refusal(d):
    text = f"{''.join(d[0:4])}-{''.join(d[4:6])}-{''.join(d[6:8])}T{''.join(d[8:10])}:{''.join(d[10:12])}:" \
           f"{''.join(d[12:14])}.{''.join(d[14:17])}Z"
    assert telemetry.TS_UTC_MS.fullmatch(text)

    def verdict(parse: Any) -> Any:
        try:
            ts = parse(text)
            return ts, ts.utcoffset(), ts.tzinfo
        except ValueError as exc:
            return str(exc)

    assert verdict(parse_ts) == verdict(parse_ts_general)


@given(st.sampled_from(["2026-05-02T11:00:00.000z", "2026-05-02t11:00:00.000Z", "2026-05-02 11:00:00.000Z",
                        "2026-05-02T11:00:00.0001Z", "2026-05-02T11:00:00.00Z", "2026-05-02T11:00:00Z",
                        "2026-05-02T13:00:00.000+02:00", "2026-W18-6T11:00:00.000Z", "\uff12026-05-02T11:00:00.000Z"]))
def test_other_forms_take_the_general_parser(text):
    assert not telemetry.TS_UTC_MS.fullmatch(text)
