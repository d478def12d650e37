"""What our publishers put on the Redis channels is sealed, so that a node can tell it from
anything else that reaches them.

The key is derived from REALTIME_JWT_SECRET, which every node and publisher of a deployment
shares. A sealed message is `rt1 <tag><json>`: the tag is a keyed BLAKE2b (16 bytes) of the JSON bytes
exactly as they travel, so checking it needs no re-encoding and one pass of a hash (the
receive path of every live delivery). A node delivers a sealed message's payload as it came;
anything unsealed (a process without the secret, a stock emitter) or forged is only a hint:
the node sends what the store holds up to that seq, never the channel's payload, so its
cursor can never pass the store.
"""

from __future__ import annotations

import hashlib
import hmac

MAGIC = b"rt1 "
# Bytes of the tag (raw, not hex: Redis is binary-safe): 128 bits.
TAG_LENGTH = 16
_BODY = len(MAGIC) + TAG_LENGTH


def channel_key(jwt_secret: str | None) -> bytes | None:
    if not jwt_secret:
        return None
    return hashlib.sha256(b"realtime channel v1\0" + jwt_secret.encode()).digest()


class Sealer:
    """Seals and checks with one key. The keyed hash state is built once and copied for each
    message: cheaper than keying a new one every time."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hashlib.blake2b(key=key, digest_size=TAG_LENGTH)

    def tag(self, body: bytes) -> bytes:
        h = self._keyed.copy()
        h.update(body)
        return h.digest()

    def seal(self, body: bytes) -> bytes:
        return MAGIC + self.tag(body) + body

    def unseal(self, raw: bytes) -> tuple[bytes, bool]:
        """The JSON body of `raw`, and whether it carries a valid seal."""
        if raw[:4] != MAGIC:
            return raw, False
        body = raw[_BODY:]
        return body, hmac.compare_digest(raw[4:_BODY], self.tag(body))


def sealer(key: bytes | None) -> Sealer | None:
    return None if key is None else Sealer(key)


def unseal(seal: Sealer | None, raw: bytes) -> tuple[bytes, bool]:
    if seal is None:
        return (raw[_BODY:], False) if raw[:4] == MAGIC else (raw, False)
    return seal.unseal(raw)
