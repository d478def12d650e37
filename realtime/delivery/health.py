"""This node's view of its own health (read by /readyz, set by the drain and the subscriber)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class NodeState:
    """What this node knows about its own health."""

    draining: bool = False
    # Set by the Redis manager when one is configured: is our subscription alive?
    subscription_alive: Callable[[], Awaitable[dict[str, bool]]] | None = None
