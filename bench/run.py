"""`python -m bench`: ours vs bare python-socketio vs Node socket.io, same Redis, same load.

One run starts a private redis-server, then for every scenario and every server: a fresh server
process, the Node load generator(s) (`bench/node/load.js`), and a publisher process of the
server's kind; it measures the window, stops everything it started (by PID), and moves on. Only
one server runs at a time: the machine's cores are shared by server, load generator, publisher
and Redis, so every figure comes with the CPU it cost (with --pin: the server alone on one
core). With --redis-cluster it then runs ours again on a private three-master Redis Cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import report
from .procs import (
    BenchError,
    Child,
    CpuWindow,
    free_port,
    pin_cpus,
    raise_nofile,
    rss_kb,
    settle,
    stop_all,
    tail,
    wait_http,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NODE_DIR = BENCH / "node"
RESULTS = BENCH / "results"
PY = sys.executable

SERVERS = ("ours", "bare", "node")
SHARD = 2500  # connections per load-generator process
INFLIGHT = 100  # handshakes in flight, over all load generators


@dataclass(frozen=True)
class Scenario:
    name: str
    clients: int
    rooms: int
    rate: float | None  # publishes/s; 0: flat out (bounded by --max-outstanding); None: idle
    warmup: float
    window: float
    about: str
    connect_timeout: float = 120.0
    # Clients of other users (no deliveries) that connect during the measured window.
    burst: int = 0
    # The clients are other users (`x<i>`) than those the publisher writes to (`u<k>`): every
    # message is for users this server does not hold. The window runs from `go` until the
    # server is idle after the publisher's last message; warmup and window are unused.
    foreign: bool = False
    count: int = 0  # messages the publisher sends (0: unbounded)


def scenarios(quick: bool) -> dict[str, Scenario]:
    if quick:
        items = [
            Scenario(
                "saturation", 200, 40, 0, 1.0, 3.0, "200 clients / 40 rooms, publisher flat out"
            ),
            Scenario("one_room", 200, 1, 0, 1.0, 3.0, "200 clients in one room, flat out"),
            Scenario("p99_1k", 500, 100, 500, 1.0, 3.0, "500 publishes/s, 500 clients, 5 a room"),
            Scenario(
                "p99_5k", 1000, 40, 200, 1.0, 3.0, "1,000 clients, 25 a room, 200 publishes/s"
            ),
            Scenario("memory", 1000, 200, None, 0.0, 0.0, "1,000 idle connections", 60.0),
            Scenario(
                "p99_burst",
                1000,
                40,
                200,
                1.0,
                3.0,
                "1,000 clients, 200 publishes/s, while 1,000 more connect",
                burst=1000,
            ),
            Scenario(
                "foreign",
                10,
                200,
                20_000,
                0.0,
                0.0,
                "10 clients; 20,000 messages at 20,000/s for 200 users not on this server",
                foreign=True,
                count=20_000,
            ),
        ]
    else:
        items = [
            Scenario(
                "saturation",
                1000,
                200,
                0,
                2.0,
                10.0,
                "1,000 clients / 200 rooms, publisher flat out",
            ),
            Scenario("one_room", 1000, 1, 0, 2.0, 10.0, "1,000 clients in one room, flat out"),
            Scenario(
                "p99_1k", 1000, 200, 1000, 2.0, 10.0, "1,000 publishes/s, 1,000 clients, 5 a room"
            ),
            Scenario(
                "p99_5k", 5000, 200, 200, 2.0, 10.0, "5,000 clients, 25 a room, 200 publishes/s"
            ),
            Scenario("memory", 10000, 200, None, 0.0, 0.0, "10,000 idle connections", 150.0),
            Scenario(
                "p99_burst",
                5000,
                200,
                200,
                2.0,
                10.0,
                "5,000 clients, 200 publishes/s, while 5,000 more connect",
                burst=5000,
            ),
            Scenario(
                "foreign",
                10,
                200,
                20_000,
                0.0,
                0.0,
                "10 clients; 100,000 messages at 20,000/s for 200 users not on this server",
                foreign=True,
                count=100_000,
            ),
        ]
    return {s.name: s for s in items}


@dataclass
class StoreConfig:
    seconds: float
    concurrency: tuple[int, ...]
    rooms: int = 200


ALL_SCENARIOS = (
    "saturation",
    "one_room",
    "p99_1k",
    "p99_5k",
    "p99_burst",
    "foreign",
    "memory",
    "store",
)
# The cluster column (ours only): the publishing scenarios where sharded pub/sub changes the
# path, kept to three so that a full run pays about a minute for it.
CLUSTER_SCENARIOS = ("saturation", "p99_1k", "foreign")
CLUSTER = "ours_cluster"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- environment ------------------------------------------------------------------------------


def ensure_node_deps() -> None:
    stamp = NODE_DIR / "node_modules" / ".installed"
    lock = NODE_DIR / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError("npm not found: Node 18+ and npm are needed for the load generator")
    log("installing the Node side (npm ci in bench/node)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )
    stamp.touch()


def node_exe() -> str:
    node = shutil.which("node")
    if node is None:
        raise BenchError("node not found: Node 18+ is needed")
    return node


def redis_exe() -> str:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(exe).exists():
        raise BenchError("redis-server not found (make redis-server installs Debian's)")
    return exe


def redis_argv(exe: str, port: int, directory: Path, logfile: Path) -> list[str]:
    return [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--logfile",
        str(logfile),
        # Flat-out publishers bound the backlog themselves (--max-outstanding); Redis
        # must not cut a subscriber that is briefly behind.
        "--client-output-buffer-limit",
        "pubsub 0 0 0",
        "--maxclients",
        "1000",
    ]


def wait_redis(port: int, child: Child, logfile: Path, timeout: float = 10.0) -> None:
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            break
        with contextlib.suppress(Exception):
            if redis.Redis(port=port, socket_connect_timeout=0.2).ping():
                return
        time.sleep(0.05)
    raise BenchError(f"redis-server on :{port} did not start: {tail(logfile)}")


class Redis:
    def __init__(self, tmp: Path) -> None:
        exe = redis_exe()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        logfile = tmp / "redis-server.log"
        self.child = Child(
            "redis", redis_argv(exe, self.port, tmp, logfile), log_dir=tmp, stdin=False
        )
        wait_redis(self.port, self.child, logfile)

    @property
    def pid(self) -> int:
        return self.child.pid

    def version(self) -> str:
        import redis

        with contextlib.suppress(Exception):
            return str(redis.Redis(port=self.port).info("server")["redis_version"])
        return "?"

    def stop(self) -> None:
        self.child.stop(5.0)


def cluster_port(taken: list[int]) -> int:
    """A free port whose cluster bus port (+10000) is free and in range too."""
    for _ in range(200):
        port = free_port()
        if port in taken or port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise BenchError("no free port pair for a Redis Cluster node")


class RedisCluster:
    """A private Redis Cluster of `masters` masters, no replicas, no persistence; every node is
    a Child, stopped by its PID (by stop(), or by stop_all() when the run fails)."""

    def __init__(self, tmp: Path, masters: int = 3) -> None:
        exe = redis_exe()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise BenchError("redis-cli not found: it creates the cluster")
        self.cli = cli
        self.ports: list[int] = []
        self.nodes: list[Child] = []
        try:
            for _ in range(masters):
                port = cluster_port(self.ports)
                d = tmp / f"cluster-{port}"
                d.mkdir()
                argv = redis_argv(exe, port, d, d / "redis-server.log")
                argv += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
                self.nodes.append(Child(f"redis-cluster-{port}", argv, log_dir=tmp, stdin=False))
                self.ports.append(port)
            for port, node in zip(self.ports, self.nodes, strict=True):
                wait_redis(port, node, tmp / f"cluster-{port}" / "redis-server.log")
            created = subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{p}" for p in self.ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if created.returncode != 0:
                last = (created.stdout + created.stderr).strip().splitlines()[-3:]
                raise BenchError(f"redis-cli --cluster create: exit {created.returncode}: {last}")
            self._wait_ok(30.0)
        except BaseException:
            self.stop()
            raise

    def _state(self, port: int) -> str:
        done = subprocess.run(
            [self.cli, "-p", str(port), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        for line in done.stdout.splitlines():
            if line.startswith("cluster_state:"):
                return line.split(":", 1)[1].strip()
        return "?"

    def _wait_ok(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(self.ports)
        while waiting and time.monotonic() < deadline:
            waiting = [p for p in waiting if self._state(p) != "ok"]
            if waiting:
                time.sleep(0.2)
        if waiting:
            raise BenchError(f"redis cluster: no cluster_state:ok on {waiting} in {timeout:.0f}s")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(5.0)


class Postgres:
    """Fresh databases on the local PostgreSQL (user postgres, trust), dropped afterwards."""

    DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

    def __init__(self) -> None:
        self.created: list[str] = []

    @classmethod
    def reachable(cls) -> str | None:
        async def q() -> str:
            import asyncpg

            conn = await asyncpg.connect(cls.DSN, timeout=2)
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        try:
            return asyncio.run(asyncio.wait_for(q(), 5))
        except Exception:
            return None

    def _exec(self, sql: str) -> None:
        async def q() -> None:
            import asyncpg

            conn = await asyncpg.connect(self.DSN, timeout=5)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(asyncio.wait_for(q(), 30))

    def create(self) -> str:
        name = f"bench_{secrets.token_hex(6)}"
        self._exec(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        try:
            self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:
            log(f"warning: could not drop database {name}: {exc}")
        else:
            with contextlib.suppress(ValueError):
                self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(f"x/{name}")


# ---- servers and publishers -------------------------------------------------------------------


@dataclass
class Server:
    kind: str  # ours | bare | node
    child: Child
    port: int
    db_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick: bool = args.quick
        self.tmp = Path(tempfile.mkdtemp(prefix="realtime-bench-"))
        self.secret = secrets.token_urlsafe(48)
        self.redis: Redis | None = None
        self.pg = Postgres()
        self.deadline = time.monotonic() + args.max_minutes * 60
        self.node = node_exe()
        self.report_keys: list[str] = []
        self.cluster: RedisCluster | None = None
        # --pin: the server alone on one core, what drives it on the other; Redis and
        # PostgreSQL float (they are shared by every peer alike).
        self.server_cpus: frozenset[int] | None = None
        self.client_cpus: frozenset[int] | None = None
        if args.pin:
            self.server_cpus, self.client_cpus = pin_cpus()

    # -- environment for ours --
    def ours_env(self, db_url: str, redis_url: str | None = None) -> dict[str, str]:
        assert self.redis is not None
        env = dict(os.environ)
        env.update(
            REALTIME_JWT_SECRET=self.secret,
            REALTIME_REDIS_URL=redis_url or self.redis.url,
            REALTIME_DATABASE_URL=db_url,
            REALTIME_MAX_CONNECTIONS_PER_USER="100000",
            PYTHONDONTWRITEBYTECODE="1",
        )
        return env

    def ours_db(self, label: str, db: str) -> str:
        if db == "postgres":
            return self.pg.create()
        return f"sqlite+aiosqlite:///{self.tmp / (label + '.db')}"

    def drop_db(self, url: str | None) -> None:
        if url and url.startswith("postgresql"):
            self.pg.drop(url)

    def start_server(self, column: str, scenario: str) -> Server:
        assert self.redis is not None
        kind = column.split("_")[0]
        port = free_port()
        name = f"{scenario}-{column}-server"
        if kind == "ours":
            db = "postgres" if column == "ours_pg" or self.args.db == "postgres" else "sqlite"
            db_url = self.ours_db(f"{scenario}-{column}", db)
            redis_url = None
            if column == CLUSTER:
                if self.cluster is None:
                    raise BenchError("no Redis Cluster running")
                redis_url = self.cluster.url
            env = self.ours_env(db_url, redis_url)
            child = Child(
                name,
                [PY, "-m", "realtime", "serve", "--port", str(port)],
                log_dir=self.tmp,
                env=env,
                cwd=str(ROOT),
                stdin=False,
                cpus=self.server_cpus,
            )
            server = Server(kind, child, port, db_url, env)
            try:
                wait_http(f"{server.url}/readyz", child, 60)
            except BenchError:
                self.stop_server(server)
                raise
            return server
        if kind == "bare":
            argv = [PY, "-m", "bench.bare_server", "--port", str(port), "--redis", self.redis.url]
        else:
            argv = [
                self.node,
                str(NODE_DIR / "server.js"),
                "--port",
                str(port),
                "--redis",
                self.redis.url,
            ]
        child = Child(
            name, argv, log_dir=self.tmp, cwd=str(ROOT), stdin=False, cpus=self.server_cpus
        )
        server = Server(kind, child, port)
        try:
            wait_http(f"{server.url}/healthz", child, 30)
        except BenchError:
            self.stop_server(server)
            raise
        return server

    def stop_server(self, server: Server) -> None:
        # Its clients are gone already; a graceful drain is not what is measured.
        server.child.stop(4.0)
        self.drop_db(server.db_url)

    def start_publisher(self, server: Server, sc: Scenario, name: str) -> Child:
        assert self.redis is not None and sc.rate is not None
        duration = sc.warmup + sc.window + 30  # stopped by command after the window
        if sc.foreign:
            # Ends by --max; the duration only bounds a publisher far slower than the rate.
            duration = max(30.0, sc.count / 2000 + 30)
        common = [
            "--rooms",
            str(sc.rooms),
            "--rate",
            str(sc.rate),
            "--duration",
            str(duration),
            # Foreign: nobody receives, so no room sizes and no backlog to bound.
            "--clients",
            str(0 if sc.foreign else sc.clients),
            "--delivered-keys",
            "" if sc.foreign else ",".join(self.report_keys),
            "--max-outstanding",
            str(self.args.max_outstanding),
        ]
        if sc.count:
            common += ["--max", str(sc.count)]
        cpus = self.client_cpus
        if server.kind == "ours":
            # Not capped by the number of rooms: concurrent calls for one user are the store's
            # business (it serialises them on the user's stream row, or batches them).
            conc = self.args.ours_concurrency
            argv = [
                PY,
                "-m",
                "bench.publish_py",
                "--mode",
                "ours",
                *common,
                "--concurrency",
                str(conc),
                "--check",
                "--prefix",
                sc.name[:3],
                # The load generators' counts stay on the plain Redis, also in a cluster run.
                "--redis",
                self.redis.url,
            ]
            return Child(name, argv, log_dir=self.tmp, env=server.env, cwd=str(ROOT), cpus=cpus)
        if server.kind == "bare":
            conc = 16 if sc.rate == 0 else 64
            argv = [
                PY,
                "-m",
                "bench.publish_py",
                "--mode",
                "bare",
                "--redis",
                self.redis.url,
                *common,
                "--concurrency",
                str(conc),
            ]
            return Child(name, argv, log_dir=self.tmp, cwd=str(ROOT), cpus=cpus)
        argv = [self.node, str(NODE_DIR / "publish.js"), "--redis", self.redis.url, *common]
        return Child(name, argv, log_dir=self.tmp, cwd=str(ROOT), cpus=cpus)

    def start_burst(self, server: Server, sc: Scenario) -> Child:
        """A load generator whose clients are other users (`x<i>`): they get no deliveries,
        they only connect, during the window, while the measured clients are served."""
        argv = [self.node, str(NODE_DIR / "load.js"), "--url", server.url]
        argv += ["--mode", "ours" if server.kind == "ours" else "plain"]
        argv += ["--n", str(sc.burst), "--rooms", str(sc.rooms), "--user-prefix", "x"]
        argv += ["--inflight", str(INFLIGHT), "--connect-timeout", str(int(sc.connect_timeout))]
        argv += ["--max-seconds", str(int(sc.connect_timeout + sc.warmup + sc.window + 300))]
        env = dict(os.environ, BENCH_JWT_SECRET=self.secret)
        burst = Child(
            f"{sc.name}-{server.kind}-burst", argv, log_dir=self.tmp, env=env, cpus=self.client_cpus
        )
        burst.expect("ready", 20)
        return burst

    def start_loadgens(self, server: Server, sc: Scenario) -> list[Child]:
        shards = max(1, math.ceil(sc.clients / SHARD))
        per = math.ceil(sc.clients / shards)
        inflight = max(1, INFLIGHT // shards)
        assert self.redis is not None
        env = dict(os.environ, BENCH_JWT_SECRET=self.secret)
        gens = []
        run_id = secrets.token_hex(4)
        self.report_keys = [f"bench:delivered:{run_id}:{i}" for i in range(shards)]
        for i in range(shards):
            n = min(per, sc.clients - i * per)
            argv = [
                self.node,
                str(NODE_DIR / "load.js"),
                "--url",
                server.url,
                "--mode",
                "ours" if server.kind == "ours" else "plain",
                "--n",
                str(n),
                "--rooms",
                str(sc.rooms),
                "--user-prefix",
                "x" if sc.foreign else "u",
                "--offset",
                str(i * per),
                "--inflight",
                str(inflight),
                "--redis",
                self.redis.url,
                "--report-key",
                self.report_keys[i],
                "--connect-timeout",
                str(int(sc.connect_timeout)),
                "--max-seconds",
                str(int(sc.connect_timeout + sc.warmup + sc.window + 300)),
            ]
            gens.append(
                Child(
                    f"{sc.name}-{server.kind}-load{i}",
                    argv,
                    log_dir=self.tmp,
                    env=env,
                    cwd=str(ROOT),
                    cpus=self.client_cpus,
                )
            )
        for g in gens:
            g.expect("ready", 20)
        return gens

    # -- one scenario on one server --
    def redis_pids(self, column: str) -> list[int]:
        assert self.redis is not None
        pids = [self.redis.pid]
        if column == CLUSTER and self.cluster is not None:
            pids += self.cluster.pids
        return pids

    def run_one(self, sc: Scenario, column: str) -> dict[str, Any]:
        res: dict[str, Any] = {"server": column}
        server = self.start_server(column, sc.name)
        gens: list[Child] = []
        # The measured load generators and, with a burst, the one that only connects.
        gens_to_stop: list[Child] = []
        burst: Child | None = None
        pub: Child | None = None
        try:
            time.sleep(0.3)
            rss0 = rss_kb(server.child.pid)
            gens = self.start_loadgens(server, sc)
            gens_to_stop.extend(gens)
            for g in gens:
                g.send("connect")
            conns = [g.expect("connected", sc.connect_timeout + 15) for g in gens]
            ok = sum(c["ok"] for c in conns)
            span = max(c["endMs"] for c in conns) - min(c["startMs"] for c in conns)
            errors: dict[str, int] = {}
            for c in conns:
                for k, v in c["errors"].items():
                    errors[k] = errors.get(k, 0) + v
            res.update(
                clients=sc.clients,
                connected=ok,
                connectFailed=sum(c["failed"] for c in conns),
                connectPending=sum(c.get("pending", 0) for c in conns),
                connectErrors=errors,
                connectSeconds=span / 1000,
                connectRate=ok / (span / 1000) if span > 0 else None,
            )
            if self.server_cpus is not None:
                res["cpus"] = {"server": server.child.cpus, "loadgen": gens[0].cpus}
            # The settling pause doubles as the server's idle baseline (its timers, its GC).
            idle = CpuWindow({"server": [server.child.pid]})
            idle.start()
            time.sleep((2.0 if self.quick else 3.0) if sc.rate is None else 1.0)
            res["serverIdleCpuPercent"] = idle.stop()["cpuPercent"]["server"]
            rss1 = rss_kb(server.child.pid)
            res.update(
                rssBeforeKB=rss0,
                rssAfterKB=rss1,
                rssPerConnKB=(rss1 - rss0) / ok if ok else None,
            )
            log(
                f"{sc.name}/{column}: {ok}/{sc.clients} connected in {span / 1000:.1f}s "
                f"({res['connectRate'] or 0:.0f}/s), RSS {rss0 / 1024:.0f}->{rss1 / 1024:.0f} MB "
                f"({res['rssPerConnKB'] or 0:.1f} KB/conn)"
                + (f", errors {errors}" if errors else "")
            )
            if ok == 0:
                raise BenchError(f"{sc.name}/{column}: no client connected ({errors})")
            if sc.rate is None:
                return res

            pub = self.start_publisher(server, sc, f"{sc.name}-{column}-publisher")
            pub.expect("ready", 60)
            if self.client_cpus is not None:
                res["cpus"]["publisher"] = pub.cpus
            if sc.burst:
                burst = self.start_burst(server, sc)
                gens_to_stop.append(burst)
            cpu = CpuWindow(
                {
                    "server": [server.child.pid],
                    "loadgen": [g.pid for g in gens_to_stop],
                    "publisher": [pub.pid],
                    "redis": self.redis_pids(column),
                }
            )
            if sc.foreign:
                self.foreign_window(sc, column, server, gens, pub, cpu, res)
                return res
            pub.send("go")
            time.sleep(sc.warmup)
            for g in gens:
                g.send("start")
            for g in gens:
                g.expect("started", 10)
            cpu.start()
            pub.send("count")
            count0 = pub.expect("count", 10)
            if burst is not None:
                burst.send("connect")
            time.sleep(sc.window)
            usage = cpu.stop()
            pub.send("count")
            for g in gens:
                g.send("stop")
            windows = [g.expect("window", 20) for g in gens]
            count1 = pub.expect("count", 10)
            if burst is not None:
                b = burst.expect("connected", sc.connect_timeout + 15)
                res["burst"] = {k: b.get(k) for k in ("ok", "failed", "seconds", "rate")}
                log(
                    f"{sc.name}/{column}: burst {b['ok']}/{sc.burst} connected in "
                    f"{b['seconds']:.1f}s ({b['rate'] or 0:.0f}/s), errors {b.get('errors') or {}}"
                )
            pub.send("stop")
            done = pub.expect("done", 90)
            res.update(report.window_stats(windows, usage))
            res.update(report.publisher_stats(count0, count1, usage))
            res["publisher"] = {k: v for k, v in done.items() if k not in ("event", "perRoom")}
            # Everything published must arrive: wait (bounded) for the backlog to drain.
            expected = expected_deliveries(done.get("perRoom", []), sc)
            t_drain = time.monotonic()
            limit = 3.0 if sc.rate else (2.0 if self.quick else 5.0)
            received, disconnects, order_errors = self.drain(gens, expected, limit)
            if self.args.verbose:
                log(f"{sc.name}/{column}: drain {time.monotonic() - t_drain:.1f}s")
            res.update(
                expectedDeliveries=expected,
                receivedDeliveries=received,
                undelivered=expected - received,
                disconnects=disconnects,
                orderErrors=order_errors,
            )
            d = res.get("deliveriesPerSec") or 0.0
            log(
                f"{sc.name}/{column}: {d:,.0f} deliveries/s, p50 {fmt_ms(res.get('p50Ms'))} "
                f"p99 {fmt_ms(res.get('p99Ms'))}, server CPU {res['serverCpuPercent']:.0f}% "
                f"({fmt_us(res.get('serverCpuUsPerDelivery'))}/delivery), publisher "
                f"{done.get('rate', 0):,.0f} msg/s "
                f"({fmt_us(res.get('publisherCpuUsPerMessage'))}/msg"
                + (
                    f", {res['publisherMeanInFlight']:.0f} in flight"
                    if res.get("publisherMeanInFlight") is not None
                    else ""
                )
                + f"), machine {usage['machineBusyPercent']:.0f}% busy"
                + (f", undelivered {expected - received}" if expected != received else "")
                + (f", publish errors {done.get('errors')}" if done.get("errors") else "")
            )
            return res
        finally:
            t_end = time.monotonic()
            for g in gens_to_stop:
                with contextlib.suppress(BenchError):
                    g.send("exit")
            for g in gens_to_stop:
                g.wait_exit(5.0)
            if pub is not None:
                pub.wait_exit(2.0)
            t_mid = time.monotonic()
            self.stop_server(server)
            if self.args.verbose:
                log(
                    f"{sc.name}/{column}: teardown clients {t_mid - t_end:.1f}s, server {time.monotonic() - t_mid:.1f}s"
                )

    def foreign_window(
        self,
        sc: Scenario,
        column: str,
        server: Server,
        gens: list[Child],
        pub: Child,
        cpu: CpuWindow,
        res: dict[str, Any],
    ) -> None:
        """The window is the whole bounded publish, plus the server's catching up: every
        message it has to look at is in it, so its CPU over the window is all they cost it."""
        for g in gens:
            g.send("start")
        for g in gens:
            g.expect("started", 10)
        cpu.start()
        pub.send("go")
        published = pub.expect("published", max(60.0, sc.count / 1000 + 60))
        cpu.sample()  # the publisher exits soon after
        settled = settle(server.child.pid)
        usage = cpu.stop()
        for g in gens:
            g.send("stop")
        windows = [g.expect("window", 20) for g in gens]
        # No `stop`: it has ended by --max, and may have exited already.
        done = pub.expect("done", 90)
        res.update(report.window_stats(windows, usage))
        res.update(report.foreign_stats(published, usage, res.get("serverIdleCpuPercent", 0.0)))
        res["settleSeconds"] = settled
        res["publisher"] = {k: v for k, v in done.items() if k not in ("event", "perRoom")}
        # Nobody here is a user the publisher writes to: any delivery is a misdelivery.
        received, disconnects, order_errors = self.drain(gens, 0, 0.0)
        res.update(
            expectedDeliveries=0,
            receivedDeliveries=received,
            misdelivered=received,
            disconnects=disconnects,
            orderErrors=order_errors,
        )
        log(
            f"{sc.name}/{column}: {published['sent']:,} foreign messages in "
            f"{published['seconds']:.1f}s ({res['foreignPerSec'] or 0:,.0f}/s), server CPU "
            f"{fmt_us(res.get('serverCpuUsPerForeignMessage'))}/msg "
            f"(idle {res.get('serverIdleCpuPercent', 0):.1f}%), publisher "
            f"{fmt_us(res.get('publisherCpuUsPerMessage'))}/msg, settled in {settled:.1f}s"
            + (f", MISDELIVERED {received}" if received else "")
            + (f", publish errors {done.get('errors')}" if done.get("errors") else "")
        )

    def drain(self, gens: list[Child], expected: int, limit: float) -> tuple[int, int, int]:
        deadline = time.monotonic() + limit
        last = -1
        stable_since = time.monotonic()
        while True:
            for g in gens:
                g.send("total")
            totals = [g.expect("total", 10) for g in gens]
            received = sum(t["deliveries"] for t in totals)
            disconnects = sum(t["disconnects"] for t in totals)
            order_errors = sum(t.get("orderErrors", 0) for t in totals)
            now = time.monotonic()
            if received != last:
                last, stable_since = received, now
            if received >= expected or now > deadline or now - stable_since > 1.5:
                return received, disconnects, order_errors
            time.sleep(0.2)

    # -- where ours' per-connection memory goes (bench/memory.py, its own process) --
    def run_memory_profile(self, clients: int) -> dict[str, Any]:
        out = self.tmp / "memory-profile.json"
        argv = [PY, "-m", "bench.memory", "--clients", str(clients), "--rooms", "200"]
        argv += ["--max-seconds", "240", "--json", str(out)]
        try:
            done = subprocess.run(
                argv, cwd=str(ROOT), capture_output=True, text=True, timeout=270, check=False
            )
        except subprocess.TimeoutExpired:
            raise BenchError("memory profile: no result within 270 s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BenchError(f"memory profile: exit {done.returncode}: {last}")
        log(f"memory profile: {clients} clients, {done.stdout.count(chr(10))} report lines")
        profile: dict[str, Any] = json.loads(out.read_text())
        return profile

    # -- ours' receive path alone (bench/receive.py, its own process) --
    def run_receive(self, messages: int) -> dict[str, Any]:
        assert self.redis is not None
        out = self.tmp / "receive.json"
        argv = [PY, "-m", "bench.receive", "--redis", self.redis.url]
        argv += ["--messages", str(messages), "--json", str(out)]
        try:
            done = subprocess.run(
                argv, cwd=str(ROOT), capture_output=True, text=True, timeout=180, check=False
            )
        except subprocess.TimeoutExpired:
            raise BenchError("receive path: no result within 180 s") from None
        if done.returncode != 0 or not out.exists():
            last = (done.stderr.strip().splitlines() or done.stdout.splitlines() or ["?"])[-1]
            raise BenchError(f"receive path: exit {done.returncode}: {last}")
        log(done.stdout.strip())
        result: dict[str, Any] = json.loads(out.read_text())
        return result

    # -- the store scenario (ours only, no server) --
    def run_store(self, cfg: StoreConfig, databases: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for db in databases:
            for conc in cfg.concurrency:
                label = f"store-{db}-c{conc}"
                url = self.ours_db(label, db)
                try:
                    env = self.ours_env(url)
                    argv = [
                        PY,
                        "-m",
                        "bench.publish_py",
                        "--mode",
                        "ours",
                        "--rooms",
                        str(cfg.rooms),
                        "--rate",
                        "0",
                        "--duration",
                        str(cfg.seconds),
                        "--concurrency",
                        str(conc),
                        "--max-outstanding",
                        "0",
                        "--check",
                        "--prefix",
                        "s",
                    ]
                    pub = Child(
                        label, argv, log_dir=self.tmp, env=env, cwd=str(ROOT), cpus=self.client_cpus
                    )
                    try:
                        pub.expect("ready", 60)
                        assert self.redis is not None
                        cpu = CpuWindow({"publisher": [pub.pid], "redis": [self.redis.pid]})
                        cpu.start()
                        pub.send("go")
                        done = pub.expect("done", cfg.seconds + 90)
                        usage = cpu.stop()
                    finally:
                        pub.wait_exit(5.0)
                finally:
                    self.drop_db(url)
                entry = {
                    "database": db,
                    "concurrency": conc,
                    "stored": done["sent"],
                    "seconds": done["seconds"],
                    "storedPerSec": done["rate"],
                    "errors": done["errors"],
                    "errorSamples": done.get("errorSamples", []),
                    "gapFree": done.get("gapFree"),
                    "publisherCpuPercent": usage["cpuPercent"]["publisher"],
                    "machineBusyPercent": usage["machineBusyPercent"],
                }
                out[f"{db}_c{conc}"] = entry
                gap = (done.get("gapFree") or {}).get("ok")
                log(
                    f"store/{db} c={conc}: {done['rate']:,.0f} stored msgs/s, gap-free {gap}, "
                    f"publisher CPU {entry['publisherCpuPercent']:.0f}%"
                    + (f", errors {done['errors']}" if done["errors"] else "")
                )
        return out


def expected_deliveries(per_room: list[int], sc: Scenario) -> int:
    sizes = [0] * sc.rooms
    for i in range(sc.clients):
        sizes[i % sc.rooms] += 1
    return sum(c * s for c, s in zip(per_room, sizes, strict=False))


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} ms"


def fmt_us(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} us"


# ---- machine ----------------------------------------------------------------------------------


def machine(redis_version: str, pg_version: str | None) -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    osname = "?"
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip('"')

    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return "?"

    def pkg(name: str) -> str:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as v

        try:
            return v(name)
        except PackageNotFoundError:
            return "?"

    def npm_pkg(name: str) -> str:
        with contextlib.suppress(Exception):
            return str(
                json.loads((NODE_DIR / "node_modules" / name / "package.json").read_text())[
                    "version"
                ]
            )
        return "?"

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ramGB": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": osname,
        "python": platform.python_version(),
        "node": version(["node", "--version"]),
        "redis": redis_version,
        "postgres": pg_version,
        "python-socketio": pkg("python-socketio"),
        "python-engineio": pkg("python-engineio"),
        "aiohttp": pkg("aiohttp"),
        "socket.io": npm_pkg("socket.io"),
        "socket.io-client": npm_pkg("socket.io-client"),
        "@socket.io/redis-adapter": npm_pkg("@socket.io/redis-adapter"),
        "@socket.io/redis-emitter": npm_pkg("@socket.io/redis-emitter"),
        "git": version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        + (
            " (dirty)"
            if version(["git", "-C", str(ROOT), "status", "--porcelain", "realtime"])
            else ""
        ),
    }


# ---- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="small N, short windows, no cluster column (~3 minutes)",
    )
    p.add_argument("--only", default=",".join(SERVERS), help="servers: ours,bare,node")
    p.add_argument(
        "--scenarios",
        default=",".join(ALL_SCENARIOS),
        help="comma-separated: " + ",".join(ALL_SCENARIOS),
    )
    p.add_argument(
        "--db",
        choices=("sqlite", "postgres", "both"),
        default="sqlite",
        help="ours' database for the fan-out scenarios (both: an extra column ours_pg); "
        "the store scenario always runs SQLite, and PostgreSQL when reachable",
    )
    p.add_argument(
        "--max-outstanding",
        type=int,
        default=20_000,
        help="flat-out publishers stay at most this many deliveries ahead of the clients",
    )
    p.add_argument(
        "--ours-concurrency",
        type=int,
        default=64,
        help="Tracker calls in flight in ours' publisher (the issue's figures need 16 or more)",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="the server alone on CPU 0, load generators and publisher on CPU 1 "
        "(Redis and PostgreSQL unpinned)",
    )
    p.add_argument(
        "--redis-cluster",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run ours on a private three-master Redis Cluster (column ours_cluster: "
        + ", ".join(CLUSTER_SCENARIOS)
        + "); default: on for a full run, off with --quick",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="bound on the whole run: scenarios not started by then are skipped (default 15, --quick 6)",
    )
    p.add_argument(
        "--report",
        metavar="JSON",
        default=None,
        help="run nothing: print the table of a results file (with --write-md: into BENCHMARKS.md)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log step timings")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite files)")
    md = p.add_mutually_exclusive_group()
    md.add_argument("--write-md", action="store_true", help="always rewrite BENCHMARKS.md")
    md.add_argument("--no-md", action="store_true", help="never rewrite BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.max_minutes is None:
        args.max_minutes = 6.0 if args.quick else 15.0
    if args.redis_cluster is None:
        args.redis_cluster = not args.quick
    args.servers = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = set(args.servers) - set(SERVERS)
    if bad:
        p.error(f"--only: unknown {sorted(bad)}")
    args.scenario_names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = set(args.scenario_names) - set(ALL_SCENARIOS)
    if bad:
        p.error(f"--scenarios: unknown {sorted(bad)}")
    return args


def run_column(bench: Bench, results: dict[str, Any], sc: Scenario, column: str) -> bool:
    """One scenario on one column; a failure is recorded in that column (the table shows it
    there) and in the failures list, and the run goes on."""
    entry = results["scenarios"][sc.name]
    if time.monotonic() > bench.deadline:
        results["failures"].append(f"{sc.name}/{column}: skipped, --max-minutes reached")
        return True
    try:
        entry["servers"][column] = bench.run_one(sc, column)
    except BenchError as exc:
        log(f"FAILED {sc.name}/{column}: {exc}")
        results["failures"].append(f"{sc.name}/{column}: {exc}")
        entry["servers"][column] = {"server": column, "failed": str(exc)}
        return False
    return True


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def rerender(args: argparse.Namespace) -> int:
    path = Path(args.report).resolve()
    results = json.loads(path.read_text())
    results["table"] = report.table_rows(results)
    results["targets"] = report.targets(results)
    print(report.render_table(results))
    if args.write_md:
        with contextlib.suppress(ValueError):
            path = path.relative_to(ROOT)
        (ROOT / "BENCHMARKS.md").write_text(report.markdown(results, path))
        print("BENCHMARKS.md updated")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return rerender(args)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    nofile = raise_nofile()
    try:
        ensure_node_deps()
        bench = Bench(args)
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        log(f"error: {exc}")
        return 2
    columns = []
    for s in args.servers:
        if s == "ours" and args.db == "both":
            columns += ["ours", "ours_pg"]
        else:
            columns.append(s)
    cluster_names = [n for n in args.scenario_names if n in CLUSTER_SCENARIOS]
    with_cluster = bool(args.redis_cluster and "ours" in args.servers and cluster_names)
    pg_version = Postgres.reachable()
    if args.db in ("postgres", "both") and pg_version is None:
        log("error: --db postgres but PostgreSQL on 127.0.0.1:5432 is not reachable")
        return 2
    all_sc = scenarios(args.quick)
    notes: list[str] = []
    # Each connection is a file descriptor in the server and one in a load generator.
    room = nofile - 256
    for name, sc in list(all_sc.items()):
        if sc.clients > room:
            all_sc[name] = replace(sc, clients=max(room, 1))
            notes.append(f"{name}: {sc.clients} clients capped to {room} by `ulimit -n` {nofile}")
            log(f"warning: {notes[-1]}")
    results: dict[str, Any] = {
        "started": stamp,
        "quick": args.quick,
        "args": {k: v for k, v in vars(args).items() if k not in ("servers", "scenario_names")},
        "columns": columns + ([CLUSTER] if with_cluster else []),
        "scenarios": {},
        "failures": [],
        "notes": notes,
        "pin": (
            {
                "server": sorted(bench.server_cpus),
                "loadgen": sorted(bench.client_cpus or ()),
                "publisher": sorted(bench.client_cpus or ()),
                "unpinned": ["redis", "redis cluster", "postgresql", "bench.memory"],
            }
            if bench.server_cpus is not None
            else None
        ),
        "redisCluster": None,
    }
    rc = 0
    try:
        bench.redis = Redis(bench.tmp)
        results["machine"] = machine(bench.redis.version(), pg_version)
        results["machine"]["nofile"] = nofile
        log(f"private redis on :{bench.redis.port}; temp dir {bench.tmp}")
        for name in args.scenario_names:
            if name == "store":
                continue
            sc = all_sc[name]
            entry: dict[str, Any] = {"config": asdict(sc), "servers": {}}
            results["scenarios"][name] = entry
            for column in columns:
                if not run_column(bench, results, sc, column):
                    rc = 1
        if with_cluster:
            # After the other columns: the cluster's three nodes live only for their runs.
            t_cluster = time.monotonic()
            cluster_error = None
            try:
                bench.cluster = RedisCluster(bench.tmp)
                results["redisCluster"] = {
                    "masters": len(bench.cluster.ports),
                    "ports": bench.cluster.ports,
                    "url": bench.cluster.url,
                }
                log(f"private redis cluster on :{','.join(map(str, bench.cluster.ports))}")
            except (BenchError, subprocess.SubprocessError, OSError) as exc:
                cluster_error = f"redis cluster did not start: {exc}"
                results["redisCluster"] = {"error": cluster_error}
                log(f"FAILED {cluster_error}")
            try:
                for name in cluster_names:
                    sc = all_sc[name]
                    entry = results["scenarios"].setdefault(
                        name, {"config": asdict(sc), "servers": {}}
                    )
                    if cluster_error is not None:
                        entry["servers"][CLUSTER] = {"server": CLUSTER, "failed": cluster_error}
                        results["failures"].append(f"{name}/{CLUSTER}: {cluster_error}")
                        rc = 1
                    elif not run_column(bench, results, sc, CLUSTER):
                        rc = 1
            finally:
                if bench.cluster is not None:
                    bench.cluster.stop()
                    bench.cluster = None
            results["redisCluster"]["seconds"] = round(time.monotonic() - t_cluster, 1)
        if "store" in args.scenario_names and "ours" in args.servers:
            cfg = StoreConfig(seconds=1.5 if args.quick else 8.0, concurrency=(1, 64, 512))
            dbs = ["sqlite"] + (["postgres"] if pg_version else [])
            if pg_version is None:
                results["failures"].append("store/postgres: skipped, PostgreSQL not reachable")
            if time.monotonic() > bench.deadline:
                results["failures"].append("store: skipped, --max-minutes reached")
            else:
                try:
                    results["store"] = {"config": asdict(cfg), **bench.run_store(cfg, dbs)}
                except BenchError as exc:
                    log(f"FAILED store: {exc}")
                    results["failures"].append(f"store: {exc}")
                    rc = 1
        if "foreign" in args.scenario_names and "ours" in args.servers:
            try:
                results["receive"] = bench.run_receive(20_000 if args.quick else 100_000)
            except BenchError as exc:
                log(f"FAILED {exc}")
                results["failures"].append(str(exc))
                rc = 1
        if "memory" in args.scenario_names and "ours" in args.servers:
            if time.monotonic() > bench.deadline:
                results["failures"].append("memory profile: skipped, --max-minutes reached")
            else:
                try:
                    results["memoryProfile"] = bench.run_memory_profile(200 if args.quick else 1000)
                except BenchError as exc:
                    log(f"FAILED {exc}")
                    results["failures"].append(str(exc))
                    rc = 1
    except KeyboardInterrupt:
        results["failures"].append("interrupted")
        rc = 130
    except BenchError as exc:
        log(f"FAILED: {exc}")
        results["failures"].append(str(exc))
        rc = 1
    finally:
        stop_all()
        bench.pg.drop_all()
        if args.keep or rc:
            log(f"logs kept in {bench.tmp}")
        else:
            shutil.rmtree(bench.tmp, ignore_errors=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["table"] = report.table_rows(results)
    results["targets"] = report.targets(results)
    text = report.render_table(results)
    print(text)
    for f in results["failures"]:
        print(f"! {f}")
    for n in notes:
        print(f"note: {n}")
    if rc == 130:
        return rc  # interrupted: nothing worth keeping
    RESULTS.mkdir(parents=True, exist_ok=True)
    full_set = args.servers == list(SERVERS) and set(args.scenario_names) == set(ALL_SCENARIOS)
    suffix = ("-quick" if args.quick else "") + ("" if full_set else "-partial")
    path = RESULTS / f"{stamp}{suffix}.json"
    tmp_path = path.with_suffix(".json.tmp")
    tmp_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    tmp_path.replace(path)
    print(f"results: {path.relative_to(ROOT)}  ({results['seconds']:.0f} s)")
    full = not args.quick and full_set
    if args.write_md or (full and not args.no_md):
        (ROOT / "BENCHMARKS.md").write_text(report.markdown(results, path.relative_to(ROOT)))
        print("BENCHMARKS.md updated")
    return rc
