"""create_app(settings): the one place where the service's parts are built and wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from ..broadcast.base import Broadcast, LocalBroadcast
from ..broadcast.outbox import Outbox
from ..config import ConfigError, Settings
from ..delivery import wire
from ..delivery.fanout import Fanout, SocketIOEmitter
from ..delivery.follower import Follower
from ..delivery.health import NodeState
from ..logs import Outage
from ..loops import supervise
from ..metrics import Metrics
from ..store.engine import create_engine
from ..store.ledger import Ledger
from ..store.migrate import migrate
from ..workers.notifier import QueueNotifier
from . import api, demo, middleware, openapi
from .addresses import AddressCap
from .auth import Auth
from .gateway import Gateway, Server, close_transport
from .keys import (
    ADDRESS_CAP,
    AUTH,
    BROADCAST,
    DEMO_AUTH,
    DEMO_LIMIT,
    ENGINE,
    FANOUT,
    FOLLOWER,
    GATEWAY,
    LEDGER,
    METRICS,
    NOTIFIER,
    OPENAPI,
    OUTBOX,
    SETTINGS,
    SIO,
    STATE,
)

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 60.0


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> web.Application:
    if not settings.jwt_secret and not settings.demo:
        raise ConfigError("REALTIME_JWT_SECRET: not set (or pass --demo for an ephemeral secret)")
    # Demo tokens are signed with this node's own key: whoever mints one at the open
    # /demo/token gets nothing another node (sharing REALTIME_JWT_SECRET) accepts.
    own_key = demo.demo_key() if settings.demo else None
    # One outage for the HTTP API and the connects alike: one log line per database outage.
    outage = Outage(log)
    app = web.Application(
        middlewares=[
            middleware.cors_middleware(settings.cors_origins),
            middleware.error_middleware(outage, settings.db_timeout),
            middleware.polling_limit(settings.max_message_bytes, lambda sid: drop(app, sid)),
        ],
        client_max_size=settings.max_message_bytes,
    )
    engine = create_engine(settings.database_url)
    ledger = Ledger(
        engine, history_size=settings.history_size, history_ttl=settings.history_ttl, clock=clock
    )
    metrics = Metrics()
    primary = settings.jwt_secret or own_key
    assert primary is not None
    extra = (own_key,) if own_key and settings.jwt_secret else ()
    auth = Auth(
        primary, algorithm=settings.jwt_algorithm, leeway=settings.jwt_leeway, also_accept=extra
    )
    demo_auth = Auth(own_key, algorithm=settings.jwt_algorithm) if own_key else None
    state = NodeState()
    addresses = AddressCap(
        settings.max_unauthenticated_per_address,
        trusted=settings.trusted_proxies,
        refused=metrics.refused.labels("address_cap").inc,
    )

    manager: Any = None
    if settings.redis_url:
        from ..broadcast.signing import channel_key
        from ..delivery.subscriber import StreamRedisManager

        manager = StreamRedisManager(
            settings.redis_url,
            state=state,
            metrics=metrics,
            key=channel_key(settings.jwt_secret),
        )
    cors: Any = (
        None if settings.cors_origins is None else middleware.SocketOrigins(settings.cors_origins)
    )
    sio = Server(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=cors,
        max_http_buffer_size=settings.max_message_bytes,
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app)
    wire.install(sio)
    fanout = Fanout(SocketIOEmitter(sio), ledger, metrics)
    gateway = Gateway(
        sio,
        settings=settings,
        auth=auth,
        ledger=ledger,
        fanout=fanout,
        metrics=metrics,
        state=state,
        outage=outage,
        addresses=addresses,
    )
    broadcast: Broadcast = LocalBroadcast(fanout)
    interval = settings.follow_interval
    if manager is not None:
        broadcast = manager.broadcast(fanout)
        manager.fanout = fanout
        # Redis carries live delivery; the follower is the safety net and can poll less often.
        interval = max(interval, 1.0)
    follower = Follower(fanout, ledger, interval)
    outbox = Outbox(broadcast, counted=metrics.stored.inc)
    if manager is not None:
        manager.on_subscribed = follower.wake.set
        manager.catch_up_users = follower.poll_once
        fanout.interest = manager
        manager.ingest = _ingest(manager, ledger, outbox)

    app[SETTINGS] = settings
    app[ENGINE] = engine
    app[LEDGER] = ledger
    app[AUTH] = auth
    app[METRICS] = metrics
    app[STATE] = state
    app[FANOUT] = fanout
    app[FOLLOWER] = follower
    app[BROADCAST] = broadcast
    app[OUTBOX] = outbox
    app[SIO] = sio
    app[GATEWAY] = gateway
    app[ADDRESS_CAP] = addresses
    app[NOTIFIER] = QueueNotifier(ledger, outbox, interval=0.5)
    app[OPENAPI] = openapi.build()
    app[DEMO_AUTH] = demo_auth
    app[DEMO_LIMIT] = demo.PerAddress()
    api.setup_routes(app)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(drain)
    return app


def _ingest(manager: Any, ledger: Ledger, outbox: Outbox) -> Any:
    """Stock emitters' messages: claimed once across the nodes, then stored like a publish."""
    from ..delivery.ingest import CLAIM_SECONDS, LEASE_SECONDS, Ingest

    async def claim(key: str) -> bool:
        return bool(await manager._pinger.claim(key, CLAIM_SECONDS))

    async def lease() -> bool:
        return bool(await manager._pinger.lease("realtime:ingester", LEASE_SECONDS))

    async def publish(user_id: str, message: dict[str, Any], create: bool) -> object:
        return await outbox.put(ledger.publish(user_id, message, create=create))

    return Ingest(claim=claim, lease=lease, publish=publish, dropped=manager.drop)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Schema first, then the background tasks on the server's loop; all torn down in reverse."""
    await migrate(app[ENGINE])
    sio: Any = app[SIO]
    if not sio.manager_initialized:
        # python-socketio starts the Redis listener on the first connection; a node must be
        # subscribed (and ready) before that.
        sio.manager_initialized = True
        sio.manager.initialize()
    retention = supervise(
        "retention", app[LEDGER].trim_expired, every=RETENTION_INTERVAL, run_first=True, logger=log
    )
    stall = app[SETTINGS].stall_seconds

    async def end_stalled() -> None:
        await app[OUTBOX].send(await app[LEDGER].end_stalled(stall))

    stalls = supervise(
        "stalled jobs", end_stalled, every=min(60.0, max(1.0, stall / 10)), logger=log
    )
    tasks = [
        asyncio.create_task(app[FOLLOWER].run(), name="follower"),
        asyncio.create_task(retention, name="retention"),
        asyncio.create_task(stalls, name="stalled-jobs"),
        asyncio.create_task(app[GATEWAY].close_idle_handshakes(), name="handshakes"),
        # Queue positions move on submit and cancel too, not only when a worker claims.
        asyncio.create_task(app[NOTIFIER].run(), name="queue-notifier"),
    ]
    yield
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    # Each step bounded: a shutdown must end even when Redis or a peer stopped answering.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(app[BROADCAST].close(), 3.0)
    thread = getattr(sio.manager, "thread", None)
    if isinstance(thread, asyncio.Task):
        thread.cancel()
        await asyncio.wait({thread}, timeout=3.0)
        if thread.done() and not thread.cancelled():
            thread.exception()  # retrieved: a listener that failed is not worth a warning here
    with contextlib.suppress(Exception):
        await asyncio.wait_for(sio.shutdown(), 3.0)
    await app[LEDGER].close()


async def drop(app: web.Application, eio_sid: str) -> None:
    """End one Engine.IO session the way a failing network would (gateway.close_transport)."""
    await close_transport(app[SIO].eio, eio_sid)


async def drain(app: web.Application) -> None:
    """Stop taking connections and move clients off by closing their transports: unlike a
    Socket.IO disconnect, socket.io-client reconnects by itself (to another node, with its
    lastSeq), so nothing in flight is lost."""
    app[STATE].draining = True
    sio: Any = app[SIO]
    eio = sio.eio
    sids = list(eio.sockets)
    if sids:
        await asyncio.gather(*(close_transport(eio, sid) for sid in sids), return_exceptions=True)
