"""Typed keys for what create_app() keeps on the aiohttp Application.

The types are named for the type checker only, so that importing the keys (every handler
does) does not load the modules behind them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ..broadcast.base import Broadcast
    from ..broadcast.outbox import Outbox
    from ..config import Settings
    from ..delivery.fanout import Fanout
    from ..delivery.follower import Follower
    from ..delivery.health import NodeState
    from ..metrics import Metrics
    from ..store.ledger import Ledger
    from ..workers.notifier import QueueNotifier
    from .addresses import AddressCap
    from .auth import Auth
    from .demo import PerAddress
    from .gateway import Gateway

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine")
LEDGER: web.AppKey[Ledger] = web.AppKey("ledger")
AUTH: web.AppKey[Auth] = web.AppKey("auth")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
FANOUT: web.AppKey[Fanout] = web.AppKey("fanout")
FOLLOWER: web.AppKey[Follower] = web.AppKey("follower")
BROADCAST: web.AppKey[Broadcast] = web.AppKey("broadcast")
OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox")
STATE: web.AppKey[NodeState] = web.AppKey("state")
SIO: web.AppKey[Any] = web.AppKey("sio")
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
ADDRESS_CAP: web.AppKey[AddressCap] = web.AppKey("address_cap")
NOTIFIER: web.AppKey[QueueNotifier] = web.AppKey("notifier")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
# Demo mode only (None otherwise): signs /demo/token tokens with the node's own key.
DEMO_AUTH: web.AppKey[Auth | None] = web.AppKey("demo_auth")
DEMO_LIMIT: web.AppKey[PerAddress] = web.AppKey("demo_limit")
