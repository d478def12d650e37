"""A private three-master Redis Cluster on loopback, for tests of the sharded pub/sub path.

Each master is a `redis-server --cluster-enabled yes` this class started, in its own
directory under the test's tmp dir; `restart(i)` SIGKILLs one by PID and starts it again on
the same port with the same nodes.conf, so it rejoins as the same node owning the same slots.
Only the processes started here are ever signalled, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

SLOTS = 16384
START_TIMEOUT = 10.0
FORM_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def pick_ports(n: int) -> list[int]:
    """`n` free loopback ports below the kernel's ephemeral range, so that no outgoing
    connection can take one while its master is down for a restart."""
    high = _ephemeral_low() - 1
    if high < 13000:  # an unusual range: any free port will have to do
        high = 65000
    rng = random.Random()
    ports: list[int] = []
    for _ in range(2000):
        p = rng.randint(12000, high)
        if p in ports or not _bindable(p):
            continue
        ports.append(p)
        if len(ports) == n:
            return ports
    raise RuntimeError(f"no {n} free loopback ports below {high}")


@dataclass
class Master:
    port: int
    bus_port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, socket_connect_timeout=0.5, socket_timeout=2.0, decode_responses=True
        )

    def command(self, *args: str) -> Any:
        """One command on this master, on a connection of its own (callers may be threads)."""
        with contextlib.closing(self.client()) as r:
            return r.execute_command(*args)  # type: ignore[no-untyped-call]


class RedisCluster:
    """`start()` forms the cluster; `url` is the first master's (any master is a seed)."""

    def __init__(self, tmp: Path, masters: int = 3, node_timeout_ms: int = 15000) -> None:
        self.tmp = Path(tmp)
        # Kept at Redis's default: a restart shorter than this never marks the master failed,
        # so the other shards keep serving throughout, as in a rolling restart.
        self.node_timeout_ms = node_timeout_ms
        ports = pick_ports(2 * masters)
        self.masters = [
            Master(ports[i], ports[masters + i], self.tmp / f"redis-{ports[i]}")
            for i in range(masters)
        ]
        exe = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        assert exe and cli, "redis-server and redis-cli are needed (Debian's redis-server)"
        self.exe, self.cli = exe, cli

    # ---- addresses -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.masters[0].url

    @property
    def ports(self) -> list[int]:
        return [m.port for m in self.masters]

    def owner_of(self, key: str | bytes) -> int:
        """The index of the master that owns `key`'s slot (a channel name for SSUBSCRIBE)."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        by_port = {m.port: i for i, m in enumerate(self.masters)}
        for start, end, owner, *_ in self.masters[0].command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return by_port[int(owner[1])]
        raise AssertionError(f"slot {slot} of {key!r} is not assigned")

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        try:
            for m in self.masters:
                m.dir.mkdir(parents=True, exist_ok=True)
                self._spawn(m)
            for m in self.masters:
                self._wait_pinging(m)
            self._create()
            self.wait_ok(FORM_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, m: Master) -> None:
        m.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(m.port),
                # Explicit, so the bus port (port + 10000 by default) is known to be free.
                "--cluster-port",
                str(m.bus_port),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{m.port}.conf",
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "no",
                "--dir",
                str(m.dir),
                "--logfile",
                str(m.log),
            ],
            cwd=m.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _wait_pinging(self, m: Master, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert m.proc is not None
            if m.proc.poll() is not None:
                raise RuntimeError(f"redis-server on {m.port} exited: {self._tail(m)}")
            with contextlib.suppress(redis.RedisError), contextlib.closing(m.client()) as r:
                if r.ping():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on {m.port} did not answer PING: {self._tail(m)}")

    def _create(self) -> None:
        out = subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{m.port}" for m in self.masters),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=FORM_TIMEOUT,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed: {out.stdout.decode()[-2000:]}"
                f"{out.stderr.decode()[-2000:]}"
            )

    def info(self, i: int) -> dict[str, str]:
        raw = self.masters[i].command("CLUSTER", "INFO")
        text = raw if isinstance(raw, str) else raw.decode()
        return dict(
            line.split(":", 1) for line in text.splitlines() if ":" in line and line.strip()
        )

    def _healthy(self, i: int) -> bool:
        try:
            info = self.info(i)
        except redis.RedisError:
            return False
        # slots_ok, not just the state: a peer still flagging the restarted master PFAIL has
        # not reconnected to it yet.
        return (
            info.get("cluster_state") == "ok"
            and info.get("cluster_slots_ok") == str(SLOTS)
            and info.get("cluster_known_nodes") == str(len(self.masters))
        )

    def wait_ok(self, timeout: float = 30.0) -> float:
        """Wait until every master reports the whole cluster ok; returns the seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while not all(self._healthy(i) for i in range(len(self.masters))):
            if time.monotonic() > deadline:
                states = {m.port: self._safe_state(i) for i, m in enumerate(self.masters)}
                raise RuntimeError(f"cluster not ok after {timeout} s: {states}")
            time.sleep(0.05)
        return time.monotonic() - t0

    def _safe_state(self, i: int) -> str:
        try:
            info = self.info(i)
        except redis.RedisError as exc:
            return f"unreachable ({exc})"
        return f"{info.get('cluster_state')} slots_ok={info.get('cluster_slots_ok')}"

    def kill(self, i: int) -> None:
        """SIGKILL master `i` (by PID): a crash, no shutdown save, no goodbye to the peers."""
        m = self.masters[i]
        if m.proc is not None and m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait(STOP_TIMEOUT)
        m.proc = None

    def revive(self, i: int, timeout: float = 30.0) -> None:
        """Start master `i` again on its port with its nodes.conf; return once the whole
        cluster is ok (a restarted master reports ok only ~2 s after it rejoins)."""
        m = self.masters[i]
        assert m.proc is None, "revive() follows kill()"
        self._spawn(m)
        self._wait_pinging(m)
        self.wait_ok(timeout)

    def restart(self, i: int, down_for: float = 0.0, timeout: float = 30.0) -> None:
        """kill(i), `down_for` seconds of outage, revive(i): blocking, so from async code run
        it (or its halves) in a thread."""
        self.kill(i)
        if down_for:
            time.sleep(down_for)
        self.revive(i, timeout)

    def stop(self) -> None:
        for m in self.masters:
            if m.proc is not None and m.proc.poll() is None:
                m.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    m.proc.wait(STOP_TIMEOUT)
            m.proc = None

    @staticmethod
    def _tail(m: Master) -> str:
        with contextlib.suppress(OSError):
            return m.log.read_text(errors="replace")[-1500:]
        return "(no log)"
