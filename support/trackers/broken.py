"""Broken reports: valid stream entries broken one way each, as docs/processor.md section 3 ("Malformed entries")
lists the ways, and the reasons the Processor must give for setting them aside.

A feature file names the problem in product words ("the longitude is 181"); :data:`BREAKAGES` turns it into the
entry's fields. A field that is not UTF-8 is carried as text with ``surrogateescape`` (``"\\udcff"`` for the
byte 0xff): the suite's Redis clients encode and decode with that error handler (support/trackers/publisher.py,
stream.py), so such an entry goes out, and its dead letter comes back, byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .publisher import position_entry
from .record import Report

#: Where a broken report's valid original puts the car (latitude, longitude).
BROKEN_PLACE = (41.33, 19.82)

#: The reasons as feature files word them -> the reason codes of docs/processor.md ("Malformed entries").
REASONS = {
    "unreadable": "bad_json",
    "a required detail is missing": "missing_field",
    "garbled characters": "bad_encoding",
    "the time is unusable": "bad_ts",
    "the tracker id is invalid": "bad_device_id",
    "the format is unknown": "unknown_codec",
    "the position details are invalid": "bad_payload",
    "the latitude is impossible": "latitude_out_of_range",
    "the longitude is impossible": "longitude_out_of_range",
}

#: The IO element a broken sensor reading is written under (any decimal id will do).
SENSOR = "66"


@dataclass
class BrokenReports:
    """The scenario's broken reports, by the problem its feature file names, and the reason code each must be set
    aside with (in the world's state)."""

    by_problem: dict[str, Report] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)


def reason_code(words: str) -> str:
    """The reason code a feature file's words stand for."""
    assert words.strip() in REASONS, f"no reason called {words!r} (known: {list(REASONS)})"
    return REASONS[words.strip()]


Breakage = Callable[[dict[str, str], re.Match[str]], None]


def _payload(change: Callable[[dict[str, Any], re.Match[str]], Any]) -> Breakage:
    """A breakage of the payload object: ``change`` edits it in place (or returns a value to send instead)."""

    def breakage(fields: dict[str, str], match: re.Match[str]) -> None:
        record = json.loads(fields["payload"])
        replaced = change(record, match)
        fields["payload"] = json.dumps(record if replaced is None else replaced)

    return breakage


def _sensor(value: Any) -> Breakage:
    """A payload whose sensor reading :data:`SENSOR` is ``value`` (already in the stream's JSON form)."""
    return _payload(lambda record, _: record.update(io={SENSOR: value}))


#: Stands for a value written as raw JSON text until the payload is serialised.
_PLACEHOLDER = "@raw@"


def _raw(text: str, place: Callable[[dict[str, Any], str], None]) -> Breakage:
    """A payload holding the JSON text ``text`` where ``place`` puts a value, written as is: for a number no
    Python float can carry (``1e400``), which ``json.dumps`` cannot write."""

    def breakage(fields: dict[str, str], _: re.Match[str]) -> None:
        record = json.loads(fields["payload"])
        place(record, _PLACEHOLDER)
        fields["payload"] = json.dumps(record).replace(json.dumps(_PLACEHOLDER), text, 1)

    return breakage


def _field(name: str, value: Callable[[str, re.Match[str]], str]) -> Breakage:
    def breakage(fields: dict[str, str], match: re.Match[str]) -> None:
        fields[name] = value(fields[name], match)

    return breakage


def _drop(name: str) -> Breakage:
    def breakage(fields: dict[str, str], _: re.Match[str]) -> None:
        del fields[name]

    return breakage


def _without_offset(ts: str, _: re.Match[str]) -> str:
    assert ts.endswith("Z"), ts
    return ts[:-1]  # 2026-05-02T13:00:05.000: a local time of nowhere


def _ten_thousandths(ts: str, _: re.Match[str]) -> str:
    assert ts.endswith("Z"), ts
    return ts[:-1] + "1Z"  # .000Z -> .0001Z: finer than the contract's precision


def _no_longitude(record: dict[str, Any], _: re.Match[str]) -> None:
    del record["longitude"]


def _set(key: str, value: Callable[[re.Match[str]], Any]) -> Breakage:
    return _payload(lambda record, match: record.update({key: value(match)}))


#: What a feature file may say is wrong with a report, and how to break a valid entry that way.
BREAKAGES: list[tuple[str, Breakage]] = [
    (r"the position details are cut short", _field("payload", lambda text, _: text[:-1])),  # no closing brace
    (r"the tracker id is missing", _drop("device_id")),
    (r"the tracker id is garbled", _field("device_id", lambda text, _: text + "\udcff")),  # the byte 0xff
    (r"the time has no offset from UTC", _field("ts", _without_offset)),
    (r"the time is given to the ten-thousandth of a second", _field("ts", _ten_thousandths)),
    (r"the tracker id has a space in it", _field("device_id", lambda text, _: text[:7] + " " + text[7:])),
    (r"the tracker id is ([0-9]+) characters long", _field("device_id", lambda text, m: (text * 10)[: int(m[1])])),
    (r"the codec is ([0-9A-Za-z]+)", _field("codec", lambda _, match: match[1])),
    (r"the position details are a list", _payload(lambda record, _: [record])),
    (r"the longitude is missing", _payload(_no_longitude)),
    (r"the speed is written as text", _set("speed", lambda _: "80 km/h")),
    (r"the heading is (-?[0-9.]+)", _set("angle", lambda match: float(match[1]))),
    (r"the speed is (-?[0-9.]+)", _set("speed", lambda match: float(match[1]))),
    (r"the car sees ([0-9]+) satellites", _set("satellites", lambda match: int(match[1]))),
    (r"the altitude is a number too large to exist", _raw("1e400", lambda record, raw: record.update(altitude=raw))),
    (r"a sensor reading is a big number with a letter in it", _sensor({"$bigint": "12a"})),
    (r"a sensor reading is a big number beyond the largest allowed", _sensor({"$bigint": str(2**64)})),
    (r"a sensor reading is a plain number beyond the largest allowed", _sensor(2**64)),
    (r"a sensor reading's bytes are written with stray bits", _sensor({"$bytes": "AQJ="})),  # AQI= is canonical
    (r"a sensor reading holds a null character", _sensor("before\x00after")),
    (r"a sensor reading holds half a character", _sensor("before\ud800after")),  # a lone UTF-16 surrogate
    (r"the latitude is (-?[0-9]+(?:\.[0-9]+)?)", _set("latitude", lambda match: float(match[1]))),
    (r"the longitude is (-?[0-9]+(?:\.[0-9]+)?)", _set("longitude", lambda match: float(match[1]))),
]


def broken_entry(problem: str, device_id: str, ts: datetime) -> dict[str, str]:
    """A valid entry for ``device_id`` at ``ts``, broken the way ``problem`` says (see :data:`BREAKAGES`)."""
    fields = position_entry(device_id, ts, *BROKEN_PLACE)
    for pattern, breakage in BREAKAGES:
        match = re.fullmatch(pattern, problem.strip())
        if match:
            breakage(fields, match)
            return fields
    raise ValueError(f"no way to break a report like {problem!r}; the suite knows: "
                     f"{', '.join(pattern for pattern, _ in BREAKAGES)}")
