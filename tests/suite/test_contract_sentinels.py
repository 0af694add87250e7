"""The suite's encoder (support/trackers/publisher.py) and the Processor's decoder (processor/) agree.

Both were written from docs/processor.md section 3, independently; if either drifts from the contract,
this is where it shows, in seconds and without services.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from processor import codec, telemetry
from support.trackers.publisher import encode_sentinels, position_entry

AVL_INTEGERS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
# U+0000 is refused by contract (PostgreSQL's jsonb cannot store it); tested on its own below.
TEXT = st.text(st.characters(blacklist_characters="\x00"), max_size=20)
SCALARS = st.one_of(
    st.none(), st.booleans(), AVL_INTEGERS, st.floats(allow_nan=False, allow_infinity=False), TEXT,
    st.binary(max_size=32),
)
KEYS = st.text(st.characters(blacklist_characters="\x00"), max_size=10).filter(lambda key: key not in ("$bigint",
                                                                                                       "$bytes"))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


@given(VALUES)
def test_processor_decodes_what_the_suite_encodes(value):
    text = json.dumps(encode_sentinels(value))
    assert codec.decode(codec.loads(text)) == value


# What PostgreSQL's jsonb can store: no U+0000 and no lone UTF-16 surrogate (JSON can spell one as "\ud800", but
# it is not Unicode text). Both are refused by contract, each tested on its own below. Drawing them here made
# this test fail on the rare runs where hypothesis generated a surrogate (about 1 run in 12).
STORABLE_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)  # type: ignore[arg-type]  # hypothesis types categories as literals
STORABLE_SCALARS = st.one_of(
    st.none(), st.booleans(), AVL_INTEGERS, st.floats(allow_nan=False, allow_infinity=False), STORABLE_TEXT,
    st.binary(max_size=32),
)


@given(st.dictionaries(st.integers(0, 65535).map(str), STORABLE_SCALARS, max_size=8))
def test_io_elements_survive_the_stream_entry(io):
    ts = datetime(2026, 5, 2, 11, 0, 0, 250_000, tzinfo=UTC)
    fields = position_entry("356307042441013", ts, 41.3275, 19.8187, codec="8E", speed=87.5, io=io)
    position = telemetry.validate("1-0", {k.encode(): v.encode() for k, v in fields.items()})
    assert isinstance(position, telemetry.Position), position
    assert (position.device_id, position.ts, position.latitude, position.longitude, position.speed) == (
        "356307042441013", ts, 41.3275, 19.8187, 87.5)
    stored_io = codec.decode(codec.loads(position.io)) if position.io is not None else {}
    assert stored_io == io


def test_a_nul_character_is_refused_as_bad_payload():
    ts = datetime(2026, 5, 2, 11, 0, tzinfo=UTC)
    fields = position_entry("356307042441013", ts, 41.0, 19.0, io={"1": "a\x00b"})
    rejection = telemetry.validate("1-0", {k.encode(): v.encode() for k, v in fields.items()})
    assert rejection == telemetry.Rejection("bad_payload", rejection.detail)  # type: ignore[union-attr]  # this input is refused: a Rejection


def test_a_lone_surrogate_is_refused_as_bad_payload():
    ts = datetime(2026, 5, 2, 11, 0, tzinfo=UTC)
    fields = position_entry("356307042441013", ts, 41.0, 19.0, io={"1": "a\ud800b"})
    rejection = telemetry.validate("1-0", {k.encode(): v.encode() for k, v in fields.items()})
    assert rejection == telemetry.Rejection("bad_payload", rejection.detail)  # type: ignore[union-attr]  # this input is refused: a Rejection
    assert "surrogate" in rejection.detail
