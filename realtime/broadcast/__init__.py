"""Broadcast: how a process that stored a message tells the serving nodes about it.

Owns: the `Broadcast` port and its implementations (`base`: none, in-process; `redis`: each
user's channel, sharded on a Redis Cluster), the `Outbox`, the one place where "store, then
send" is written, and what publisher and subscriber share about Redis: the channel names
(`channels`), a batch-reading RESP connection (`resp`) and the cluster's slot map (`topology`).
Publishing never fails because of fan-out: the message is already stored, and the nodes'
followers deliver it from the store if the live path loses it.
May import: `realtime.store` (for `Stored`), `realtime.domain`, `realtime.codec`, redis.
Never the server side (delivery, web): a publishing process loads none of it.
"""
