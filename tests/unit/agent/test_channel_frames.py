"""Channel messages of exec/attach/port-forward WebSockets: kubelet reads a message's bytes
whatever its opcode, so text messages (the Python client's ``write_stdin(str)``) count too."""

from __future__ import annotations

import pytest
from aiohttp import WSMessage, WSMsgType

from svcnet.agent.streamio import channel_frame


@pytest.mark.parametrize(
    ("msg", "want"),
    [
        (WSMessage(WSMsgType.BINARY, b"\x00echo 1\n", None), b"\x00echo 1\n"),
        (WSMessage(WSMsgType.TEXT, "\x00echo 1\n", None), b"\x00echo 1\n"),
        (WSMessage(WSMsgType.TEXT, "\x00h\u00e9", None), b"\x00h\xc3\xa9"),  # UTF-8, as sent
        (WSMessage(WSMsgType.BINARY, b"\xff\x00", None), b"\xff\x00"),  # v5 close of stdin
        (WSMessage(WSMsgType.PING, b"", None), b""),
        (WSMessage(WSMsgType.CLOSE, 1000, ""), b""),
    ],
)
def test_channel_frame(msg: WSMessage, want: bytes) -> None:
    assert channel_frame(msg) == want
