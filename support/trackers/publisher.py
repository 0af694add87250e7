"""Trackers, as far as the Processor can tell: entries ``XADD``-ed to the telemetry stream.

The entry format and the sentinel encoding are the contract of docs/processor.md, section 3. This is the
suite's own encoder, written from the document, not borrowed from the Processor; a unit test checks that the
two agree (tests/suite/test_contract_sentinels.py).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

SAFE_INTEGER = 2**53 - 1


def encode_sentinels(value: Any) -> Any:
    """Make ``value`` JSON-safe: big integers become ``{"$bigint": ...}``, bytes ``{"$bytes": ...}``."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return value if -SAFE_INTEGER <= value <= SAFE_INTEGER else {"$bigint": str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [encode_sentinels(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("$bigint", "$bytes"):
            raise ValueError(f"a plain object shaped like a sentinel cannot be encoded: {value!r}")
        return {str(key): encode_sentinels(item) for key, item in value.items()}
    raise TypeError(f"cannot encode {type(value).__name__} for the telemetry stream")


def render_ts(ts: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, as producers send it."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


#: What a car reports besides where and when, unless a scenario says otherwise (altitude m, heading degrees,
#: speed km/h, satellites in view): one definition for every report the suite makes up.
CAR_PAYLOAD: dict[str, float | int] = {"altitude": 110.0, "angle": 90.0, "speed": 80.0, "satellites": 11}


def car_entry(device_id: str, ts: datetime, latitude: float, longitude: float, **payload: Any) -> dict[str, str]:
    """The stream fields of a car's report: :data:`CAR_PAYLOAD`, with ``payload`` replacing any of it (``None``:
    the tracker leaves that detail out)."""
    record = {key: value for key, value in {**CAR_PAYLOAD, **payload}.items() if value is not None}
    return position_entry(device_id, ts, latitude, longitude, **record)


def position_entry(device_id: str, ts: datetime, latitude: float, longitude: float, *, codec: str = "8E",
                   **payload: Any) -> dict[str, str]:
    """The stream fields for one AVL record."""
    record = {"latitude": latitude, "longitude": longitude, **payload}
    return {"ts": render_ts(ts), "device_id": device_id, "codec": codec,
            "payload": json.dumps(encode_sentinels(record))}


class TelemetryPublisher:
    """Publishes to one telemetry stream (the run's, or a scenario's own); what a scenario published is recorded
    by its World (:class:`support.trackers.record.Published`), not here."""

    def __init__(self, redis_url: str, stream: str) -> None:
        self.stream = stream
        #: ``surrogateescape``: a field that is deliberately not UTF-8 (support/trackers/broken.py) goes out as
        #: the bytes it stands for; any other text is UTF-8 as usual.
        self.redis = aioredis.Redis.from_url(redis_url, encoding_errors="surrogateescape")

    async def publish(self, fields: dict[str, str]) -> str:
        """``XADD`` one entry; return its id."""
        entry_id = await self.redis.xadd(self.stream, fields)  # type: ignore[arg-type]  # redis-py's field types are invariant; str fields are what it sends
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def close(self) -> None:
        await self.redis.aclose()
