"""Child processes (each stopped by its own PID), free ports, and /proc readings."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import resource
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# Every child this run started and has not reaped yet, so that a failing run still stops them.
_LIVE: dict[int, Child] = {}


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile(want: int = 65536) -> int:
    """Raise the soft open-files limit (inherited by children) as far as the hard one allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the orchestrator dies, even by SIGKILL, so that
    no server or load generator outlives a crashed run (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def _preexec(cpus: frozenset[int] | None) -> Callable[[], None]:
    def run() -> None:
        _die_with_parent()
        # Before exec, as taskset does: a thread inherits its creator's affinity, and set on
        # the PID afterwards it would miss the threads Node or Python have started by then.
        if cpus:
            os.sched_setaffinity(0, cpus)

    return run


def pin_cpus() -> tuple[frozenset[int], frozenset[int]]:
    """(the server's CPU, everyone else's that is pinned): the first two this process may use."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        raise BenchError(f"--pin needs two CPUs, this process may use {allowed}")
    return frozenset(allowed[:1]), frozenset(allowed[1:2])


class Child:
    """A child process with a line protocol: JSON lines on stdout, commands on stdin."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        stdin: bool = True,
        cpus: frozenset[int] | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            cwd=cwd,
            text=True,
            bufsize=1,
            preexec_fn=_preexec(cpus),
        )
        self.pid = self.proc.pid
        # What the kernel holds, not what was asked: the results record it.
        self.cpus: list[int] | None = None
        if cpus:
            with contextlib.suppress(OSError):
                self.cpus = sorted(os.sched_getaffinity(self.pid))
        _LIVE[self.pid] = self
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = {"event": "text", "text": line}
            if isinstance(obj, dict):
                self.lines.put(obj)

    def send(self, command: str) -> None:
        if self.proc.stdin is None or self.proc.poll() is not None:
            raise BenchError(f"{self.name} is not running (see {self.log_path})")
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise BenchError(f"{self.name}: {exc} (see {self.log_path})") from None

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next line whose `event` is `event` (others are skipped), within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(
                    f"{self.name}: no {event!r} within {timeout:.0f}s (see {self.log_path})"
                )
            try:
                obj = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise BenchError(
                        f"{self.name} exited with {self.proc.returncode} before {event!r}: "
                        f"{tail(self.log_path)}"
                    ) from None
                continue
            if obj.get("event") == event:
                return obj

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; only this child's own PID."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                if f is not None:
                    f.close()
        with contextlib.suppress(Exception):
            self._log.close()
        _LIVE.pop(self.pid, None)

    def wait_exit(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        self.stop(1.0)


def stop_all() -> None:
    for child in list(_LIVE.values()):
        child.stop(2.0)


def tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# ---- /proc ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        raw = f.read()
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine_cpu() -> tuple[float, float]:
    """(busy, total) seconds over all CPUs since boot."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


class CpuWindow:
    """CPU used by some processes and by the whole machine between start() and stop()."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.t0 = 0.0
        self.cpu0: dict[str, float] = {}
        self.m0 = (0.0, 0.0)
        # A process that has exited and been reaped keeps the CPU it was last read at, rather
        # than counting as 0 (a negative share); sample() reads them all on the way.
        self._last: dict[int, float] = {}

    def _read(self) -> dict[str, float]:
        res: dict[str, float] = {}
        for name, pids in self.pids.items():
            total = 0.0
            for pid in pids:
                with contextlib.suppress(OSError, ValueError):
                    self._last[pid] = cpu_seconds(pid)
                total += self._last.get(pid, 0.0)
            res[name] = total
        return res

    def sample(self) -> None:
        self._read()

    def start(self) -> None:
        self.cpu0 = self._read()
        self.m0 = machine_cpu()
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, Any]:
        cpu1 = self._read()
        m1 = machine_cpu()
        wall = time.monotonic() - self.t0
        used = {name: cpu1[name] - self.cpu0.get(name, 0.0) for name in cpu1}
        busy = m1[0] - self.m0[0]
        total = m1[1] - self.m0[1]
        return {
            "wallSeconds": wall,
            "cpuSeconds": used,
            "cpuPercent": {name: 100.0 * v / wall for name, v in used.items()},
            "machineBusyPercent": 100.0 * busy / total if total else None,
        }


def settle(pid: int, *, step: float = 0.2, limit: float = 5.0) -> float:
    """Wait until `pid` is idle (at most one clock tick of CPU in `step`) or `limit` passes:
    what it still has queued (a socket full of messages) belongs to the window. Returns the
    seconds waited."""
    t0 = time.monotonic()
    tick = 1.0 / CLK_TCK
    try:
        last = cpu_seconds(pid)
        while time.monotonic() - t0 < limit:
            time.sleep(step)
            now = cpu_seconds(pid)
            if now - last <= tick + 1e-9:
                break
            last = now
    except (OSError, ValueError):
        pass
    return time.monotonic() - t0


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(r.status == 200)
    except Exception:
        return False


def wait_http(url: str, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise BenchError(
                f"{child.name} exited with {child.proc.returncode}: {tail(child.log_path)}"
            )
        if http_ok(url, 1.0):
            return
        time.sleep(0.1)
    raise BenchError(f"{child.name}: {url} not ready within {timeout:.0f}s: {tail(child.log_path)}")
