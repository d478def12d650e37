"""Broadcast: how a process that stored a message tells the serving nodes about it.

Owns: the `Broadcast` port and its implementations (`base`: none, in-process; `redis`: the
shared channel), and the `Outbox`, the one place where "store, then send" is written.
Publishing never fails because of fan-out: the message is already stored, and the nodes'
followers deliver it from the store if the live path loses it.
May import: `realtime.store` (for `Stored`), `realtime.domain`, `realtime.codec`, redis.
Never the server side (delivery, web): a publishing process loads none of it.
"""
