"""The sentinel codec (processor.codec, docs/processor.md section 3): ``$bigint`` and ``$bytes`` round-trip every
representable value, and anything malformed or unrepresentable raises SentinelError (nothing else), so a producer
bug becomes a dead-lettered entry instead of a silently different value in the database."""

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor import codec
from processor.codec import BIGINT_MAX, BIGINT_MIN, SentinelError

ints = st.integers(min_value=BIGINT_MIN, max_value=BIGINT_MAX)
scalars = st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | st.text() | st.binary()
keys = st.text().filter(lambda k: k not in ("$bigint", "$bytes"))
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)


@given(values)
def test_encode_then_decode_round_trips(value):
    encoded = codec.encode(value)
    assert codec.decode(json.loads(json.dumps(encoded))) == value


@given(values)
def test_encoded_json_has_only_safe_integers(value):
    def walk(node):
        if isinstance(node, bool):
            return
        if isinstance(node, int):
            assert abs(node) <= codec.SAFE_INT
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(codec.encode(value))


json_trees = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["$bigint", "$bytes", "a", "b"]) | st.text(max_size=5), children, max_size=3),
    max_leaves=20,
)


@given(json_trees)
def test_decoder_raises_only_sentinel_error(tree):
    try:
        codec.decode(tree)
    except SentinelError as exc:
        assert str(exc)  # the only documented failure, and it explains itself


@given(st.text())
def test_loads_raises_only_value_error(text):
    try:
        codec.loads(text)
    except ValueError as exc:
        assert str(exc)  # the only documented failure, and it explains itself


@given(ints)
def test_bigint_sentinel_accepts_whole_range(number):
    assert codec.decode({"$bigint": str(number)}) == number


@pytest.mark.parametrize("text", [str(BIGINT_MIN - 1), str(BIGINT_MAX + 1), "1.0", "+1", "", " 1", "1e3", "0x10", "١"])
def test_bigint_sentinel_rejects(text):
    with pytest.raises(SentinelError):
        codec.decode({"$bigint": text})


@pytest.mark.parametrize("value", [1, None, ["1"]])
def test_sentinel_value_must_be_string(value):
    with pytest.raises(SentinelError):
        codec.decode({"$bigint": value})
    with pytest.raises(SentinelError):
        codec.decode({"$bytes": value})


@given(st.binary())
def test_bytes_sentinel_round_trips(raw):
    assert codec.decode({"$bytes": base64.b64encode(raw).decode()}) == raw


@pytest.mark.parametrize("text", ["AQI", "AQI=\n", "A QI=", "AQ-_", "AQ==AQ==", "AR==", "é", "AQID="])
def test_bytes_sentinel_is_strict(text):
    with pytest.raises(SentinelError):
        codec.decode({"$bytes": text})


def test_objects_with_more_keys_are_plain():
    assert codec.decode({"$bigint": "1", "x": 2}) == {"$bigint": "1", "x": 2}
    assert codec.decode({"$bytes": 5, "$bigint": 1}) == {"$bytes": 5, "$bigint": 1}


def test_sentinels_anywhere():
    tree = {"io": {"1": [{"$bigint": "18446744073709551615"}, {"$bytes": "AQID"}]}}
    assert codec.decode(tree) == {"io": {"1": [2**64 - 1, b"\x01\x02\x03"]}}


@pytest.mark.parametrize("value", [{"$bigint": "1"}, {"$bytes": "AA=="}, 2**64, -(2**63) - 1, float("nan"), {1: 2},
                                   object()])
def test_encoder_refuses_unrepresentable(value):
    with pytest.raises(SentinelError):
        codec.encode(value)


def test_loads_rejects_nan_and_infinity():
    for text in ("NaN", "[Infinity]", '{"a": -Infinity}'):
        with pytest.raises(ValueError):
            codec.loads(text)


def test_loads_survives_deep_nesting():
    with pytest.raises(ValueError):
        codec.loads("[" * 100000 + "]" * 100000)
