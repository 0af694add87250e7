"""The Processor's wire formats, written out from its contract (docs/processor.md) for the baselines of issue 21.

The peers (:mod:`bench.peer_python`, ``bench/peer_node/server.js``) and the live feeder (:mod:`bench.feeder`) must
read and write exactly what the Processor reads and writes, so that a peer does the Processor's live job and
nothing else. They take the formats from here, built from the contract's text, not by importing ``processor``:
``processor/frames.py`` is being split into modules of its own, and a baseline that imported the thing it
measures would follow the Processor's bugs too. Whether the bytes really are the Processor's is checked end to
end instead: the bench sends one probe message through every target and compares the frames a viewer receives
(:func:`bench.peers.frames_check`).

* section 5, the message on ``<stream>:live``: a header line ``{"publisher", "seq", "published"}``, a newline,
  then a JSON array of positions, each an array of the ``<position>`` fields in the order of :data:`FIELDS`;
* section 4, the ``position`` frame: a compact JSON object, ``type`` first, then the same fields by their keys,
  non-ASCII text kept as UTF-8 (the Processor renders it with the ``json`` module, ``separators=(",", ":")``,
  ``ensure_ascii=False``: the same call is made here, so the bytes are the same by construction);
* RFC 6455 section 5.2: one unmasked, uncompressed text frame per message (compression is off, section 4).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["FIELDS", "live_message", "parse_live", "position_frame", "render", "websocket_close", "websocket_text"]

#: The ``<position>`` keys in the order a live-channel message carries their values (docs/processor.md section 5).
FIELDS = ("eventId", "entryId", "deviceId", "ts", "lat", "lon", "altitude", "speed", "heading", "satellites",
          "streamId")

#: Compact JSON as the Processor renders its frames (section 4 shows no spaces; UTF-8 kept).
render = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def live_message(publisher: str, seq: int, published: float, positions: Sequence[Sequence[Any]]) -> bytes:
    """One message of ``<stream>:live``: the header line, a newline, the positions as arrays in :data:`FIELDS`
    order. orjson, as the Processor publishes it (any JSON encoder would do: receivers parse it)."""
    return orjson.dumps({"publisher": publisher, "seq": seq, "published": published}) + b"\n" + orjson.dumps(
        [list(p) for p in positions])


def parse_live(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The header of a live-channel message, and its positions still encoded (decoded only when someone
    watches, as the Processor does)."""
    head, _, body = data.partition(b"\n")
    header = orjson.loads(head)
    if not isinstance(header, dict):
        raise ValueError("the header line is not a JSON object")
    return header, body


def position_frame(p: Sequence[Any]) -> bytes:
    """The ``position`` frame of one position (an array in :data:`FIELDS` order), UTF-8."""
    return render({"type": "position", "eventId": p[0], "entryId": p[1], "deviceId": p[2], "ts": p[3],
                   "lat": p[4], "lon": p[5], "altitude": p[6], "speed": p[7], "heading": p[8], "satellites": p[9],
                   "streamId": p[10]}).encode()


def websocket_text(data: bytes) -> bytes:
    """One unmasked, uncompressed WebSocket text frame carrying ``data`` (what a server sends)."""
    size = len(data)
    if size < 126:
        return b"\x81" + bytes((size,)) + data
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + data
    return b"\x81\x7f" + size.to_bytes(8, "big") + data


def websocket_close(code: int, reason: str = "") -> bytes:
    """A server's close frame (``code``, then the reason in UTF-8; at most 123 bytes of it)."""
    payload = code.to_bytes(2, "big") + reason.encode()[:123]
    return b"\x88" + bytes((len(payload),)) + payload
