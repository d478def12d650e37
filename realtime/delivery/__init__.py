"""Delivery: getting stored messages to this node's connections, in order, exactly once each.

Owns: per-user ordered delivery with gap fill and replay (`fanout`), the store poller under
it (`follower`), the framed-once WebSocket write path (`wire`), the Redis subscriber that
feeds it from other processes, subscribed per user (`subscriber`), what stock Socket.IO
emitters send (`ingest`), and the node's own health (`health`).
May import: `realtime.broadcast`, `realtime.store` (read side), `realtime.domain`, the
metrics, python-socketio/engineio and aiohttp. Never `realtime.web`.
"""
