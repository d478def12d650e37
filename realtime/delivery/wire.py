"""The fast path for sending one event to many WebSocket connections.

python-socketio sends a room emit as one task per recipient, each putting the packet on the
connection's Engine.IO queue, whose writer task then encodes and frames it (and, when the
client negotiated permessage-deflate, compresses it) for that connection alone. Here the
packet is encoded once, the WebSocket frame is built once, and the same bytes are written to
each connection's transport.

Order is the one thing this must not break. A frame is written directly only when the
connection's Engine.IO writer is idle: its queue is empty and the writer task is parked in
`queue.get()`, so nothing it took is still unwritten. Otherwise the packet takes the normal
queue, behind whatever is already there; once that is written and the writer parks again,
direct writes resume. Polling connections always use the queue.

`TrackingWebSocket` replaces python-engineio's aiohttp WebSocket wrapper (for this server
instance only) to remember each connection's aiohttp WebSocketResponse, and turns
permessage-deflate off: compressing a 200-byte JSON event per connection costs more CPU than
the bytes it saves on the wire.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiohttp.web import WebSocketResponse
from engineio.async_drivers.aiohttp import WebSocket as EngineIOWebSocket

from .. import codec
from ..logs import RateLimitedLog

log = logging.getLogger(__name__)

# A connection whose transport holds more than this is not keeping up: it gets the queue (and
# python-engineio's own back-pressure) instead of an ever-growing transport buffer.
MAX_BUFFERED = 1 << 20
# WebSocket close code for a peer that broke the protocol (RFC 6455).
PROTOCOL_ERROR = 1002


class TrackingWebSocket(EngineIOWebSocket):  # type: ignore[misc]
    async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        self.environ = environ
        eio_socket = getattr(self.handler, "__self__", None)
        if eio_socket is not None:
            eio_socket.fast_ws = self._sock
        try:
            await self.handler(self)
        except Exception as exc:
            # A malformed Engine.IO frame makes python-engineio raise here. The connection is
            # a WebSocket now: close it (protocol error) rather than let the error reach the
            # HTTP layer, which would write a 500 into the upgraded socket.
            bad: RateLimitedLog | None = getattr(self.server, "bad_frames", None)
            if bad is not None:
                bad.note(exc)
            with contextlib.suppress(Exception):
                await self._sock.close(code=PROTOCOL_ERROR, message=b"bad frame")
        finally:
            if eio_socket is not None:
                eio_socket.fast_ws = None
            # aiohttp keeps the exception that ended the connection (a reset while closing, for
            # a client that left abruptly) on the response, and its traceback keeps a frame
            # that holds the response: a cycle that only a full collection would free.
            ended = self._sock.exception()
            if ended is not None:
                ended.__traceback__ = None
        return self._sock

    async def wait(self) -> str | bytes | None:
        """python-engineio's driver raises OSError when the client closes. Raised inside a
        task and re-raised in the connection's handler, that exception ends up holding a
        reference cycle through the whole connection (request, protocol, sockets, tasks:
        ~60 objects) that only a full collection frees. Once the connection is established,
        engine.io's read loop takes None as "closed by the client", so that is the answer
        then; during a polling-to-WebSocket upgrade it still expects the OSError."""
        msg = await self._sock.receive()
        if isinstance(msg.data, bytes | str):
            return msg.data
        eio_socket = getattr(self.handler, "__self__", None)
        if eio_socket is not None and eio_socket.upgraded:
            return None
        raise OSError()


def install(sio: Any) -> None:
    """Use TrackingWebSocket for this server's WebSocket connections."""
    eio = sio.eio
    # A copy: the driver table is shared by every server in the process.
    eio._async = {**eio._async, "websocket": TrackingWebSocket}
    eio.bad_frames = RateLimitedLog("malformed Engine.IO frame; connection closed", logger=log)


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final WebSocket text frame (server to client)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


def event_packet(event: str, data: Any) -> bytes:
    """The Engine.IO message carrying a Socket.IO EVENT for the default namespace, without an
    ack id: what python-socketio's Packet(EVENT, data=[event, data]).encode() gives, behind
    Engine.IO's "4" (MESSAGE), with the event's JSON written by codec."""
    return b"42" + codec.dumps_bytes([event, data])


def _writer_idle(eio_socket: Any) -> bool:
    queue = eio_socket.queue
    if not queue.empty():
        return False
    getters: Any = getattr(queue, "_getters", None)
    return bool(getters) and not getters[0].done()


def direct_transport(eio_socket: Any) -> Any:
    """The transport to write to directly, or None when this connection must use its queue."""
    ws = getattr(eio_socket, "fast_ws", None)
    if ws is None or not eio_socket.upgraded or eio_socket.closed or eio_socket.closing:
        return None
    writer = getattr(ws, "_writer", None)
    transport = getattr(writer, "transport", None)
    if transport is None or transport.is_closing():
        return None
    if transport.get_write_buffer_size() > MAX_BUFFERED or not _writer_idle(eio_socket):
        return None
    return transport


class FastEmitter:
    """Emits one event to a set of Socket.IO sids on this node, framing it once."""

    def __init__(self, sio: Any) -> None:
        self.sio = sio
        self.direct = 0
        self.queued = 0

    def _eio_socket(self, sid: str) -> Any:
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        return self.sio.eio.sockets.get(eio_sid) if eio_sid is not None else None

    async def emit_to(self, event: str, data: Any, sids: Iterable[str]) -> None:
        frame: bytes | None = None
        slow: list[str] = []
        for sid in sids:
            sock = self._eio_socket(sid)
            transport = direct_transport(sock) if sock is not None else None
            if transport is None:
                slow.append(sid)
                continue
            if frame is None:
                frame = text_frame(event_packet(event, data))
            transport.write(frame)
            self.direct += 1
        if slow:
            self.queued += len(slow)
            await self.sio.emit(event, data, to=slow, ignore_queue=True)
