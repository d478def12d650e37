"""Socket.IO handlers: authenticate at connect, one room per user, replay, ack, resume."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import socketio
from engineio.packet import NOOP, Packet
from marshmallow import Schema, ValidationError
from socketio.exceptions import ConnectionRefusedError as Refused

from ..config import Settings
from ..delivery.fanout import Fanout
from ..delivery.health import NodeState
from ..domain.schemas import AckBody, ConnectAuth, ResumeBody
from ..logs import Outage, RateLimitedLog
from ..loops import supervise
from ..metrics import Metrics
from ..store.ledger import Ledger
from .addresses import AddressCap
from .auth import Auth, TokenError
from .demo import TokenBucket

log = logging.getLogger(__name__)


# WebSocket close code for "going away, come back": the client reconnects (RFC 6455 1012).
SERVICE_RESTART = 1012


class Server(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, answering a packet it cannot decode (deeply nested JSON, an
    unknown type) by closing that one connection, where the stock one raises in a task whose
    exception nobody reads and leaves the client waiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bad_packets = RateLimitedLog(
            "malformed Socket.IO packet; connection closed", logger=log
        )

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        # Socket.IO v5: a CONNECT_ERROR carries an object with a message (python-socketio
        # sends a bare string for a namespace it does not serve).
        if (namespace or "/") not in self.handlers:
            pkt = self.packet_class(
                socketio.packet.CONNECT_ERROR,
                data={"message": "Invalid namespace"},
                namespace=namespace,
            )
            await self._send_packet(eio_sid, pkt)
            return
        await super()._handle_connect(eio_sid, namespace, data)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
            self.bad_packets.note(exc)
            await close_transport(self.eio, eio_sid)


async def close_transport(eio: Any, eio_sid: str) -> None:
    """Drop one Engine.IO connection the way a failing network would, so that every client
    (socket.io-client, python-socketio, the other ports) reconnects by itself, with its
    lastSeq: no Engine.IO CLOSE packet, which python-socketio's client takes as "the server
    let me go" and does not reconnect after. A WebSocket gets a close frame (1012); a
    long-polling session is forgotten and its pending GET answered with a NOOP, so the next
    poll fails (400, unknown session) and the client starts over."""
    sock = eio.sockets.get(eio_sid)
    if sock is None:
        return
    ws = getattr(sock, "fast_ws", None)
    if ws is not None and sock.upgraded:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=SERVICE_RESTART, message=b"restarting"), 1.0)
        return
    eio.sockets.pop(eio_sid, None)
    with contextlib.suppress(Exception):
        sock.queue.put_nowait(Packet(NOOP))
    with contextlib.suppress(Exception):
        # The server side of the session ends now (disconnect handlers run), without a packet.
        reason = eio.reason.TRANSPORT_CLOSE
        await asyncio.wait_for(sock.close(wait=False, abort=True, reason=reason), 1.0)


@dataclass
class Session:
    user_id: str
    bucket: TokenBucket


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


class Gateway:
    def __init__(
        self,
        sio: Any,
        *,
        settings: Settings,
        auth: Auth,
        ledger: Ledger,
        fanout: Fanout,
        metrics: Metrics,
        state: NodeState,
        outage: Outage,
        addresses: AddressCap | None = None,
    ) -> None:
        self.sio = sio
        self.settings = settings
        self.auth = auth
        self.ledger = ledger
        self.fanout = fanout
        self.metrics = metrics
        self.state = state
        self.sessions: dict[str, Session] = {}
        self._attaching: set[asyncio.Task[None]] = set()
        self.outage = outage
        self.addresses = addresses or AddressCap(1 << 30)
        self._auth_schema = ConnectAuth()
        self._ack_schema = AckBody()
        self._resume_schema = ResumeBody()
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        sio.on("ack", self.on_ack)
        sio.on("resume", self.on_resume)

    async def close_idle_handshakes(self, every: float = 1.0) -> None:
        """Close Engine.IO connections that never complete the Socket.IO connect: python-engineio
        keeps them (and their memory) for as long as the client answers pings."""
        first_seen: dict[str, float] = {}

        async def sweep() -> None:
            now = time.monotonic()
            eio = self.sio.eio
            for eio_sid in list(eio.sockets):
                if self.sio.manager.sid_from_eio_sid(eio_sid, "/") is not None:
                    first_seen.pop(eio_sid, None)
                    continue
                seen = first_seen.setdefault(eio_sid, now)
                if now - seen >= self.settings.handshake_timeout:
                    first_seen.pop(eio_sid, None)
                    self.metrics.refused.labels("handshake_timeout").inc()
                    await close_transport(eio, eio_sid)
            for gone in set(first_seen) - set(eio.sockets):
                first_seen.pop(gone, None)
            self.addresses.prune()

        await supervise("idle handshakes", sweep, every=every, logger=log)

    def _refuse(self, reason: str) -> Refused:
        self.metrics.refused.labels(reason).inc()
        return Refused(reason)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Final refusals (unauthorized, too_many_connections) are connect_errors. Everything a
        connection is sent comes after its CONNECT packet: the replay runs in a task that
        python-socketio's CONNECT is already queued ahead of. A node that cannot serve right
        now (draining, database unavailable) accepts, then drops the transport: stock
        clients treat a refused connect as final but reconnect after a lost transport."""
        if self.state.draining:
            self.metrics.refused.labels("unavailable").inc()
            self._drop_soon(sid)
            return
        try:
            body = self._auth_schema.load(auth if isinstance(auth, dict) else {})
        except ValidationError as exc:
            if "token" in exc.messages:
                raise self._refuse("unauthorized") from None
            # A bad lastSeq/epoch cannot be honoured: the client gets a snapshot instead.
            body = {"token": auth.get("token"), "lastSeq": None, "epoch": None}
        try:
            identity = self.auth.verify(body["token"])
        except TokenError:
            raise self._refuse("unauthorized") from None
        user_id = identity.user_id
        if self.fanout.connections(user_id) >= self.settings.max_connections_per_user:
            raise self._refuse("too_many_connections")
        request = environ.get("aiohttp.request")
        self.addresses.vouch(getattr(request, "transport", None))
        self.fanout.reserve(user_id)
        rate = self.settings.client_events_per_second
        self.sessions[sid] = Session(user_id, TokenBucket(rate, rate * 2))
        self.metrics.connections.inc()
        task = asyncio.create_task(self._attach(sid, user_id, body["lastSeq"], body["epoch"]))
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    async def _attach(
        self, sid: str, user_id: str, last_seq: int | None, epoch: str | None
    ) -> None:
        try:
            # Bounded like every store call: a database that hangs drops the transport (the
            # client retries), never a connection waiting forever for its replay.
            async with asyncio.timeout(self.settings.db_timeout):
                await self.fanout.attach(sid, user_id, last_seq, epoch)
        except Exception as exc:
            self.metrics.refused.labels("unavailable").inc()
            self.outage.failed("connect", exc)
            await self._drop(sid)
            return
        self.outage.ok()
        if sid not in self.sessions:  # it left while its replay was read
            self.fanout.detach(sid, user_id)

    def _drop_soon(self, sid: str) -> None:
        task = asyncio.create_task(self._drop(sid))
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    async def _drop(self, sid: str) -> None:
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            await close_transport(self.sio.eio, eio_sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._release_pending_poll(sid)
        session = self.sessions.pop(sid, None)
        if session is not None:
            self.fanout.detach(sid, session.user_id)
            self.metrics.connections.dec()

    def _release_pending_poll(self, sid: str) -> None:
        """python-engineio keeps a long-polling client's pending GET open for ping interval +
        timeout after the client said goodbye (and a graceful shutdown waits for it); waking
        its queue answers that GET now."""
        try:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            sock = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
            if sock is not None and not sock.upgraded:
                sock.queue.put_nowait(None)
        except Exception:  # best effort: the socket may already be gone
            log.debug("could not release the pending poll of %s", sid)

    def _admit(
        self, sid: str, data: Any, schema: Schema, usage: str
    ) -> tuple[Session, dict[str, Any]] | dict[str, Any]:
        """The session and the validated body of a client event, or the error to answer."""
        session = self.sessions.get(sid)
        if session is None:
            return _error("unauthorized", "not connected")
        if not session.bucket.take():
            return _error("rate_limited", "too many client events; slow down")
        try:
            body: dict[str, Any] = schema.load(data if isinstance(data, dict) else {})
        except ValidationError as exc:
            return {**_error("invalid", usage), "fields": exc.messages}
        return session, body

    async def on_ack(self, sid: str, data: Any = None) -> dict[str, Any] | None:
        admitted = self._admit(sid, data, self._ack_schema, "ack needs {seq: integer >= 0}")
        if isinstance(admitted, dict):
            return admitted
        session, body = admitted
        try:
            await self.ledger.ack(session.user_id, body["seq"])
        except Exception as exc:
            self.outage.failed("ack", exc)
            return _error("unavailable", "the service cannot store that now; try again")
        return None

    async def on_resume(self, sid: str, data: Any = None) -> dict[str, Any] | None:
        admitted = self._admit(
            sid, data, self._resume_schema, "resume needs {lastSeq: integer >= 0, epoch: string}"
        )
        if isinstance(admitted, dict):
            return admitted
        session, body = admitted
        try:
            await self.fanout.resume(sid, session.user_id, body["lastSeq"], body["epoch"])
        except Exception as exc:
            self.outage.failed("resume", exc)
            return _error("unavailable", "the service cannot replay now; try again")
        return None
