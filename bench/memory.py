"""Where each Socket.IO connection's memory and GC-tracked objects go, in our own server.

Runs the real service (realtime.web.app.create_app on SQLite in a temp dir, no Redis, not demo) in
this process on a loopback port, on the event loop `python -m realtime serve` uses, so that
tracemalloc and the gc module see it. With the server up and idle it takes a baseline (full
collection, GC-tracked objects by type, VmRSS, then tracemalloc starts and takes snapshot A);
then the Node load generator (bench/node/load.js, mode `ours`) opens N websocket connections
over U users, and after they settle the same readings are taken again (snapshot B). Reported,
per connection:

- traced bytes (B - A) and the growth of VmRSS, also net of tracemalloc's own bookkeeping;
- bytes by package of the allocating frame, and by package of the nearest caller outside the
  standard library (an allocation in asyncio or json made for aiohttp counts as aiohttp there);
- the top allocation sites, each with its nearest caller in another package;
- GC-tracked objects, in total and by type;
- how long one full gc.collect() takes idle and with the N connections held, and after
  gc.freeze(): full collections over connection objects are what stall deliveries (the
  start-up heap is frozen first, as `serve` does);
- how many objects a full collection frees once every client has left: what closed
  connections leave in reference cycles, i.e. what freezing connection objects would leak.

Tracing starts only once the server is idle: the comparison needs only what is allocated after
the baseline, and a small snapshot A keeps the RSS reading honest. Tracing still costs RSS of
its own (its tables, and malloc's overhead on them, which get_tracemalloc_memory() does not
count) and slows connects down several times over; `--no-trace` skips it for the plain VmRSS
and GC figures.

    .venv/bin/python -m bench.memory [--clients 1000] [--rooms 200] [--frames 10] [--no-trace]
                                     [--settle 2] [--max-seconds 180] [--json PATH]

Exit codes: 0 done; 2 bad arguments; 1 failure or timeout (one line on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import platform
import secrets
import shutil
import signal
import statistics
import sys
import sysconfig
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from realtime.__main__ import use_uvloop
from realtime.config import Settings
from realtime.web.app import create_app
from realtime.web.gcpacer import freeze_startup_heap

from .procs import BenchError, _die_with_parent, free_port, raise_nofile, rss_kb, tail

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node"
LOAD_JS = NODE_DIR / "load.js"

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
INFLIGHT = 100  # handshakes in flight, as bench/run.py uses
IDLE_SECONDS = 0.5  # lets the background tasks' first rounds finish before the baseline
READY_SECONDS = 30.0
STEP_SECONDS = 10.0  # bound on each start-up and teardown step
GRACE_SECONDS = 20.0  # the watchdog fires this long after --max-seconds
FD_SPARE = 256  # descriptors besides the connections (SQLite, pipes, listener)
GC_RUNS = 3
TOP_PACKAGES, TOP_SITES, TOP_TYPES = 10, 15, 15
KB = 1024.0


# ---- arguments --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block, as `python -m realtime` does.
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {value}")
        return value

    return parse


def _seconds(minimum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None
        if not (math.isfinite(value) and value >= minimum):
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {raw}")
        return value

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = _Parser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=_int_range(1, 1_000_000), default=1000)
    p.add_argument("--rooms", type=_int_range(1, 1_000_000), default=200, help="users")
    p.add_argument("--frames", type=_int_range(1, 100), default=10, help="tracemalloc depth")
    p.add_argument(
        "--no-trace",
        action="store_true",
        help="no tracemalloc: VmRSS and GC figures only, without tracing's own cost in them",
    )
    p.add_argument("--settle", type=_seconds(0.0), default=2.0, help="seconds after connecting")
    p.add_argument("--max-seconds", type=_seconds(1.0), default=180.0, help="bound on the run")
    p.add_argument("--json", metavar="PATH", default=None, help="also write the figures here")
    return p.parse_args(argv)


# ---- the server, in this process ---------------------------------------------------------------


def build_settings(tmp: Path, clients: int) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp / 'realtime.db'}",
        jwt_secret=secrets.token_urlsafe(48),
        api_key=secrets.token_urlsafe(24),
        # load.js puts clients/rooms connections on each user; the per-user cap is not measured.
        max_connections_per_user=clients,
    )


class Server:
    """create_app on an AppRunner, as `serve` runs it; migrations run in the app's startup."""

    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self.runner = runner
        self.url = url

    @classmethod
    async def start(cls, settings: Settings) -> Server:
        runner = web.AppRunner(create_app(settings), shutdown_timeout=2.0, handle_signals=False)
        await asyncio.wait_for(runner.setup(), READY_SECONDS)
        try:
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            # As serve's GcPacer starts; the pacer's later freezes are left out, to show what
            # a full collection over the connections costs without them.
            freeze_startup_heap()
            server = cls(runner, f"http://127.0.0.1:{port}")
            await server.wait_ready()
        except BaseException:
            await asyncio.wait_for(runner.cleanup(), STEP_SECONDS)
            raise
        return server

    async def wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_SECONDS
        async with ClientSession(timeout=ClientTimeout(total=2.0)) as http:
            while loop.time() < deadline:
                with contextlib.suppress(ClientError, TimeoutError):
                    async with http.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise BenchError(f"server: {self.url}/readyz not ready within {READY_SECONDS:.0f}s")

    async def stop(self) -> None:
        # on_shutdown drains (closes transports), cleanup_ctx stops the tasks and the engine.
        await asyncio.wait_for(self.runner.cleanup(), STEP_SECONDS)


# ---- the load generator ------------------------------------------------------------------------


class LoadGen:
    """bench/node/load.js: commands a line on stdin, JSON lines on stdout (see its header)."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @classmethod
    async def start(
        cls, url: str, args: argparse.Namespace, secret: str, log_path: Path
    ) -> LoadGen:
        node = shutil.which("node")
        if node is None:
            raise BenchError("node not found: Node 18+ is needed for the load generator")
        argv = [
            str(LOAD_JS),
            *("--url", url, "--mode", "ours"),
            *("--n", str(args.clients), "--rooms", str(args.rooms)),
            *("--inflight", str(INFLIGHT), "--connect-timeout", str(math.ceil(args.max_seconds))),
            # It exits by itself should this process die without telling it.
            *("--max-seconds", str(math.ceil(args.max_seconds + GRACE_SECONDS))),
        ]
        # A plain descriptor: the child gets its own copy, ours is closed once it is spawned.
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                node,
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=dict(os.environ, BENCH_JWT_SECRET=secret),
                cwd=str(ROOT),
                preexec_fn=_die_with_parent,
            )
        finally:
            os.close(log)
        return cls(proc, log_path)

    async def send(self, command: str) -> None:
        stdin = self.proc.stdin
        if stdin is None or self.proc.returncode is not None:
            raise BenchError(f"load generator is not running: {tail(self.log_path)}")
        try:
            stdin.write(f"{command}\n".encode())
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise BenchError(f"load generator: {exc}: {tail(self.log_path)}") from None

    async def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next line whose `event` is `event`; other lines are skipped."""
        try:
            async with asyncio.timeout(timeout):
                return await self._next(event)
        except TimeoutError:
            raise BenchError(
                f"load generator: no {event!r} within {timeout:.0f}s: {tail(self.log_path)}"
            ) from None

    async def _next(self, event: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                code = await self.proc.wait()
                raise BenchError(
                    f"load generator exited with {code} before {event!r}: {tail(self.log_path)}"
                )
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict) and obj.get("event") == event:
                    return obj

    async def close(self) -> None:
        """`exit` (it closes every socket), then a bounded wait; killed if it does not go."""
        if self.proc.returncode is None:
            with contextlib.suppress(BenchError):
                await self.send("exit")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), STEP_SECONDS)
        await self.kill()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), STEP_SECONDS)


# ---- readings ----------------------------------------------------------------------------------


def type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def count_objects() -> Counter[str]:
    """GC-tracked objects by type name; types are counted first so that names are built once."""
    by_type: Counter[type] = Counter(map(type, gc.get_objects()))
    return Counter({type_name(t): n for t, n in by_type.items()})


@dataclass(frozen=True)
class Mark:
    """One reading of the process, taken right after a full collection."""

    rss_bytes: int
    tracemalloc_bytes: int
    objects: Counter[str]

    @classmethod
    def take(cls) -> Mark:
        gc.collect()
        objects = count_objects()
        return cls(
            rss_bytes=rss_kb(os.getpid()) * 1024,
            tracemalloc_bytes=tracemalloc.get_tracemalloc_memory(),
            objects=objects,
        )


def loop_package() -> str:
    """`uvloop` or `asyncio`: whose event loop runs the server."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


@dataclass(frozen=True)
class GcTimes:
    tracked: int  # what a full collection traverses (frozen objects are not listed)
    frozen: int
    runs_ms: list[float]
    median_ms: float


def time_collections() -> GcTimes:
    tracked = len(gc.get_objects())
    runs = []
    for _ in range(GC_RUNS):
        t0 = time.perf_counter()
        gc.collect()
        runs.append((time.perf_counter() - t0) * 1000.0)
    return GcTimes(tracked, gc.get_freeze_count(), runs, statistics.median(runs))


def time_frozen_collections() -> GcTimes:
    """As time_collections, with what exists now moved to the permanent generation."""
    gc.collect()
    gc.freeze()
    try:
        times = time_collections()
    finally:
        gc.unfreeze()
    return times


# ---- attribution -------------------------------------------------------------------------------


DRIVER = "bench.memory"  # this module: only asyncio.run, below the loop


class Places:
    """Names the package and a short path of a source file seen in a traceback."""

    def __init__(self, loop_package: str) -> None:
        paths = sysconfig.get_paths()
        self.site = sorted({paths["purelib"], paths["platlib"]}, key=len, reverse=True)
        self.stdlib = paths["stdlib"]
        self.root = str(ROOT)
        self.loop_package = loop_package
        self.runners = str(Path(asyncio.__file__).with_name("runners.py"))

    def short(self, filename: str) -> str:
        """Relative to site-packages, the repository or the standard library."""
        for base in (*self.site, self.root, self.stdlib):
            if filename.startswith(base + os.sep):
                return filename[len(base) + 1 :]
        return filename

    def where(self, frame: tracemalloc.Frame) -> str:
        where = f"{self.short(frame.filename)}:{frame.lineno}"
        if self.package(frame.filename) == self.loop_package:
            return f"{self.loop_package} C code (under {where})"
        return where

    def package(self, filename: str) -> str:
        if filename.startswith("<frozen "):
            return "stdlib:" + filename[len("<frozen ") :].rstrip(">").split(".")[0]
        if filename.startswith("<"):
            return "unknown"
        if filename == __file__:
            return DRIVER
        if filename == self.runners and self.loop_package != "asyncio":
            # The innermost Python frame while a C event loop (uvloop) runs its own code:
            # what it allocates there (handles, read buffers) is the loop's.
            return self.loop_package
        first = self.short(filename).split(os.sep, 1)[0].removesuffix(".py")
        if any(filename.startswith(base + os.sep) for base in self.site):
            return first
        if filename.startswith(self.root + os.sep):
            return first
        if filename.startswith(self.stdlib + os.sep):
            return f"stdlib:{first}"
        return "other"


def is_plumbing(package: str) -> bool:
    """Not a caller worth naming: the standard library, or no source at all."""
    return package.startswith("stdlib:") or package in ("unknown", "other", DRIVER)


@dataclass(frozen=True)
class Share:
    """Bytes and blocks per connection of one package or one allocation site."""

    name: str
    bytes_per_conn: float
    blocks_per_conn: float
    via: str | None = None


@dataclass
class Tally:
    size: Counter[str] = field(default_factory=Counter)
    blocks: Counter[str] = field(default_factory=Counter)
    # The largest traceback of each key, to name its caller.
    largest: dict[str, tuple[int, tracemalloc.Traceback]] = field(default_factory=dict)

    def add(self, key: str, diff: tracemalloc.StatisticDiff) -> None:
        self.size[key] += diff.size_diff
        self.blocks[key] += diff.count_diff
        if diff.size_diff > self.largest.get(key, (0, diff.traceback))[0]:
            self.largest[key] = (diff.size_diff, diff.traceback)

    def top(self, conns: int, limit: int, via: Callable[[str], str | None]) -> list[Share]:
        return [
            Share(key, size / conns, self.blocks[key] / conns, via(key))
            for key, size in self.size.most_common(limit)
        ]


@dataclass(frozen=True)
class Attribution:
    traced_bytes: int
    traced_blocks: int
    by_package: list[Share]
    by_caller: list[Share]
    sites: list[Share]


def nearest_caller(
    tb: tracemalloc.Traceback, places: Places, skip: str | None
) -> tracemalloc.Frame | None:
    """The most recent frame outside the standard library and outside package `skip`."""
    for frame in reversed(tb):
        package = places.package(frame.filename)
        if not is_plumbing(package) and package != skip:
            return frame
    return None


def attribute(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, conns: int, places: Places
) -> Attribution:
    by_package, by_caller, sites = Tally(), Tally(), Tally()
    total_bytes = total_blocks = 0
    for diff in after.compare_to(before, "traceback"):
        top = diff.traceback[-1]
        if top.filename == tracemalloc.__file__:
            # Snapshot A, alive while B is taken. Skipped here: Snapshot.filter_traces would
            # take longer than the whole measurement.
            continue
        total_bytes += diff.size_diff
        total_blocks += diff.count_diff
        package = places.package(top.filename)
        caller = nearest_caller(diff.traceback, places, None)
        by_package.add(package, diff)
        by_caller.add(places.package(caller.filename) if caller else package, diff)
        sites.add(places.where(top), diff)

    def site_via(key: str) -> str | None:
        tb = sites.largest.get(key, (0, None))[1]
        if tb is None:
            return None
        frame = nearest_caller(tb, places, places.package(tb[-1].filename))
        return places.where(frame) if frame else None

    return Attribution(
        traced_bytes=total_bytes,
        traced_blocks=total_blocks,
        by_package=by_package.top(conns, TOP_PACKAGES, lambda _: None),
        by_caller=by_caller.top(conns, TOP_PACKAGES, lambda _: None),
        sites=sites.top(conns, TOP_SITES, site_via),
    )


# ---- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    clients: int
    connected: int
    failed: int
    connect_errors: dict[str, int]
    connect_seconds: float
    rooms: int
    frames: int
    loop: str
    python: str
    rss_bytes: int
    tracemalloc_bytes: int
    tracked_objects: int
    attribution: Attribution | None  # None with --no-trace
    types: list[TypeGrowth]
    gc_idle: GcTimes
    gc_loaded: GcTimes
    gc_frozen: GcTimes
    # Objects a full collection freed after every client had left: what closed connections
    # leave in reference cycles (the cost of keeping connection objects frozen).
    garbage_after_close: int = -1

    def per_conn(self) -> dict[str, float]:
        n = self.connected
        traced = self.attribution
        return {
            "tracedBytes": traced.traced_bytes / n if traced else 0.0,
            "tracedBlocks": traced.traced_blocks / n if traced else 0.0,
            "rssBytes": self.rss_bytes / n,
            "rssBytesNetOfTracemalloc": (self.rss_bytes - self.tracemalloc_bytes) / n,
            "tracemallocBytes": self.tracemalloc_bytes / n,
            "trackedObjects": self.tracked_objects / n,
        }


@dataclass(frozen=True)
class TypeGrowth:
    name: str
    per_conn: float


def object_growth(before: Counter[str], after: Counter[str], conns: int) -> list[TypeGrowth]:
    growth = Counter({name: after[name] - before.get(name, 0) for name in after})
    return [TypeGrowth(name, n / conns) for name, n in growth.most_common(TOP_TYPES)]


def quiet_teardown() -> None:
    """After a failure, the server's complaints about the handshakes cut short by killing the
    clients are noise: the one line that says what failed is what is reported."""
    logging.disable(logging.CRITICAL)


class Run:
    """One measurement; `phase` and `pid` are read by the watchdog thread."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="realtime-memory-"))
        self.secret = ""
        self.phase = "starting"
        self.pid: int | None = None

    async def main(self) -> Report:
        try:
            async with asyncio.timeout(self.args.max_seconds):
                return await self._serve()
        except TimeoutError:
            raise BenchError(
                f"timed out after {self.args.max_seconds:g}s while {self.phase}"
            ) from None

    async def _serve(self) -> Report:
        settings = build_settings(self.tmp, self.args.clients)
        self.secret = settings.jwt_secret or ""
        self.phase = "starting the server"
        server = await Server.start(settings)
        try:
            report = await self._measure(server)
        except BaseException:
            # `phase` keeps naming the step that failed.
            quiet_teardown()
            tracemalloc.stop()
            await server.stop()
            raise
        self.phase = "stopping the server"
        await server.stop()
        return report

    async def _measure(self, server: Server) -> Report:
        await asyncio.sleep(IDLE_SECONDS)
        self.phase = "taking the baseline"
        gc_idle = time_collections()
        before = Mark.take()
        snap_a = None
        if not self.args.no_trace:
            tracemalloc.start(self.args.frames)
            snap_a = tracemalloc.take_snapshot()
        self.phase = "starting the load generator"
        gen = await LoadGen.start(server.url, self.args, self.secret, self.tmp / "load.log")
        self.pid = gen.proc.pid
        try:
            report = await self._loaded(gen, before, snap_a, gc_idle)
            self.phase = "closing the clients"
            await gen.close()
            await asyncio.sleep(self.args.settle)
            self.phase = "collecting what closed connections left"
            report = replace(report, garbage_after_close=gc.collect())
        except BaseException:
            quiet_teardown()
            await gen.kill()
            raise
        return report

    async def _loaded(
        self, gen: LoadGen, before: Mark, snap_a: tracemalloc.Snapshot | None, gc_idle: GcTimes
    ) -> Report:
        await gen.expect("ready", READY_SECONDS)
        self.phase = f"connecting {self.args.clients} clients"
        await gen.send("connect")
        connected = await gen.expect("connected", self.args.max_seconds)
        conns = int(connected["ok"])
        if conns == 0:
            raise BenchError(f"no client connected: {connected.get('errors')}")
        self.phase = "settling"
        await asyncio.sleep(self.args.settle)
        self.phase = "taking the loaded readings"
        after = Mark.take()
        attribution = self._attribute(snap_a, conns)
        del snap_a
        self.phase = "timing collections"
        gc_loaded = time_collections()
        gc_frozen = time_frozen_collections()
        return Report(
            clients=self.args.clients,
            connected=conns,
            failed=int(connected.get("failed", 0)) + int(connected.get("pending", 0)),
            connect_errors=dict(connected.get("errors") or {}),
            connect_seconds=float(connected.get("seconds", 0.0)),
            rooms=self.args.rooms,
            frames=0 if self.args.no_trace else self.args.frames,
            loop=loop_package(),
            python=platform.python_version(),
            rss_bytes=after.rss_bytes - before.rss_bytes,
            tracemalloc_bytes=after.tracemalloc_bytes - before.tracemalloc_bytes,
            tracked_objects=sum(after.objects.values()) - sum(before.objects.values()),
            attribution=attribution,
            types=object_growth(before.objects, after.objects, conns),
            gc_idle=gc_idle,
            gc_loaded=gc_loaded,
            gc_frozen=gc_frozen,
        )

    def _attribute(self, snap_a: tracemalloc.Snapshot | None, conns: int) -> Attribution | None:
        """Snapshot B against A, with tracing stopped first so that the work is not traced."""
        if snap_a is None:
            return None
        snap_b = tracemalloc.take_snapshot()
        tracemalloc.stop()
        self.phase = "attributing allocations"
        return attribute(snap_a, snap_b, conns, Places(loop_package()))

    def abort(self) -> None:
        """Watchdog: the loop is stuck past the bound, so no await can clean up."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        print(
            f"bench.memory: stuck past --max-seconds {self.args.max_seconds:g} while {self.phase}",
            file=sys.stderr,
            flush=True,
        )
        shutil.rmtree(self.tmp, ignore_errors=True)
        os._exit(EXIT_FAIL)


# ---- output ------------------------------------------------------------------------------------


def _kb(value: float) -> str:
    return f"{value / KB:9.2f}"


def _share_table(title: str, rows: list[Share], total: float) -> list[str]:
    lines = [title, f"  {'KB/conn':>9} {'blocks':>8} {'share':>6}  package"]
    for r in rows:
        pct = 100.0 * r.bytes_per_conn / total if total else 0.0
        lines.append(f"  {_kb(r.bytes_per_conn)} {r.blocks_per_conn:8.1f} {pct:5.1f}%  {r.name}")
    return lines


def _sites_table(rows: list[Share]) -> list[str]:
    lines = [
        f"Top {TOP_SITES} allocation sites (innermost frame)",
        "  via: the nearest caller in another package, on the site's largest traceback",
        f"  {'KB/conn':>9} {'blocks':>8}  site",
    ]
    for r in rows:
        lines.append(f"  {_kb(r.bytes_per_conn)} {r.blocks_per_conn:8.1f}  {r.name}")
        if r.via:
            lines.append(f"  {'':>9} {'':>8}    via {r.via}")
    return lines


def _gc_line(label: str, t: GcTimes) -> str:
    runs = ", ".join(f"{ms:.1f}" for ms in t.runs_ms)
    frozen = f" ({t.frozen:,} frozen)" if t.frozen else ""
    return f"  {label:<24} {t.median_ms:7.1f} ms median ({runs}), {t.tracked:,} tracked{frozen}"


def _mb_kb(label: str, total: float, per_conn: float) -> str:
    return f"  {label:<38} {total / KB / KB:9.1f} MB {per_conn / KB:13.2f} KB"


def _totals(r: Report) -> list[str]:
    per = r.per_conn()
    lines = [f"  {'':<38} {'total':>12} {'per connection':>16}"]
    if r.attribution is not None:
        lines += [
            _mb_kb("traced by tracemalloc (B - A)", r.attribution.traced_bytes, per["tracedBytes"]),
            f"  {'  in blocks':<38} {r.attribution.traced_blocks:12,} {per['tracedBlocks']:16.1f}",
        ]
    lines.append(_mb_kb("VmRSS growth", r.rss_bytes, per["rssBytes"]))
    if r.attribution is not None:
        lines += [
            _mb_kb(
                "  of which tracemalloc bookkeeping", r.tracemalloc_bytes, per["tracemallocBytes"]
            ),
            _mb_kb(
                "VmRSS growth net of tracemalloc",
                r.rss_bytes - r.tracemalloc_bytes,
                per["rssBytesNetOfTracemalloc"],
            ),
        ]
    lines.append(
        f"  {'GC-tracked objects':<38} {r.tracked_objects:12,} {per['trackedObjects']:16.1f}"
    )
    return lines


def _attribution(a: Attribution, conns: int) -> list[str]:
    total = a.traced_bytes / conns
    return [
        *_share_table(
            f"Bytes per connection by package of the allocating frame (top {TOP_PACKAGES})",
            a.by_package,
            total,
        ),
        "",
        *_share_table(
            f"Bytes per connection by package of the nearest non-stdlib caller (top {TOP_PACKAGES})",
            a.by_caller,
            total,
        ),
        "",
        *_sites_table(a.sites),
        "",
    ]


def render(r: Report) -> str:
    n = r.connected
    tracing = f"tracemalloc {r.frames} frames" if r.frames else "no tracemalloc"
    lines = [
        f"Socket.IO connection memory: realtime.web.app in-process on {r.loop}, Python {r.python}",
        f"{n}/{r.clients} clients connected over {r.rooms} users in {r.connect_seconds:.1f}s; "
        + tracing,
    ]
    if r.failed:
        lines.append(f"WARNING: {r.failed} clients did not connect: {r.connect_errors}")
    lines += [
        "",
        *_totals(r),
        "",
        *(_attribution(r.attribution, n) if r.attribution is not None else []),
        f"GC-tracked objects per connection by type (top {TOP_TYPES})",
        *(f"  {t.per_conn:9.2f}  {t.name}" for t in r.types),
        "",
        f"Full gc.collect(), {GC_RUNS} runs (tracemalloc off)",
        _gc_line("idle server", r.gc_idle),
        _gc_line(f"with {n} connections", r.gc_loaded),
        _gc_line("same after gc.freeze()", r.gc_frozen),
        f"  after all {n} clients left: a full collection freed {r.garbage_after_close:,} "
        f"objects ({r.garbage_after_close / n:.1f} per closed connection)",
    ]
    return "\n".join(lines)


def to_json(r: Report) -> dict[str, Any]:
    data = asdict(r)
    data["perConnection"] = r.per_conn()
    return data


# ---- main --------------------------------------------------------------------------------------


def check_environment(clients: int) -> None:
    nofile = raise_nofile()
    if clients + FD_SPARE > nofile:
        raise BenchError(
            f"--clients {clients} needs `ulimit -n` >= {clients + FD_SPARE}, is {nofile}"
        )
    if not (NODE_DIR / "node_modules").is_dir():
        raise BenchError(f"{NODE_DIR / 'node_modules'} is missing: run `npm ci` in {NODE_DIR}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_environment(args.clients)
    except BenchError as exc:
        print(f"bench.memory: {exc}", file=sys.stderr)
        return EXIT_USAGE
    use_uvloop()
    run = Run(args)
    watchdog = threading.Timer(args.max_seconds + GRACE_SECONDS, run.abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        report = asyncio.run(run.main())
    except BenchError as exc:
        print(f"bench.memory: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    finally:
        watchdog.cancel()
        shutil.rmtree(run.tmp, ignore_errors=True)
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(report), indent=2) + "\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
