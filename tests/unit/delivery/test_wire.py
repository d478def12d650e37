"""WebSocket text frames built once for many connections."""

import pytest

from realtime.delivery.wire import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_header_encodes_length(size: int) -> None:
    payload = b"x" * size
    frame = text_frame(payload)
    assert frame[0] == 0x81  # FIN + text
    if size < 126:
        assert frame[1] == size and frame[2:] == payload
    elif size < 65536:
        assert (
            frame[1] == 126 and int.from_bytes(frame[2:4], "big") == size and frame[4:] == payload
        )
    else:
        assert (
            frame[1] == 127 and int.from_bytes(frame[2:10], "big") == size and frame[10:] == payload
        )
