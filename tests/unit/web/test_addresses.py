"""The per-address cap's bookkeeping, with stand-in transports (the wiring is tested with real
sockets in tests/e2e/test_silent_peers.py)."""

from __future__ import annotations

from realtime.web.addresses import AddressCap


class FakeTransport:
    def __init__(self, address: str) -> None:
        self.address = address
        self.closing = False

    def get_extra_info(self, name: str) -> object:
        return (self.address, 40000) if name == "peername" else None

    def is_closing(self) -> bool:
        return self.closing


def test_an_address_is_refused_past_the_cap_until_one_of_its_connections_closes() -> None:
    refusals: list[int] = []
    cap = AddressCap(2, refused=lambda: refusals.append(1))
    a, b, c = (FakeTransport("10.0.0.9") for _ in range(3))
    assert cap.admit(a) and cap.admit(b)  # type: ignore[arg-type]
    assert not cap.admit(c)  # type: ignore[arg-type]
    a.closing = True
    assert cap.admit(c)  # type: ignore[arg-type]
    assert refusals == [1]


def test_vouched_connections_and_trusted_proxies_do_not_count() -> None:
    cap = AddressCap(1, trusted=frozenset({"10.0.0.1"}))
    user, other = FakeTransport("10.0.0.9"), FakeTransport("10.0.0.9")
    assert cap.admit(user)  # type: ignore[arg-type]
    cap.vouch(user)
    assert cap.admit(other)  # type: ignore[arg-type]
    assert all(cap.admit(FakeTransport("10.0.0.1")) for _ in range(5))  # type: ignore[arg-type]
    assert cap.counted("10.0.0.9") == 1


def test_prune_forgets_closed_connections_and_empty_addresses() -> None:
    cap = AddressCap(5)
    t = FakeTransport("10.0.0.9")
    cap.admit(t)  # type: ignore[arg-type]
    t.closing = True
    cap.prune()
    assert cap.pending == {}
