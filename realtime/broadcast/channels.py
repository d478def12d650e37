"""The Redis channels of a deployment, by name.

- `realtime#user:<id>`: one per user. Every stored message of that user (and "refresh its
  lists") goes there, and only nodes holding a connection of that user subscribe, so a node
  hears only its own users' messages. Sharded pub/sub (SSUBSCRIBE/SPUBLISH) on a Redis Cluster.
- `realtime`: python-socketio's stock `RedisManager(channel="realtime", write_only=True)`
  publishes there (it has one channel for everything); every node listens.
- `socket.io#/#<room>#`: Node's stock `@socket.io/redis-emitter` (default key) publishes a room's
  messages there; every node listens to the pattern.
- `realtime#node:<host>`: a node's pings to itself, proving it hears the channel it listens on.
"""

from __future__ import annotations

USER_PREFIX = "realtime#user:"
PY_EMITTER = "realtime"
NODE_EMITTER_PATTERN = "socket.io#/#*"
NODE_PREFIX = "realtime#node:"


def user_channel(user_id: str) -> str:
    return USER_PREFIX + user_id


def user_of(channel: str) -> str | None:
    return channel[len(USER_PREFIX) :] if channel.startswith(USER_PREFIX) else None


def node_channel(host_id: str, tag: str = "") -> str:
    return f"{NODE_PREFIX}{host_id}{tag}"
