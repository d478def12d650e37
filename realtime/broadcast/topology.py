"""Single Redis or Redis Cluster, and which master serves a channel."""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass

from redis.crc import key_slot

from .resp import Address, RespConnection


@dataclass(frozen=True)
class Topology:
    """`masters` is empty for a single Redis; for a cluster, each master with the slot ranges
    it serves (`starts`/`ends`/`owners`, sorted by start)."""

    masters: tuple[Address, ...] = ()
    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()
    owners: tuple[int, ...] = ()

    @property
    def cluster(self) -> bool:
        return bool(self.masters)

    def master_of(self, channel: str) -> int:
        """The index in `masters` of the master serving `channel`'s slot (-1: none)."""
        slot = key_slot(channel.encode())
        i = bisect.bisect_right(self.starts, slot) - 1
        if i >= 0 and slot <= self.ends[i]:
            return self.owners[i]
        return -1

    def channel_on(self, master: int, base: str) -> str:
        """A channel named after `base` whose slot `master` serves (for its self-pings)."""
        for n in range(100_000):
            name = f"{base}#{n}"
            if self.master_of(name) == master:
                return name
        raise ValueError("no slot of that master")


async def discover(address: Address, timeout: float = 1.0) -> Topology:
    conn = RespConnection(address)
    try:
        # A Redis that accepts and then says nothing (loading, or a dead path) must not
        # hang whoever asks: the whole exchange is bounded, not only the connect.
        async with asyncio.timeout(timeout * 2):
            await conn.open(timeout)
            info = await conn.request("INFO", "cluster")
            if isinstance(info, Exception) or b"cluster_enabled:1" not in bytes(info):
                return Topology()
            slots = await conn.request("CLUSTER", "SLOTS")
            if isinstance(slots, Exception):
                raise ConnectionError(f"CLUSTER SLOTS: {slots}")
    finally:
        await conn.close()
    masters: list[Address] = []
    ranges: list[tuple[int, int, int]] = []
    for entry in slots:
        start, end, primary = int(entry[0]), int(entry[1]), entry[2]
        host = primary[0].decode() or address.host
        node = address.at(host, int(primary[1]))
        if node not in masters:
            masters.append(node)
        ranges.append((start, end, masters.index(node)))
    ranges.sort()
    return Topology(
        tuple(masters),
        tuple(r[0] for r in ranges),
        tuple(r[1] for r in ranges),
        tuple(r[2] for r in ranges),
    )
