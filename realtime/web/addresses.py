"""A cap on the connections one peer address holds before any of them is a real user.

The idle timeout (REALTIME_IDLE_TIMEOUT) bounds how long one silent socket lives; this bounds
how many one address can open meanwhile, so a single host cannot fill the node's file
descriptors with sockets that never authenticate. A connection stops counting once it carries
a Socket.IO connect with a valid token (`vouch`). Proxies listed as trusted are exempt: every
user behind them shares their address, so the per-client cap belongs in the proxy (see
docs/production.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class AddressCap:
    def __init__(
        self,
        limit: int,
        *,
        trusted: frozenset[str] = frozenset(),
        refused: Callable[[], None] = lambda: None,
    ) -> None:
        self.limit = limit
        self.trusted = trusted
        self.refused = refused
        # Per address, the transports not vouched for yet. Closed ones are pruned lazily (on
        # the next connect from that address, and by `prune`): no hook on every close.
        self.pending: dict[str, set[asyncio.BaseTransport]] = {}

    def protocol_factory(
        self, inner: Callable[[], asyncio.BaseProtocol]
    ) -> Callable[[], asyncio.BaseProtocol]:
        """Wraps aiohttp's protocol factory: each connection is checked once, at accept,
        then handed to aiohttp's own protocol (set_protocol: nothing added per byte)."""

        def factory() -> asyncio.BaseProtocol:
            return _Admission(self, inner())

        return factory

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if address in self.trusted:
            return True
        held = self.pending.get(address)
        if held is None:
            held = self.pending[address] = set()
        elif len(held) >= self.limit:
            held.difference_update([t for t in held if t.is_closing()])
            if len(held) >= self.limit:
                self.refused()
                return False
        held.add(transport)
        return True

    def vouch(self, transport: Any) -> None:
        """This connection carries an authenticated user: it no longer counts."""
        if transport is None:
            return
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        held = self.pending.get(address)
        if held is not None:
            held.discard(transport)

    def prune(self) -> None:
        for address, held in list(self.pending.items()):
            held.difference_update([t for t in held if t.is_closing()])
            if not held:
                del self.pending[address]

    def counted(self, address: str) -> int:
        return sum(1 for t in self.pending.get(address, ()) if not t.is_closing())


class _Admission(asyncio.Protocol):
    def __init__(self, cap: AddressCap, inner: asyncio.BaseProtocol) -> None:
        self.cap = cap
        self.inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.cap.admit(transport):
            transport.abort()  # type: ignore[attr-defined]
            return
        transport.set_protocol(self.inner)
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # only a refused connection ends here: an admitted one belongs to `inner`
