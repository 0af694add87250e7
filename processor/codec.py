"""Sentinel encoding of AVL values that plain JSON cannot carry exactly.

``{"$bigint": "<decimal>"}`` is an integer in −2⁶³ … 2⁶⁴−1 and ``{"$bytes": "<base64>"}`` a byte buffer.
Decoding is strict so that a producer bug shows up as a dead-lettered entry rather than as a silently
different value in the database.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

__all__ = ["BIGINT_MAX", "BIGINT_MIN", "SAFE_INT", "SentinelError", "decode", "dumps", "encode", "loads"]

BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**64 - 1
SAFE_INT = 2**53 - 1
SENTINEL_KEYS = frozenset({"$bigint", "$bytes"})
DECIMAL = re.compile(r"-?[0-9]+", re.ASCII)


class SentinelError(ValueError):
    """A sentinel is malformed, or a value cannot be represented in the sentinel encoding."""


def _is_sentinel(value: dict[Any, Any]) -> bool:
    return len(value) == 1 and next(iter(value)) in SENTINEL_KEYS


def _decode_sentinel(value: dict[str, Any]) -> int | bytes:
    ((key, text),) = value.items()
    if not isinstance(text, str):
        raise SentinelError(f"{key} value must be a string, got {type(text).__name__}")
    if key == "$bigint":
        if not DECIMAL.fullmatch(text):
            raise SentinelError(f"$bigint value must match -?[0-9]+, got {text[:40]!r}")
        if len(text.lstrip("-").lstrip("0")) > 20:  # cheap guard before int() on huge strings
            raise SentinelError(f"$bigint value out of range: {text[:40]}…")
        number = int(text)
        if not BIGINT_MIN <= number <= BIGINT_MAX:
            raise SentinelError(f"$bigint value out of range: {text}")
        return number
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise SentinelError(f"$bytes value is not standard padded base64: {text[:40]!r}") from None
    if base64.b64encode(raw).decode("ascii") != text:  # non-canonical padding bits or missing padding
        raise SentinelError(f"$bytes value is not canonical padded base64: {text[:40]!r}")
    return raw


def decode(value: Any) -> Any:
    """Replace sentinels in a parsed JSON tree by ``int`` and ``bytes``; raise :class:`SentinelError`."""
    try:
        return _decode(value)
    except RecursionError:
        raise SentinelError("value nested too deeply") from None


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if _is_sentinel(value):
            return _decode_sentinel(value)
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def encode(value: Any) -> Any:
    """Turn a tree of JSON values, ``int`` and ``bytes`` into plain JSON with sentinels where needed.

    Integers outside JavaScript's safe range become ``$bigint``; bytes become ``$bytes``. A plain object
    shaped like a sentinel, an out-of-range integer, a non-finite float or a non-string key cannot be
    represented and raises :class:`SentinelError`.
    """
    try:
        return _encode(value)
    except RecursionError:
        raise SentinelError("value nested too deeply") from None


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not BIGINT_MIN <= value <= BIGINT_MAX:
            raise SentinelError(f"integer out of range: {value}")
        return {"$bigint": str(value)} if abs(value) > SAFE_INT else value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise SentinelError(f"non-finite number: {value}")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        if _is_sentinel(value):
            raise SentinelError(f"a plain object with the single key {next(iter(value))} cannot be encoded")
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SentinelError(f"object key must be a string, got {type(key).__name__}")
            result[key] = _encode(item)
        return result
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    raise SentinelError(f"cannot encode {type(value).__name__}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # built once: json.loads builds one per call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(text: str) -> Any:
    """Parse strict JSON (no ``NaN``/``Infinity``); raise ``ValueError`` for invalid JSON."""
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps(value: Any) -> str:
    """Encode with sentinels and serialise compactly."""
    return _ENCODER.encode(encode(value))
