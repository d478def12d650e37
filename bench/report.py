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


def publisher_stats(
    count0: dict[str, Any], count1: dict[str, Any], usage: dict[str, Any]
) -> dict[str, Any]:
    """The publisher's CPU per message it published in the window, from two `count` answers
    taken just after the CPU window opened and closed (normalised by rate, as deliveries are:
    the answers come a few ms after the CPU readings, by the publisher's own clock)."""
    dt = float(count1["t"]) - float(count0["t"])
    n = int(count1["sent"]) - int(count0["sent"])
    in_window = n / dt * usage["wallSeconds"] if dt > 0 else 0.0
    res: dict[str, Any] = {
        "publishedInWindow": n,
        "publisherCpuUsPerMessage": (
            usage["cpuSeconds"]["publisher"] / in_window * 1e6 if in_window > 0 else None
        ),
        "publisherMeanInFlight": None,
    }
    if dt > 0 and "inflightArea" in count0 and "inflightArea" in count1:
        res["publisherMeanInFlight"] = (
            float(count1["inflightArea"]) - float(count0["inflightArea"])
        ) / dt
    return res


def foreign_stats(
    published: dict[str, Any], usage: dict[str, Any], idle_percent: float = 0.0
) -> dict[str, Any]:
    """The foreign window holds the whole bounded publish: per message = CPU / all of them,
    less what the server burns idle over the same time (its timers: a node that receives
    nothing must come out at ~0, not at its idle rate spread over the messages)."""
    n = int(published["sent"])
    cpu = usage["cpuSeconds"]
    idle = idle_percent / 100 * float(usage.get("wallSeconds", 0.0))
    return {
        "foreignMessages": n,
        "foreignPerSec": n / published["seconds"] if published.get("seconds") else None,
        "serverCpuUsPerForeignMessage": max(cpu["server"] - idle, 0.0) / n * 1e6 if n else None,
        "serverCpuUsPerForeignMessageRaw": cpu["server"] / n * 1e6 if n else None,
        "publisherCpuUsPerMessage": cpu["publisher"] / n * 1e6 if n else None,
        "publishedInWindow": n,
    }


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


FAILED = "failed"  # a column's value where its run of that scenario failed
# Column headers where the key is not self-explanatory.
LABELS = {"ours_cluster": "ours (cluster)"}
FOREIGN_ZERO_US = 1.0  # "about 0": below the CPU-tick resolution of a quick run, roughly


@dataclass(frozen=True)
class Row:
    scenario: str
    key: str
    label: str
    unit: str  # how to format: rate | ms | us | kb | pct | count | bool | num
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
    fc = int(_get(sc, "foreign.config.count") or 100_000)
    fg = f"{n('foreign', 10):,} clients, {fc:,} msgs for {rooms('foreign', 200)} users not here"

    def publisher_ok(vals: dict[str, Any]) -> bool | None:
        o = vals.get("ours")
        if o is None:
            return None
        inflight = _get(sc, "saturation.servers.ours.publisherMeanInFlight")
        return bool(o <= 75.0 and (inflight is None or inflight >= 16.0))

    def pub_cpu(name: str, label: str) -> Row:
        return Row(
            name, "publisherCpuUsPerMessage", f"{label}: publisher CPU per message", "us", "lower"
        )

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
            "publisherCpuUsPerMessage",
            "saturation: publisher CPU per message published",
            "us",
            "lower",
            "<= 75 us (ours, 16+ in flight)",
            publisher_ok,
        ),
        Row(
            "saturation",
            "publisherMeanInFlight",
            "saturation: publisher calls in flight (mean; Python publishers)",
            "num",
        ),
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
        pub_cpu("one_room", "one room"),
        Row("p99_1k", "p50Ms", f"p50 publish-to-client ({p1})", "ms", "lower"),
        Row("p99_1k", "p99Ms", f"p99 publish-to-client ({p1})", "ms", "lower", "<= 5 ms", _le(5.0)),
        Row("p99_1k", "deliveriesPerSec", f"deliveries/s ({p1})", "rate"),
        Row("p99_1k", "serverCpuPercent", f"server CPU ({p1})", "pct", "lower"),
        pub_cpu("p99_1k", f"p99 ({p1})"),
        Row("p99_5k", "p50Ms", f"p50 publish-to-client ({p5})", "ms", "lower"),
        Row(
            "p99_5k", "p99Ms", f"p99 publish-to-client ({p5})", "ms", "lower", "<= 20 ms", _le(20.0)
        ),
        Row("p99_5k", "deliveriesPerSec", f"deliveries/s ({p5})", "rate"),
        Row("p99_5k", "serverCpuPercent", f"server CPU ({p5})", "pct", "lower"),
        pub_cpu("p99_5k", f"p99 ({p5})"),
        Row("p99_burst", "p50Ms", f"p50 publish-to-client ({pb})", "ms", "lower"),
        Row("p99_burst", "p99Ms", f"p99 publish-to-client ({pb})", "ms", "lower"),
        Row("p99_burst", "burst.rate", "connect rate of that burst, conn/s", "rate", "higher"),
        Row("p99_burst", "serverCpuPercent", f"server CPU ({pb})", "pct", "lower"),
        pub_cpu("p99_burst", "p99 during the burst"),
        Row(
            "foreign",
            "serverCpuUsPerForeignMessage",
            f"foreign ({fg}): server CPU per foreign message (less its idle CPU)",
            "us",
            "lower",
            f"~ 0 (<= {FOREIGN_ZERO_US:g} us)",
            _le(FOREIGN_ZERO_US),
        ),
        Row("foreign", "foreignPerSec", "foreign: messages/s published", "rate"),
        Row("foreign", "serverCpuPercent", "foreign: server CPU", "pct", "lower"),
        Row("foreign", "serverIdleCpuPercent", "foreign: server CPU idle, before", "pct"),
        pub_cpu("foreign", "foreign"),
        Row(
            "foreign",
            "misdelivered",
            "foreign: deliveries to the clients (other users)",
            "count",
            "lower",
            "0",
            lambda v: None if v.get("ours") is None else v["ours"] == 0,
        ),
        Row(
            "saturation",
            "connectRate",
            f"connect rate, conn/s ({n('saturation', 1000):,} clients)",
            "rate",
            "higher",
            ">= node",
            _ge_node,
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
        Row(
            "memory",
            "connectRate",
            f"connect rate, conn/s ({mem:,} clients)",
            "rate",
            "higher",
            ">= node",
            _ge_node,
        ),
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
    return {
        col: FAILED
        if _get(sc, f"{row.scenario}.servers.{col}.failed")
        else _get(sc, f"{row.scenario}.servers.{col}.{row.key}")
        for col in cols
    }


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
        met = row.met({k: v for k, v in vals.items() if v != FAILED}) if row.met else None
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
    if v == FAILED:
        return FAILED
    if unit == "num":
        return f"{v:.1f}"
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
    head = ["figure", *(LABELS.get(c, c) for c in cols), "ours/bare", "ours/node", "target"]
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


def run_header(results: dict[str, Any]) -> list[str]:
    """How the run was set up, where it changes what the figures mean."""
    pin = results.get("pin")
    if pin:
        pinning = (
            f"CPU pinning (--pin): server on CPU {','.join(map(str, pin['server']))}; load "
            f"generators and publisher on CPU {','.join(map(str, pin['publisher']))}; Redis, "
            "the Redis Cluster, PostgreSQL and bench.memory unpinned"
        )
    else:
        pinning = "CPU pinning: none (every process on any core; --pin pins)"
    cluster = results.get("redisCluster")
    if cluster is None:
        where = "not run (--redis-cluster runs it)"
    elif cluster.get("error"):
        where = f"FAILED: {cluster['error']}"
    else:
        where = (
            f"ours on a private {cluster.get('masters')}-master Redis Cluster "
            f"(REALTIME_REDIS_URL={cluster.get('url')}), "
            + ", ".join(
                n for n, e in results.get("scenarios", {}).items() if "ours_cluster" in e["servers"]
            )
            + f"; {cluster.get('seconds', '?')} s"
        )
    return [pinning, f"Column ours (cluster): {where}"]


def _num(v: Any) -> float | None:
    return None if v is None or v == FAILED or isinstance(v, bool) else float(v)


def _us(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} us"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its figure and whether it is met (None: not judged)."""
    sc = results.get("scenarios", {})

    def ours(path: str, col: str = "ours") -> float | None:
        name, key = path.split(".", 1)
        return _num(_get(sc, f"{name}.servers.{col}.{key}"))

    def others(path: str) -> str:
        name, key = path.split(".", 1)
        cols = [c for c in results.get("columns", []) if c != "ours"]
        got = [(c, _num(_get(sc, f"{name}.servers.{c}.{key}"))) for c in cols]
        return ", ".join(f"{LABELS.get(c, c)} {_us(v)}" for c, v in got if v is not None)

    out: list[dict[str, Any]] = []

    def add(target: str, figure: str, met: bool | None, note: str = "") -> None:
        out.append({"target": target, "figure": figure, "met": met, "note": note})

    # 1. Receive path: measured alone by bench.receive (a listener with a no-op fan-out).
    #    Without it, a foreign message's cost stands in while nodes hear every message, and
    #    CPU per delivery (an upper bound) once they do not.
    foreign = ours("foreign.serverCpuUsPerForeignMessage")
    recv: float | None
    received = _num(_get(results, "receive.cpuUsPerMessage"))
    if received is not None:
        recv, source = received, "bench.receive: ours' Redis listener alone, delivery a no-op"
    elif foreign is not None and foreign > FOREIGN_ZERO_US:
        recv, source = foreign, "ours' server CPU per foreign message (it hears every message)"
    else:
        recv = ours("saturation.serverCpuUsPerDelivery")
        source = (
            "ours' saturation server CPU per delivery (an upper bound: a delivery's share of "
            "receiving its message, plus the send; "
            + ("no foreign figure in this run" if foreign is None else "foreign is ~0")
            + ")"
        )
    add(
        "receive path <= 5 us server CPU per received message",
        f"{_us(recv)}, from {source}",
        None if recv is None else recv <= 5.0,
    )
    # 2. Publisher CPU per stored message, at 16 or more calls in flight.
    pub = ours("saturation.publisherCpuUsPerMessage")
    inflight = ours("saturation.publisherMeanInFlight")
    conc = _get(sc, "saturation.servers.ours.publisher.concurrency")
    deep = inflight >= 16.0 if inflight is not None else (conc is not None and conc >= 16)
    extra = others("saturation.publisherCpuUsPerMessage")
    add(
        "publisher CPU <= 75 us per stored message at 16+ in flight (ours, saturation)",
        f"{_us(pub)} at {'-' if inflight is None else f'{inflight:.1f}'} in flight on average "
        f"(concurrency {conc if conc is not None else '-'})" + (f"; {extra}" if extra else ""),
        None if pub is None else bool(pub <= 75.0 and deep),
        "" if deep or pub is None else "fewer than 16 in flight: not the issue's condition",
    )
    # 3. p99 at 1,000 publishes/s, on a pinned run only.
    p99 = ours("p99_1k.p99Ms")
    rate = _get(sc, "p99_1k.config.rate")
    pinned = bool(results.get("pin"))
    notes = []
    if rate is not None and float(rate) != 1000.0:
        notes.append(f"this run published {float(rate):,.0f}/s, not 1,000/s")
    if not pinned:
        notes.append("not judged: run without --pin")
    add(
        "p99 <= 5 ms at 1,000 publishes/s, with --pin",
        "-" if p99 is None else f"{p99:.2f} ms ({'pinned' if pinned else 'unpinned'})",
        None if p99 is None or not pinned else p99 <= 5.0,
        "; ".join(notes),
    )
    # 4. Connect rate against node, at both sizes.
    parts, mets = [], []
    for name in ("saturation", "memory"):
        o, nd = ours(f"{name}.connectRate"), ours(f"{name}.connectRate", "node")
        clients = _get(sc, f"{name}.config.clients")
        if o is None or nd is None or clients is None:
            continue
        parts.append(f"{int(clients):,} clients: ours {o:,.0f}/s vs node {nd:,.0f}/s")
        mets.append(o >= nd)
    add(
        "connects >= node at 1,000 and 10,000 clients",
        "; ".join(parts) or "-",
        all(mets) if len(mets) == 2 else None,
        "" if len(mets) == 2 else "needs both the saturation and memory scenarios, ours and node",
    )
    # 5. Foreign messages cost a node that holds none of their users nothing.
    extra = others("foreign.serverCpuUsPerForeignMessage")
    add(
        "server CPU per foreign message ~ 0",
        f"ours {_us(foreign)}" + (f"; {extra}" if extra else ""),
        None if foreign is None else foreign <= FOREIGN_ZERO_US,
        f"~ 0 taken as <= {FOREIGN_ZERO_US:g} us",
    )
    return out


def target_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for t in results.get("targets") or targets(results):
        verdict = {True: "met", False: "NOT met", None: "not judged"}[t["met"]]
        note = f" ({t['note']})" if t.get("note") else ""
        lines.append(f"- {t['target']}: **{verdict}**: {t['figure']}{note}")
    return lines


def render_table(results: dict[str, Any]) -> str:
    """The header, the table and the targets, for a terminal."""
    head, body = _grid(results)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = [*run_header(results), ""]
    for k, row in enumerate([head, *body]):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", "targets:", *(t.replace("**", "") for t in target_lines(results))]
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
        *(f"- {line}" for line in run_header(results)),
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
        "## Targets",
        "",
        *target_lines(results),
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
        "deliveries/s figure can be theirs rather than the server's. Publisher CPU per message "
        "= the publisher process's utime+stime over the same window / the messages it "
        "published in it (each publisher answers a `count` command just after the window opens "
        "and just after it closes: ours counts `Tracker.update_progress` calls that returned, "
        "i.e. stored and handed to Redis; bare `emit` calls that returned, i.e. PUBLISHed; node "
        "`emitter.emit` calls, which queue the PUBLISH without waiting for Redis); the same row "
        "is there for every publishing scenario. 'Calls in flight' is the Python publishers' "
        "mean number of outstanding calls over the window (ours runs "
        f"{results.get('args', {}).get('ours_concurrency', 64)} workers, bare 16 flat out and up "
        "to 64 at a fixed rate; node publishes batches of 64 emits and a PING); it drops below "
        "the worker count while the publisher waits for the clients (`--max-outstanding`).",
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
        f"- **foreign**: the server holds {c('foreign', 'clients', 10)} clients of users who get "
        f"nothing, while its own kind of publisher sends {c('foreign', 'count', 100_000)} "
        f"messages at up to {float(cfg.get('foreign', {}).get('rate', 20_000)):,.0f}/s (ours is "
        "bounded by its store, bare by its PUBLISH round trips) round-robin to "
        f"{c('foreign', 'rooms', 200)} other "
        "users, none connected here: ours through `Tracker` and Redis, bare through the "
        "`write_only` manager's `emit`, node through the emitter's `.to(room)`. The window runs "
        "from the publisher's start until the server is idle again after its last message "
        "(at most one CPU tick in 0.2 s), so it holds every message the server had to look at. "
        "Server CPU per foreign message = the server's CPU over that window / the messages "
        "published: what each node of a cluster pays for messages meant for the others. It "
        "includes the server's idle cost over the window (its timers; the row 'idle, before' "
        "is the same process over 1 s with nothing published). Where every node hears every "
        "message (bare's and node's adapters; ours until it subscribes per user), this is the "
        "receive path: read from Redis, decode, check, find no local client; a node that "
        "subscribes only to its users' channels pays about 0. Any delivery to the clients "
        "is a bug and is counted. Publisher CPU per message there = the publisher's CPU over "
        "the same window / the messages published.",
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
        "`redisCpuPercent`, `machineBusyPercent`) for every window. With `--pin` the server "
        "runs alone on the first CPU this process may use and the load generators and the "
        "publisher share the second (the affinity is set in the child before `exec`, so that "
        "every thread inherits it, and each run's JSON records what the kernel holds, "
        "`cpus`); Redis, the Redis Cluster and PostgreSQL float over both, and "
        "`bench.memory` (its own process tree) is not pinned. Pinning takes the "
        "scheduler's placement out of the latency figures; the server then has one core, "
        "never two.",
        "- **ours (cluster)**: ours alone, again, for "
        + ", ".join(f"`{n}`" for n in ("saturation", "p99_1k", "foreign"))
        + ", with `REALTIME_REDIS_URL` at the first master of a private three-master Redis "
        "Cluster (`--cluster-enabled yes`, no replicas, no persistence; created with "
        "`redis-cli --cluster create`, up when every node reports `cluster_state:ok`, each "
        "node stopped by its PID afterwards). The server and `Tracker` are to detect the "
        "cluster and use sharded pub/sub (SSUBSCRIBE/SPUBLISH, each user's channel on its "
        "slot's master); a build that does not uses plain PUBLISH/SUBSCRIBE on the first "
        "master, which the cluster relays to every node. The load generators' counts stay on "
        "the plain Redis. A scenario "
        "that fails there shows `failed` in that column and the run goes on. On by default "
        "in a full run, off with `--quick` (`--redis-cluster` / `--no-redis-cluster`).",
        "- **Targets**: the receive-path figure is ours' server CPU per foreign message while "
        "the server hears every message; once it hears only its users' channels (foreign "
        f"<= {FOREIGN_ZERO_US:g} us) it falls back to saturation's server CPU per delivery, "
        f"an upper bound. '~ 0' is taken as <= {FOREIGN_ZERO_US:g} us: CPU is read in clock "
        "ticks (10 ms), which over 20,000 messages (--quick) is 0.5 us a message. The p99 "
        "target is judged only on a `--pin` run, the connect target only when both sizes ran "
        "for ours and node.",
        "",
        "## How to run",
        "",
        "```sh",
        "make bench                                  # the full run, ~9 minutes here; rewrites this file",
        ".venv/bin/python -m bench --quick           # small N, short windows, no cluster, ~3 minutes",
        ".venv/bin/python -m bench --only ours,node --scenarios saturation,p99_1k",
        ".venv/bin/python -m bench --db both         # ours on SQLite and on PostgreSQL (extra column)",
        ".venv/bin/python -m bench --pin             # server on CPU 0, the rest on CPU 1",
        "make bench BENCH_ARGS='--quick --pin --redis-cluster'  # flags pass through BENCH_ARGS",
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
