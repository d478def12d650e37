"""Turning raw windows into figures, the comparison table, and BENCHMARKS.md."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_STEP = math.log(1.01)  # load.js buckets: 1 % wide, over microseconds


def _bucket_ms(b: int) -> float:
    return 0.0 if b <= 0 else math.exp((b + 0.5) * LOG_STEP) / 1000.0


def percentiles(hist: dict[int, int], qs: tuple[float, ...]) -> dict[float, float | None]:
    total = sum(hist.values())
    if not total:
        return {q: None for q in qs}
    keys = sorted(hist)
    res: dict[float, float | None] = {}
    for q in qs:
        rank = max(1, math.ceil(q * total))
        seen = 0
        for b in keys:
            seen += hist[b]
            if seen >= rank:
                res[q] = _bucket_ms(b)
                break
    return res


def window_stats(windows: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    hist: dict[int, int] = {}
    for w in windows:
        for k, v in w["hist"].items():
            hist[int(k)] = hist.get(int(k), 0) + int(v)
    deliveries = sum(int(w["deliveries"]) for w in windows)
    seconds = max(float(w["seconds"]) for w in windows)
    pct = percentiles(hist, (0.5, 0.9, 0.99, 0.999))
    maxes = [w["maxMs"] for w in windows if w.get("maxMs") is not None]
    cpu = usage["cpuSeconds"]
    pcts = usage["cpuPercent"]
    res = {
        "deliveries": deliveries,
        "windowSeconds": seconds,
        "deliveriesPerSec": deliveries / seconds if seconds else None,
        "p50Ms": pct[0.5],
        "p90Ms": pct[0.9],
        "p99Ms": pct[0.99],
        "p999Ms": pct[0.999],
        "maxMs": max(maxes) if maxes else None,
        "negativeLatencies": sum(int(w.get("late", 0)) for w in windows),
        "perServerCore": None,
        "serverCpuPercent": pcts["server"],
        # The CPU window (read here) and the counting window (in the load generators, which
        # read their commands a little late when busy) differ by a few ms: normalise by rate.
        "serverCpuUsPerDelivery": (
            cpu["server"] / (deliveries / seconds * usage["wallSeconds"]) * 1e6
            if deliveries
            else None
        ),
        "loadgenCpuPercent": pcts["loadgen"],
        "publisherCpuPercent": pcts["publisher"],
        "redisCpuPercent": pcts["redis"],
        "machineBusyPercent": usage["machineBusyPercent"],
        "cpuWindowSeconds": usage["wallSeconds"],
    }
    res["boundBy"] = bound_by(res)
    if res["serverCpuUsPerDelivery"]:
        res["perServerCore"] = 1e6 / res["serverCpuUsPerDelivery"]
    return res


def bound_by(w: dict[str, Any]) -> str:
    """What limited a flat-out window: the busiest process at >= 85 % of a core, else all the
    machine's cores, else nothing CPU-bound (waiting: e.g. the store's commit latency)."""
    procs = {
        "server": w.get("serverCpuPercent") or 0.0,
        "loadgen": w.get("loadgenCpuPercent") or 0.0,
        "publisher": w.get("publisherCpuPercent") or 0.0,
    }
    name, pct = max(procs.items(), key=lambda kv: kv[1])
    if pct >= 85.0:
        return f"{name} CPU"
    if (w.get("machineBusyPercent") or 0.0) >= 95.0:
        return "all cores"
    return "waiting"


# ---- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    scenario: str
    key: str
    label: str
    unit: str  # how to format: rate | ms | us | kb | pct | count | bool
    better: str | None = None  # higher | lower
    target: str = ""
    # ours' value (and the whole row) -> target met?
    met: Callable[[dict[str, Any]], bool | None] | None = None


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _ge_node(vals: dict[str, Any]) -> bool | None:
    o, n = vals.get("ours"), vals.get("node")
    return None if o is None or n is None else o >= n


def _le(limit: float) -> Callable[[dict[str, Any]], bool | None]:
    return lambda vals: None if vals.get("ours") is None else vals["ours"] <= limit


def _ge(limit: float) -> Callable[[dict[str, Any]], bool | None]:
    return lambda vals: None if vals.get("ours") is None else vals["ours"] >= limit


def rows_for(results: dict[str, Any]) -> list[Row]:
    sc = results.get("scenarios", {})

    def n(name: str, default: int) -> int:
        return int(_get(sc, f"{name}.config.clients") or default)

    def rooms(name: str, default: int) -> int:
        return int(_get(sc, f"{name}.config.rooms") or default)

    def rate(name: str, default: float) -> float:
        return float(_get(sc, f"{name}.config.rate") or default)

    sat = f"{n('saturation', 1000):,} clients / {rooms('saturation', 200)} rooms"
    one = f"{n('one_room', 1000):,} clients"
    p1 = f"{rate('p99_1k', 1000):,.0f} pub/s, {n('p99_1k', 1000):,} clients"
    p5n = n("p99_5k", 5000)
    p5 = f"{p5n:,} clients, {rate('p99_5k', 200) * p5n / rooms('p99_5k', 200):,.0f} deliveries/s"
    pbn = n("p99_burst", 5000)
    pb = f"{pbn:,} clients while {int(_get(sc, 'p99_burst.config.burst') or 0):,} more connect"
    mem = n("memory", 10000)
    return [
        Row(
            "saturation",
            "deliveriesPerSec",
            f"saturation ({sat}): deliveries/s",
            "rate",
            "higher",
            ">= node",
            _ge_node,
        ),
        Row(
            "saturation",
            "serverCpuUsPerDelivery",
            "saturation: server CPU per delivery",
            "us",
            "lower",
        ),
        Row(
            "saturation",
            "perServerCore",
            "saturation: deliveries per server CPU-second (1 / CPU per delivery)",
            "rate",
            "higher",
            ">= node",
            _ge_node,
        ),
        Row("saturation", "boundBy", "saturation: limited by", "text"),
        Row("saturation", "serverCpuPercent", "saturation: server CPU", "pct"),
        Row("saturation", "loadgenCpuPercent", "saturation: load generator CPU", "pct"),
        Row("saturation", "publisher.rate", "saturation: publisher msgs/s achieved", "rate"),
        Row(
            "saturation",
            "machineBusyPercent",
            "saturation: machine CPU busy (2 cores = 100 %)",
            "pct",
        ),
        Row(
            "one_room",
            "deliveriesPerSec",
            f"one room of {one}: deliveries/s",
            "rate",
            "higher",
            ">= node",
            _ge_node,
        ),
        Row(
            "one_room", "serverCpuUsPerDelivery", "one room: server CPU per delivery", "us", "lower"
        ),
        Row(
            "one_room",
            "perServerCore",
            "one room: deliveries per server CPU-second",
            "rate",
            "higher",
            ">= node",
            _ge_node,
        ),
        Row("one_room", "boundBy", "one room: limited by", "text"),
        Row("one_room", "serverCpuPercent", "one room: server CPU", "pct"),
        Row("one_room", "loadgenCpuPercent", "one room: load generator CPU", "pct"),
        Row("one_room", "publisher.rate", "one room: publisher msgs/s achieved", "rate"),
        Row("p99_1k", "p50Ms", f"p50 publish-to-client ({p1})", "ms", "lower"),
        Row("p99_1k", "p99Ms", f"p99 publish-to-client ({p1})", "ms", "lower", "<= 5 ms", _le(5.0)),
        Row("p99_1k", "deliveriesPerSec", f"deliveries/s ({p1})", "rate"),
        Row("p99_1k", "serverCpuPercent", f"server CPU ({p1})", "pct", "lower"),
        Row("p99_5k", "p50Ms", f"p50 publish-to-client ({p5})", "ms", "lower"),
        Row(
            "p99_5k", "p99Ms", f"p99 publish-to-client ({p5})", "ms", "lower", "<= 20 ms", _le(20.0)
        ),
        Row("p99_5k", "deliveriesPerSec", f"deliveries/s ({p5})", "rate"),
        Row("p99_5k", "serverCpuPercent", f"server CPU ({p5})", "pct", "lower"),
        Row("p99_burst", "p50Ms", f"p50 publish-to-client ({pb})", "ms", "lower"),
        Row("p99_burst", "p99Ms", f"p99 publish-to-client ({pb})", "ms", "lower"),
        Row("p99_burst", "burst.rate", "connect rate of that burst, conn/s", "rate", "higher"),
        Row("p99_burst", "serverCpuPercent", f"server CPU ({pb})", "pct", "lower"),
        Row(
            "saturation",
            "connectRate",
            f"connect rate, conn/s ({n('saturation', 1000):,} clients)",
            "rate",
            "higher",
        ),
        Row(
            "saturation",
            "rssPerConnKB",
            f"RSS per connection ({n('saturation', 1000):,} clients)",
            "kb",
            "lower",
        ),
        Row(
            "memory",
            "connected",
            f"connections held (of {mem:,})",
            "count",
            "higher",
            f">= {mem:,}",
            _ge(mem),
        ),
        Row(
            "memory",
            "rssPerConnKB",
            f"RSS per connection ({mem:,} idle)",
            "kb",
            "lower",
            "<= 40 KB",
            _le(40.0),
        ),
        Row("memory", "connectRate", f"connect rate, conn/s ({mem:,} clients)", "rate", "higher"),
        Row(
            "*",
            "undelivered",
            "messages not delivered (p99 scenarios, after drain)",
            "count",
            "lower",
            "0",
            lambda v: None if v.get("ours") is None else v["ours"] == 0,
        ),
        Row(
            "*",
            "orderErrors",
            "seq gaps / reorders seen by clients (ours, all scenarios)",
            "count",
            "lower",
            "0",
            lambda v: None if v.get("ours") is None else v["ours"] == 0,
        ),
        Row(
            "store",
            "sqlite_c64.storedPerSec",
            "store: stored msgs/s, SQLite, 64 concurrent",
            "rate",
            "higher",
            ">= 5,000",
            _ge(5000),
        ),
        Row(
            "store",
            "sqlite_c1.storedPerSec",
            "store: stored msgs/s, SQLite, 1 at a time",
            "rate",
            "higher",
        ),
        Row(
            "store",
            "sqlite_c512.storedPerSec",
            "store: stored msgs/s, SQLite, 512 concurrent",
            "rate",
            "higher",
        ),
        Row(
            "store",
            "postgres_c512.storedPerSec",
            "store: stored msgs/s, PostgreSQL, 512 concurrent",
            "rate",
            "higher",
            ">= 10,000",
            _ge(10000),
        ),
        Row(
            "store",
            "postgres_c64.storedPerSec",
            "store: stored msgs/s, PostgreSQL, 64 concurrent",
            "rate",
            "higher",
        ),
        Row(
            "store",
            "postgres_c1.storedPerSec",
            "store: stored msgs/s, PostgreSQL, 1 at a time",
            "rate",
            "higher",
        ),
        Row(
            "store",
            "gapFree",
            "store + fan-out publishers: seq gap-free",
            "bool",
            None,
            "yes",
            lambda v: v.get("ours"),
        ),
    ]


def _values(results: dict[str, Any], row: Row) -> dict[str, Any]:
    cols = results.get("columns", [])
    sc = results.get("scenarios", {})
    if row.scenario == "store":
        store = results.get("store") or {}
        if row.key == "gapFree":
            checks = [e.get("gapFree", {}).get("ok") for k, e in store.items() if k != "config"]
            for s in sc.values():
                for col, r in s.get("servers", {}).items():
                    if col.startswith("ours"):
                        checks.append(_get(r, "publisher.gapFree.ok"))
            checks = [c for c in checks if c is not None]
            return {"ours": all(checks) if checks else None}
        return {"ours": _get(store, row.key)}
    if row.scenario == "*":
        vals: dict[str, Any] = {}
        for col in cols:
            names = ("p99_1k", "p99_5k") if row.key == "undelivered" else tuple(sc)
            got = [_get(sc, f"{s}.servers.{col}.{row.key}") for s in names]
            got = [g for g in got if g is not None]
            if row.key == "orderErrors" and not col.startswith("ours"):
                continue
            vals[col] = sum(got) if got else None
        return vals
    return {col: _get(sc, f"{row.scenario}.servers.{col}.{row.key}") for col in cols}


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows_for(results):
        vals = _values(results, row)
        if all(v is None for v in vals.values()):
            continue
        ratios = {}
        for other in ("bare", "node"):
            o, x = vals.get("ours"), vals.get(other)
            if (
                isinstance(o, int | float)
                and isinstance(x, int | float)
                and not isinstance(o, bool)
                and x
            ):
                ratios[f"ours/{other}"] = o / x
        met = row.met(vals) if row.met else None
        out.append(
            {
                "figure": row.label,
                "unit": row.unit,
                "better": row.better,
                "values": vals,
                "ratios": ratios,
                "target": row.target,
                "met": met,
            }
        )
    return out


def fmt(v: Any, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "bool":
        return "yes" if v else "NO"
    if unit == "rate":
        return f"{v:,.0f}"
    if unit == "count":
        return f"{v:,}"
    if unit == "ms":
        return f"{v:.1f} ms" if v >= 100 else f"{v:.2f} ms"
    if unit == "us":
        return f"{v:.1f} us"
    if unit == "kb":
        return f"{v:.1f} KB"
    if unit == "pct":
        return f"{v:.0f} %"
    return str(v)


def _grid(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    cols = results.get("columns", [])
    head = ["figure", *cols, "ours/bare", "ours/node", "target"]
    body = []
    for r in results.get("table", []):
        cells = [r["figure"]]
        cells += [fmt(r["values"].get(c), r["unit"]) for c in cols]
        for k in ("ours/bare", "ours/node"):
            v = r["ratios"].get(k)
            cells.append("-" if v is None else f"{v:.2f}x")
        tgt = r["target"]
        if tgt and r["met"] is not None:
            tgt = f"{tgt} {'met' if r['met'] else 'MISSED'}"
        cells.append(tgt)
        body.append(cells)
    return head, body


def render_table(results: dict[str, Any]) -> str:
    head, body = _grid(results)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = []
    for k, row in enumerate([head, *body]):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(results: dict[str, Any]) -> str:
    head, body = _grid(results)
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|",
    ]
    for row in body:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def memory_profile_lines(profile: dict[str, Any] | None) -> list[str]:
    """The `python -m bench.memory` section: where ours' per-connection memory goes."""
    if not profile:
        return []
    n = int(profile["connected"])
    per = profile["perConnection"]
    attribution = profile.get("attribution") or {}
    callers = attribution.get("by_caller", [])[:6]
    types = profile.get("types", [])[:8]
    garbage = int(profile.get("garbage_after_close", -1))
    lines = [
        f"## Memory and the collector (ours, `python -m bench.memory`, {n:,} connections)",
        "",
        f"- Traced by tracemalloc: {per['tracedBytes'] / 1024:.1f} KB and "
        f"{per['tracedBlocks']:.0f} blocks per connection; by the nearest package outside the "
        "standard library: "
        + ", ".join(f"{c['name']} {c['bytes_per_conn'] / 1024:.1f} KB" for c in callers)
        + ".",
        f"- GC-tracked objects: {per['trackedObjects']:.0f} per connection, mostly "
        + ", ".join(f"{t['per_conn']:.0f} {t['name']}" for t in types)
        + ".",
        f"- One full collection: {profile['gc_idle']['median_ms']:.1f} ms idle (start-up heap "
        f"frozen, as `serve` does), {profile['gc_loaded']['median_ms']:.1f} ms with the "
        f"{n:,} connections held, {profile['gc_frozen']['median_ms']:.1f} ms with those frozen "
        "too. Full collections stall every delivery on the node for that long.",
    ]
    if garbage >= 0:
        lines.append(
            f"- Once every client had left, a full collection freed {garbage:,} objects "
            f"({garbage / n:.1f} per closed connection): what closed connections leave in "
            "reference cycles. `serve`'s GC pacer freezes what lives, which is safe while this "
            "stays near 0 (its memory-based sweep catches the rest)."
        )
    return [*lines, ""]


def markdown(results: dict[str, Any], json_path: Path) -> str:
    m = results.get("machine", {})
    sc = results.get("scenarios", {})
    failures = results.get("failures", [])
    cfg = {name: s.get("config", {}) for name, s in sc.items()}

    def c(name: str, key: str, default: Any = "?") -> Any:
        v = cfg.get(name, {}).get(key, default)
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else v

    machine_lines = [
        f"- CPU: {m.get('nproc')} x {m.get('cpu')} (everything shares these cores: server, load "
        "generator, publisher, Redis, PostgreSQL)",
        f"- RAM: {m.get('ramGB')} GB; kernel {m.get('kernel')}; {m.get('os')}",
        f"- Python {m.get('python')} (python-socketio {m.get('python-socketio')}, python-engineio "
        f"{m.get('python-engineio')}, aiohttp {m.get('aiohttp')}); Node {m.get('node')} (socket.io "
        f"{m.get('socket.io')}, @socket.io/redis-adapter {m.get('@socket.io/redis-adapter')}, "
        f"@socket.io/redis-emitter {m.get('@socket.io/redis-emitter')}, socket.io-client "
        f"{m.get('socket.io-client')})",
        f"- Redis {m.get('redis')} (private, loopback, no persistence); PostgreSQL {m.get('postgres') or 'not reachable'}",
        f"- realtime at {m.get('git')}; run {results.get('started')}, {results.get('seconds')} s; "
        f"raw results: `{json_path}`",
    ]
    parts = [
        "# Benchmarks",
        "",
        "`make bench` (or `.venv/bin/python -m bench`) compares, in one run and on the same private "
        "Redis, **ours** (`python -m realtime serve`: every message stored before it is sent, "
        "SQLite by default), **bare** python-socketio with the stock `AsyncRedisManager` "
        "(`bench/bare_server.py`), and **node**: socket.io 4.8 with `@socket.io/redis-adapter` "
        "(`bench/node/server.js`). Each server is driven by the same load generator "
        "(`bench/node/load.js`: socket.io-client over WebSocket, N clients over U user rooms) and "
        "a publisher process of its own kind at a set rate, through Redis: ours through "
        "`realtime.Tracker` (store, then Redis), bare through `AsyncRedisManager(write_only=True)`, "
        "node through `@socket.io/redis-emitter`. Latency is publish-to-client: the publisher "
        "stamps its wall-clock send time (ours before the store transaction) and the client "
        "subtracts it from its own.",
        "",
        "## Latest results",
        "",
        *machine_lines,
        "",
        markdown_table(results),
        "",
    ]
    if failures:
        parts += ["Failures in this run:", "", *[f"- {f}" for f in failures], ""]
    if results.get("notes"):
        parts += ["Notes:", "", *[f"- {n}" for n in results["notes"]], ""]
    parts += memory_profile_lines(results.get("memoryProfile"))
    parts += [
        "## What each figure means",
        "",
        f"- **saturation**: {c('saturation', 'clients')} clients over {c('saturation', 'rooms')} "
        "rooms; the publisher runs flat out but stays at most "
        f"{results.get('args', {}).get('max_outstanding', 20000):,} deliveries ahead of the "
        "clients (the load generators keep their counts in Redis; `--max-outstanding`), so the "
        "server always has work queued, the queue stays bounded, and the publisher burns no CPU "
        "the server needs. Latency at saturation is mostly that queue and is left out of the "
        "table. Deliveries/s are counted at the clients over a "
        f"{c('saturation', 'window')} s window after {c('saturation', 'warmup')} s of warm-up. "
        "Server CPU per delivery = the server process's utime+stime (`/proc/PID/stat`, all "
        "threads) over the window / deliveries in the window; its inverse, deliveries per server "
        "CPU-second, is what one core would carry and does not depend on who else was busy. "
        "'Limited by' names the process that was at >= 85 % of a core (or 'all cores' when the "
        "machine was >= 95 % busy, or 'waiting' when nothing was CPU-bound, e.g. ours' publisher "
        "waiting on commits): with two "
        "cores, the load generator and the publisher compete with the server, so a raw "
        "deliveries/s figure can be theirs rather than the server's.",
        f"- **one room**: the same with {c('one_room', 'clients')} clients in a single room (ours: "
        "one user, so all of its publisher's concurrent calls go to one stream).",
        f"- **p99**: a publisher at a fixed rate ({float(cfg.get('p99_1k', {}).get('rate', 0)):,.0f}/s to "
        f"{c('p99_1k', 'clients')} clients over {c('p99_1k', 'rooms')} rooms; "
        f"{float(cfg.get('p99_5k', {}).get('rate', 0)):,.0f}/s to {c('p99_5k', 'clients')} clients over "
        f"{c('p99_5k', 'rooms')} rooms); percentiles from a 1 %-wide log histogram in the load "
        "generator. After the window the run waits (bounded) until every published message has "
        "reached every client of its room: 'not delivered' counts what never arrived.",
        f"- **p99 during a connect burst**: as p99 with {c('p99_burst', 'clients')} clients "
        f"over {c('p99_burst', 'rooms')} rooms, while another load generator opens "
        f"{c('p99_burst', 'burst')} connections for other users (who get no deliveries), "
        "starting with the window: what a reconnect storm after a deploy does to everyone "
        "already connected (handshakes compete for the server's CPU; full garbage "
        "collections over a growing heap stall every delivery).",
        f"- **memory**: {c('memory', 'clients')} idle connections; RSS per connection = "
        "(VmRSS after all connected and 3 s settled - VmRSS before the first) / connections. "
        "Connect rate: connections/s with 100 handshakes in flight (ours includes the JWT check "
        "and the replay on connect: a snapshot read from the store).",
        "- **store**: ours only, no server: `Tracker.update_progress` flat out (a new job per "
        "message, round-robin over 200 users) for a fixed time, 1 call at a time and 64 "
        "concurrent, on SQLite (temp file, WAL) and on a fresh PostgreSQL database; afterwards "
        "the returned seqs and the stored streams are checked gap-free.",
        "- The load generator, the publisher and Redis run on the same cores as the server: "
        "the JSON has each one's CPU share (`loadgenCpuPercent`, `publisherCpuPercent`, "
        "`redisCpuPercent`, `machineBusyPercent`) for every window.",
        "",
        "## How to run",
        "",
        "```sh",
        "make bench                                  # the full run, ~6-7 minutes here; rewrites this file",
        ".venv/bin/python -m bench --quick           # small N, short windows, ~2 minutes",
        ".venv/bin/python -m bench --only ours,node --scenarios saturation,p99_1k",
        ".venv/bin/python -m bench --db both         # ours on SQLite and on PostgreSQL (extra column)",
        ".venv/bin/python -m bench --report bench/results/<file>.json --write-md  # re-render",
        ".venv/bin/python -m bench.memory --clients 1000  # per-connection memory and GC only",
        "```",
        "",
        "Needs Node 18+ and npm (the Node side is installed with `npm ci` in `bench/node` on the "
        "first run), `redis-server` on the PATH (a private one is started on a free port and "
        "stopped at the end), and for the PostgreSQL figures a PostgreSQL on 127.0.0.1:5432 "
        "that user `postgres` reaches without a password (a `bench_<random>` database is "
        "created and dropped). Everything runs on loopback; every child is stopped by its PID. "
        "Results are written to `bench/results/<UTC time>.json`; this file is rewritten by a "
        "full run (or with `--write-md`).",
        "",
    ]
    return "\n".join(parts)
