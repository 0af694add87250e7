"""Reports written in the less common ways docs/processor.md section 3 accepts, and what the database must then hold.

A feature file says how a report is written ("with the format code 08", "with the time to the millionth of a
second, ending in zeros"); :data:`WRITINGS` rewrites a car's ordinary report that way. Sensor readings (the AVL
record's ``io``) are written as a table says (a plain number, a big number, bytes, a record as is), and
:func:`stored_io` says what ``positions.io`` must hold for them (section 7): the sentinel encoding, spelt
canonically, which the suite's own encoder (support/trackers/publisher.py) writes.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .publisher import encode_sentinels

Rewrite = Callable[[dict[str, str]], None]


Writing = Callable[[dict[str, str], re.Match[str]], None]


def _codec(fields: dict[str, str], match: re.Match[str]) -> None:
    fields["codec"] = match[1]


def _micro_zeros(fields: dict[str, str], _: re.Match[str]) -> None:
    assert re.fullmatch(r".*\.[0-9]{3}Z", fields["ts"]), fields["ts"]
    fields["ts"] = fields["ts"][:-1] + "000Z"  # .250Z -> .250000Z: the same instant


def _payload(change: Callable[[dict[str, Any]], None]) -> Rewrite:
    def rewrite(fields: dict[str, str]) -> None:
        record = json.loads(fields["payload"])
        change(record)
        fields["payload"] = json.dumps(record)

    return rewrite


def _in_payload(change: Callable[[dict[str, Any]], None]) -> Writing:
    rewrite = _payload(change)
    return lambda fields, _: rewrite(fields)


#: The edges of section 3's ranges, which must be accepted: a heading of 360, a speed of 0, 2³¹−1 satellites.
EDGES = {"angle": 360.0, "speed": 0.0, "satellites": 2**31 - 1}

#: How a feature file may say a report is written, and how to rewrite a car's ordinary report that way.
WRITINGS: list[tuple[str, Writing]] = [
    (r"with the format code (08|10)", _codec),
    (r"with the format code (8e), in lower case", _codec),
    (r"with the time to the millionth of a second, ending in zeros", _micro_zeros),
    (r"with a detail the service does not know", _in_payload(lambda record: record.update(hdop=0.9))),
    (r"with the heading at 360, the speed at 0 and 2147483647 satellites", _in_payload(lambda r: r.update(EDGES))),
]


def rewrite_for(how: str) -> Rewrite:
    """How :data:`WRITINGS` rewrites a report for ``how``."""
    for pattern, writing in WRITINGS:
        match = re.fullmatch(pattern, how.strip())
        if match:
            return lambda fields: writing(fields, match)
    raise ValueError(f"no way to write a report {how!r}; the suite knows: {', '.join(p for p, _ in WRITINGS)}")


# -- a tracker id as long as allowed --------------------------------------------------------------------------

#: The characters section 3 allows in a tracker id.
DEVICE_ID_CHARACTERS = string.ascii_letters + string.digits + "_.:-"


def longest_device_id() -> str:
    """A fresh tracker id of 64 characters, the most section 3 allows, using every kind of character it allows."""
    device_id = "Rally_Car.7:tracker-" + secrets.token_hex(22)
    assert len(device_id) == 64 and set(device_id) <= set(DEVICE_ID_CHARACTERS), device_id
    return device_id


# -- sensor readings ------------------------------------------------------------------------------------------

@dataclass
class SensorReadings:
    """The readings a scenario's tracker reported (in the world's state): as written, and as decoded values."""

    written: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def _written(reading: str, written_as: str) -> tuple[Any, Any]:
    """``(what the payload carries, the value it stands for)`` for one row of a sensor readings table."""
    kind = written_as.strip()
    if kind == "a plain number":
        return int(reading), int(reading)
    if kind == "a big number":
        return {"$bigint": reading.strip()}, int(reading)
    if kind == "bytes":
        raw = bytes.fromhex(reading)
        return {"$bytes": base64.b64encode(raw).decode("ascii")}, raw
    if kind == "a record, as is":
        record = json.loads(reading)
        return record, record
    raise ValueError(f"no way to write a sensor reading as {written_as!r}: a plain number, a big number, bytes, "
                     "a record, as is")


def sensor_readings(rows: list[tuple[str, str, str]]) -> SensorReadings:
    """Rows ``(sensor, reading, written as)`` -> the ``io`` object to send, and the values it stands for."""
    readings = SensorReadings()
    for sensor, reading, written_as in rows:
        readings.written[sensor], readings.values[sensor] = _written(reading, written_as)
    return readings


def with_io(written: dict[str, Any]) -> Rewrite:
    """Put ``written`` into the report as its ``io``, exactly as written (no encoder in between)."""
    return _payload(lambda record: record.update(io=written))


def stored_io(values: dict[str, Any]) -> Any:
    """What ``positions.io`` must hold for readings of these values (docs/processor.md, section 7)."""
    return encode_sentinels(values)
