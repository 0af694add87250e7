"""Validation of one telemetry stream entry into a :class:`Position` or a :class:`Rejection`.

Everything PostgreSQL could refuse is refused here instead, so that a stored batch never fails on data
and a bad entry is dead-lettered rather than retried forever.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from . import codec

__all__ = ["REASONS", "Position", "Rejection", "format_ts", "parse_ts", "parse_ts_general", "validate"]

REASONS = (
    "missing_field",
    "bad_encoding",
    "bad_ts",
    "bad_device_id",
    "unknown_codec",
    "bad_json",
    "bad_payload",
    "latitude_out_of_range",
    "longitude_out_of_range",
)
REQUIRED = ("ts", "device_id", "codec", "payload")
CODECS = {"08": "08", "8e": "8E", "10": "10"}
DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}", re.ASCII)
IO_ID = re.compile(r"[0-9]+", re.ASCII)
TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))",
    re.ASCII,
)
INT4_MAX = 2**31 - 1
#: The form producers send (and the Processor writes): UTC, milliseconds. Parsed in C by ``fromisoformat``.
TS_UTC_MS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z", re.ASCII)
_fromisoformat = datetime.fromisoformat
#: Where orjson's result could differ from the json module's, the json module parses: an integer of 19 digits or
#: more (orjson turns one outside 64 bits into a float) or deep nesting (orjson goes 1,024 levels deep, json
#: fewer); :data:`NESTING_FAST_MAX` brackets in all cannot nest deeper than that.
_LONG_DIGITS = re.compile(r"[0-9]{19}", re.ASCII)
NESTING_FAST_MAX = 256
_REQUIRED_KEYS = tuple((name, name.encode()) for name in REQUIRED)


@dataclass(slots=True)
class Position:
    """A valid position, ready to store. ``io`` is JSON text (sentinel-encoded) or ``None``. Treated as
    immutable (not ``frozen``: building a frozen dataclass costs 6× more, once per stream entry)."""

    device_id: str
    ts: datetime
    latitude: float
    longitude: float
    altitude: float | None
    speed: float | None
    heading: float | None
    satellites: int | None
    codec: str
    io: str | None
    stream_id: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an entry goes to the dead-letter stream."""

    reason: str
    detail: str


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


def parse_ts(text: str) -> datetime:
    """Parse an ISO-8601 timestamp with explicit offset and at most millisecond precision, into UTC."""
    if TS_UTC_MS.fullmatch(text):  # the common form, in C (3 times faster); the same instant as below
        try:
            return _fromisoformat(text)
        except ValueError:
            pass  # no such instant (e.g. a 30th of February): the general parser below says so in its words
    return parse_ts_general(text)


def parse_ts_general(text: str) -> datetime:
    """:func:`parse_ts` for every accepted form (and the precise reason for every refused one)."""
    match = TS.fullmatch(text)
    if match is None:
        raise ValueError(f"ts must be ISO-8601 with an explicit UTC offset, got {text[:64]!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    fraction = fraction or ""
    if fraction[3:].strip("0"):
        raise ValueError(f"ts is finer than milliseconds: {text[:64]!r}")
    millis = int((fraction + "000")[:3])
    if zulu:  # the common case: already UTC, no offset to apply
        try:
            return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), millis * 1000,
                            tzinfo=UTC)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"ts is not a valid instant: {text[:64]!r} ({exc})") from None
    offset = timedelta(0)
    if not zulu:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError(f"ts has an invalid offset: {text[:64]!r}")
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (1 if sign == "+" else -1)
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), millis * 1000,
            tzinfo=timezone(offset),
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"ts is not a valid instant: {text[:64]!r} ({exc})") from None


def format_ts(ts: datetime) -> str:
    """Render ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (fixed width, so strings compare like instants)."""
    ts = ts.astimezone(UTC)
    return f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts:%H:%M:%S}.{ts.microsecond // 1000:03d}Z"


def _number(payload: Mapping[str, Any], key: str, *, required: bool = False) -> float | None:
    value = payload.get(key)
    if value is None:
        if required:
            raise _Reject("bad_payload", f"payload.{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Reject("bad_payload", f"payload.{key} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise _Reject("bad_payload", f"payload.{key} must be finite")
    return number


def _check_text(value: Any, where: str) -> None:
    """jsonb refuses NUL characters and lone surrogates; find them before PostgreSQL does."""
    if isinstance(value, str):
        if "\x00" in value:
            raise _Reject("bad_payload", f"{where} contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Reject("bad_payload", f"{where} contains an invalid surrogate") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_text(item, where)
    elif isinstance(value, list):
        for item in value:
            _check_text(item, where)


def _payload(text: str, plain: bool = False) -> dict[str, Any]:
    """Parse the payload; ``plain``: the text has no ``$`` and no ``\\u`` escape, so it holds no sentinel key."""
    try:
        parsed = _loads_plain(text) if plain else codec.loads(text)
    except ValueError as exc:
        raise _Reject("bad_json", f"payload is not valid JSON: {exc}") from None
    try:
        payload = parsed if plain else codec.decode(parsed)
    except codec.SentinelError as exc:
        raise _Reject("bad_payload", f"invalid sentinel: {exc}") from None
    if not isinstance(payload, dict):
        raise _Reject("bad_payload", f"payload must be a JSON object, got {type(payload).__name__}")
    return payload


def _loads_plain(text: str) -> Any:
    """:func:`codec.loads` of a payload without a ``\\u`` escape, through orjson (4 times faster) where its result is
    the json module's: no integer of 19 digits or more, shallow nesting; anything orjson refuses goes to the json
    module, which then refuses it for the same reason as always (or, e.g. ``1e400``, parses it as it always did)."""
    if text.count("[") + text.count("{") <= NESTING_FAST_MAX and not _LONG_DIGITS.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # the json module decides, with its own words
    return codec.loads(text)


def _dumps(value: Any) -> str:
    """:func:`codec.dumps`, through orjson where it can (it stops at 254 levels of nesting; the json module does
    not). The text may differ in number spelling only (``1e16`` for ``1e+16``): the same jsonb value."""
    encoded = codec.encode(value)
    try:
        return orjson.dumps(encoded).decode()
    except orjson.JSONEncodeError:
        return codec.dumps(value)


def validate(stream_id: str, fields: Mapping[bytes, bytes]) -> Position | Rejection:
    """Validate one stream entry; never raises."""
    try:
        return _validate(stream_id, fields)
    except _Reject as exc:
        return Rejection(exc.reason, exc.detail)


def _validate(stream_id: str, fields: Mapping[bytes, bytes]) -> Position:
    missing = [name for name, key in _REQUIRED_KEYS if key not in fields]
    if missing:
        raise _Reject("missing_field", f"missing field(s): {', '.join(missing)}")
    text: dict[str, str] = {}
    for key, value in fields.items():
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise _Reject("bad_encoding", f"a field name is not valid UTF-8: {key[:32]!r}") from None
        try:
            text[name] = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Reject("bad_encoding",
                          f"field {name} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None

    try:
        ts = parse_ts(text["ts"])
    except ValueError as exc:
        raise _Reject("bad_ts", str(exc)) from None

    device_id = text["device_id"]
    if not DEVICE_ID.fullmatch(device_id):
        raise _Reject("bad_device_id", f"device_id must be 1-64 characters of [A-Za-z0-9_.:-], got {device_id[:80]!r}")

    codec_id = CODECS.get(text["codec"].lower())
    if codec_id is None:
        raise _Reject("unknown_codec", f"codec must be 08, 8E or 10, got {text['codec'][:16]!r}")

    payload_text = text["payload"]
    # Fast path (bench/ANALYSIS.md 5d): a sentinel key needs a "$"; a NUL or a lone surrogate in a string can only
    # come from a \u escape (JSON forbids raw control characters, and the UTF-8 decode above refuses surrogates).
    plain = "$" not in payload_text and "\\u" not in payload_text
    payload = _payload(payload_text, plain)
    if not plain:
        _check_text(payload, "payload")
    latitude = _number(payload, "latitude", required=True)
    longitude = _number(payload, "longitude", required=True)
    altitude = _number(payload, "altitude")
    heading = _number(payload, "angle")
    speed = _number(payload, "speed")
    satellites = payload.get("satellites")
    if satellites is not None:
        if isinstance(satellites, float) and satellites.is_integer():
            satellites = int(satellites)
        if isinstance(satellites, bool) or not isinstance(satellites, int) or not 0 <= satellites <= INT4_MAX:
            raise _Reject("bad_payload", f"payload.satellites must be an integer >= 0, got {satellites!r}"[:200])
    priority = payload.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise _Reject("bad_payload", f"payload.priority must be an integer, got {type(priority).__name__}")
    if heading is not None and not 0 <= heading <= 360:
        raise _Reject("bad_payload", f"payload.angle must be within 0 … 360, got {heading}")
    if speed is not None and speed < 0:
        raise _Reject("bad_payload", f"payload.speed must be >= 0, got {speed}")

    io = payload.get("io")
    io_json: str | None = None
    if io is not None:
        if not isinstance(io, dict):
            raise _Reject("bad_payload", f"payload.io must be an object, got {type(io).__name__}")
        for key in io:
            if not IO_ID.fullmatch(key):
                raise _Reject("bad_payload", f"payload.io keys must be decimal IO ids, got {key[:32]!r}")
        try:
            io_json = _dumps(io)
        except codec.SentinelError as exc:
            raise _Reject("bad_payload", f"payload.io cannot be stored: {exc}") from None

    assert latitude is not None and longitude is not None
    if not -90 <= latitude <= 90:
        raise _Reject("latitude_out_of_range", f"latitude must be within -90 … 90, got {latitude}")
    if not -180 <= longitude <= 180:
        raise _Reject("longitude_out_of_range", f"longitude must be within -180 … 180, got {longitude}")

    return Position(
        device_id=device_id,
        ts=ts,
        latitude=latitude,
        longitude=longitude,
        altitude=altitude,
        speed=speed,
        heading=heading,
        satellites=satellites,
        codec=codec_id,
        io=io_json,
        stream_id=stream_id,
    )
