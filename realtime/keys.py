"""Typed keys for what create_app() keeps on the aiohttp Application."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from .auth import Auth
from .broadcast import Broadcast
from .config import Settings
from .fanout import Fanout, Follower
from .ledger import Ledger
from .metrics import Metrics


@dataclass
class NodeState:
    """What this node knows about its own health."""

    draining: bool = False
    # Set by the Redis manager when one is configured: is our subscription alive?
    subscription_alive: Any = field(default=None)


SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
LEDGER = web.AppKey("ledger", Ledger)
AUTH = web.AppKey("auth", Auth)
METRICS = web.AppKey("metrics", Metrics)
FANOUT = web.AppKey("fanout", Fanout)
FOLLOWER = web.AppKey("follower", Follower)
BROADCAST = web.AppKey("broadcast", Broadcast)
STATE = web.AppKey("state", NodeState)
SIO = web.AppKey("sio", object)
