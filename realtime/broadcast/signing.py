"""What our publishers put on the Redis channel is signed, so that a node can tell it from
anything else that reaches the channel.

The key is derived from REALTIME_JWT_SECRET, which every node and publisher of a deployment
shares. A node delivers a signed message as it came; an unsigned one (a process without the
secret, a stock emitter) or a forged one is only a hint: the node sends what the store holds
up to that seq, never the channel's payload, so its cursor can never pass the store.
"""

from __future__ import annotations

import hashlib
import hmac

# Hex digits kept of the HMAC-SHA256: 128 bits.
SIG_LENGTH = 32


def channel_key(jwt_secret: str | None) -> bytes | None:
    if not jwt_secret:
        return None
    return hashlib.sha256(b"realtime channel v1\0" + jwt_secret.encode()).digest()


def signature(key: bytes, room: str, payload: bytes) -> str:
    # hmac.digest: the one-shot C path, several times cheaper than hmac.new (hot path).
    return hmac.digest(key, room.encode() + b"\n" + payload, "sha256").hex()[:SIG_LENGTH]


def verified(key: bytes | None, room: str, payload: bytes, sig: object) -> bool:
    return (
        key is not None
        and isinstance(sig, str)
        and hmac.compare_digest(sig, signature(key, room, payload))
    )
