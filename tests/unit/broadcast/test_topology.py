"""Which cluster master serves a channel, and the RESP encoding the subscriber writes."""

from __future__ import annotations

from redis.crc import key_slot

from realtime.broadcast.resp import Address, encode
from realtime.broadcast.topology import Topology


def three_masters() -> Topology:
    masters = tuple(Address("127.0.0.1", p) for p in (7001, 7002, 7003))
    return Topology(masters, (0, 5461, 10923), (5460, 10922, 16383), (0, 1, 2))


def test_a_channel_is_served_by_the_master_owning_its_slot() -> None:
    topo = three_masters()
    for name in ("realtime#user:alice", "realtime#user:bob", "x"):
        slot = key_slot(name.encode())
        assert topo.master_of(name) == (0 if slot <= 5460 else 1 if slot <= 10922 else 2)


def test_each_master_gets_a_ping_channel_of_its_own_slots() -> None:
    topo = three_masters()
    for i in range(3):
        assert topo.master_of(topo.channel_on(i, "realtime#node:h")) == i


def test_a_single_redis_is_not_a_cluster() -> None:
    assert not Topology().cluster


def test_commands_are_encoded_as_resp_arrays_of_bulk_strings() -> None:
    assert (
        encode("PUBLISH", "ch", b"\x00x") == b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\n\x00x\r\n"
    )


def test_a_url_gives_host_port_and_credentials() -> None:
    a = Address.from_url("rediss://u:p%40ss@redis.internal:6380/0")
    assert (a.host, a.port, a.username, a.password, a.tls) == (
        "redis.internal",
        6380,
        "u",
        "p@ss",
        True,
    )


def test_a_unix_socket_url_names_its_path() -> None:
    a = Address.from_url("unix://:secret@/run/redis/redis.sock")
    assert (a.path, a.password) == ("/run/redis/redis.sock", "secret")
