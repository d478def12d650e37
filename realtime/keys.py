"""Typed keys for what create_app() keeps on the aiohttp Application."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from .auth import Auth
from .broadcast import Broadcast
from .config import Settings
from .fanout import Fanout, Follower
from .gateway import Gateway
from .ledger import Ledger
from .metrics import Metrics
from .notifier import QueueNotifier
from .state import NodeState

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
GATEWAY = web.AppKey("gateway", Gateway)
NOTIFIER = web.AppKey("notifier", QueueNotifier)
