"""WebSocket framing (RFC 6455 section 5.2) of the server's text messages, for the hub's direct writes.

A message is framed once, whatever the number of subscribers, and the same bytes go to every subscriber's
transport (see :class:`processor.client.Client`); they are byte for byte what websockets itself writes with
compression off.
"""

from __future__ import annotations

__all__ = ["websocket_text"]


def websocket_text(data: bytes) -> bytes:
    """One unmasked, uncompressed WebSocket text frame (RFC 6455 section 5.2) carrying ``data`` (UTF-8): what a
    server sends with compression off, built once and written to every subscriber's transport."""
    size = len(data)
    if size < 126:
        return b"\x81" + bytes((size,)) + data
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + data
    return b"\x81\x7f" + size.to_bytes(8, "big") + data
