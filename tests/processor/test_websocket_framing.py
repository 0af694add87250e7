"""The WebSocket framing of direct writes (processor.websocket_framing) is byte for byte websockets' own, at every
length encoding: the client writes these bytes to the socket behind websockets' back, so any difference would
corrupt the connection."""

from websockets.frames import Frame, Opcode

from processor.websocket_framing import websocket_text


def test_a_direct_write_frame_is_what_websockets_itself_would_send():
    """The client writes websocket_text() straight to the transport: it must be byte for byte the frame
    websockets builds for a server text message with compression off."""
    for size in (0, 1, 125, 126, 65535, 65536, 70000):
        data = ("é" * size).encode()[:size]
        assert websocket_text(data) == Frame(Opcode.TEXT, data).serialize(mask=False), size
