// Load generator: N socket.io-client connections (websocket only, forceNew, no reconnection)
// over U user rooms, counting `progress_update` deliveries and their publish-to-client latency.
//
//   node load.js --url http://127.0.0.1:P --mode ours|plain --n N --rooms U [--offset K]
//                [--user-prefix u]
//                [--inflight 100] [--connect-timeout 120] [--max-seconds 900]
//                [--redis URL --report-key KEY]
//
// Client i (global index offset + 0..n-1) is user `<prefix><i % U>` (prefix `u`): `auth: {token}` (mode ours: an
// HS256 JWT signed with $BENCH_JWT_SECRET) or `auth: {user}` (mode plain).
// The sender's wall-clock send time (ms, float) is `payload.message` (ours) or `payload.sentAt`.
//
// Controlled by one command a line on stdin; answers one JSON object a line on stdout:
//   connect -> {"event":"connected", ok, failed, errors, startMs, endMs, seconds, rate}
//   start   -> {"event":"started"}   (resets the measured window)
//   stop    -> {"event":"window", deliveries, seconds, rate, hist, maxMs, minMs, late, orderErrors}
//   total   -> {"event":"total", deliveries, disconnects}
//   exit    -> closes every socket, {"event":"bye"}, exits
// With --redis and --report-key it keeps KEY in Redis set to its delivery count (every 5 ms),
// which flat-out publishers read to stay a bounded number of deliveries ahead of the clients.
// It exits by itself when stdin closes or after --max-seconds.
"use strict";

const crypto = require("node:crypto");
const readline = require("node:readline");
const { performance } = require("node:perf_hooks");
const { io } = require("socket.io-client");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const url = arg("url", "http://127.0.0.1:8080");
const mode = arg("mode", "plain");
const n = Number(arg("n", "100"));
const rooms = Number(arg("rooms", "10"));
const offset = Number(arg("offset", "0"));
const userPrefix = arg("user-prefix", "u");
const inflight = Math.max(1, Number(arg("inflight", "100")));
const connectTimeout = Number(arg("connect-timeout", "120")) * 1000;
const maxSeconds = Number(arg("max-seconds", "900"));
const secret = process.env.BENCH_JWT_SECRET || "";
const redisUrl = arg("redis", "");
const reportKey = arg("report-key", "");

const nowMs = () => performance.timeOrigin + performance.now();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// ---- latency histogram: log buckets, 1% wide, over microseconds ----------------------------
const LOG_STEP = Math.log(1.01);
function bucketOf(ms) {
  const us = ms * 1000;
  return us <= 1 ? 0 : Math.floor(Math.log(us) / LOG_STEP);
}

// ---- tokens (ours) ---------------------------------------------------------------------------
const b64url = (buf) =>
  Buffer.from(buf).toString("base64").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
function token(user) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ sub: user, iat: now, exp: now + 3600 }));
  const sig = b64url(crypto.createHmac("sha256", secret).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

// ---- state -------------------------------------------------------------------------------------
const sockets = [];
let total = 0;
let disconnects = 0;
let win = null; // the measured window, or null outside it

function newWindow() {
  return {
    start: nowMs(),
    deliveries: 0,
    hist: new Map(),
    maxMs: -Infinity,
    minMs: Infinity,
    late: 0,
    orderErrors: 0,
  };
}
let orderErrors = 0;

function onMessage(state, payload) {
  const t = nowMs();
  total += 1;
  if (mode === "ours" && payload && typeof payload.seq === "number") {
    // Contract: on one connection seqs arrive once, in increasing order, without gaps.
    if (state.lastSeq !== null && payload.seq !== state.lastSeq + 1) orderErrors += 1;
    state.lastSeq = payload.seq;
  }
  if (win === null) return;
  win.deliveries += 1;
  const sent = mode === "ours" ? parseFloat(payload && payload.message) : payload && payload.sentAt;
  if (typeof sent !== "number" || !Number.isFinite(sent)) return;
  const lat = t - sent;
  if (lat < 0) win.late += 1; // clock skew guard (same machine: should stay 0)
  const b = bucketOf(Math.max(lat, 0));
  win.hist.set(b, (win.hist.get(b) || 0) + 1);
  if (lat > win.maxMs) win.maxMs = lat;
  if (lat < win.minMs) win.minMs = lat;
}

function connectAll() {
  return new Promise((resolve) => {
    const startMs = nowMs();
    let next = 0;
    let active = 0;
    let ok = 0;
    let failed = 0;
    const errors = {};
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const endMs = nowMs();
      const seconds = (endMs - startMs) / 1000;
      resolve({ ok, failed, pending: n - ok - failed, errors, startMs, endMs, seconds, rate: ok / seconds });
    };
    const timer = setTimeout(finish, connectTimeout);
    const launch = () => {
      while (!done && active < inflight && next < n) {
        const i = offset + next;
        next += 1;
        active += 1;
        const user = `${userPrefix}${i % rooms}`;
        const auth = mode === "ours" ? { token: token(user) } : { user };
        const state = { lastSeq: null, settled: false };
        const s = io(url, {
          transports: ["websocket"],
          forceNew: true,
          reconnection: false,
          timeout: 30000,
          auth,
        });
        sockets.push(s);
        const settle = (good, why) => {
          if (state.settled) return;
          state.settled = true;
          active -= 1;
          if (good) ok += 1;
          else {
            failed += 1;
            errors[why] = (errors[why] || 0) + 1;
          }
          if (ok + failed >= n) finish();
          else launch();
        };
        s.on("connect", () => settle(true));
        s.on("connect_error", (e) => {
          settle(false, (e && e.message) || "connect_error");
          s.close();
        });
        s.on("disconnect", () => {
          if (state.settled) disconnects += 1;
        });
        s.on("snapshot", (m) => {
          if (m && typeof m.lastSeq === "number") state.lastSeq = m.lastSeq;
        });
        s.on("replay_complete", (m) => {
          if (m && typeof m.toSeq === "number") state.lastSeq = m.toSeq;
        });
        s.on("progress_update", (m) => onMessage(state, m));
      }
    };
    if (n <= 0) finish();
    else launch();
  });
}

function windowReport() {
  const w = win || newWindow();
  const seconds = (nowMs() - w.start) / 1000;
  return {
    event: "window",
    deliveries: w.deliveries,
    seconds,
    rate: w.deliveries / seconds,
    hist: Object.fromEntries(w.hist),
    maxMs: Number.isFinite(w.maxMs) ? w.maxMs : null,
    minMs: Number.isFinite(w.minMs) ? w.minMs : null,
    late: w.late,
    orderErrors,
  };
}

function shutdown(code) {
  if (reporter) {
    clearInterval(reporter);
    reporter.client.disconnect().catch(() => {});
  }
  for (const s of sockets) {
    try {
      s.close();
    } catch (_) {
      /* already closed */
    }
  }
  out({ event: "bye" });
  setTimeout(() => process.exit(code), 50);
}

let reporter = null;
async function startReporting() {
  if (!redisUrl || !reportKey) return;
  const { createClient } = require("redis");
  const client = createClient({ url: redisUrl });
  client.on("error", () => {});
  await client.connect();
  await client.set(reportKey, "0", { EX: 3600 });
  let reported = 0;
  let busy = false;
  reporter = setInterval(() => {
    if (busy || total === reported) return;
    busy = true;
    const value = total;
    client
      .set(reportKey, String(value), { EX: 3600 })
      .then(() => {
        reported = value;
      })
      .catch(() => {})
      .finally(() => {
        busy = false;
      });
  }, 5);
  reporter.client = client;
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const cmd = line.trim();
  if (cmd === "connect") out({ event: "connected", ...(await connectAll()) });
  else if (cmd === "start") {
    win = newWindow();
    out({ event: "started" });
  } else if (cmd === "stop") {
    out(windowReport());
    win = null;
  } else if (cmd === "total") out({ event: "total", deliveries: total, disconnects, orderErrors });
  else if (cmd === "exit") shutdown(0);
});
rl.on("close", () => shutdown(0));
setTimeout(() => {
  console.error(`load.js: --max-seconds ${maxSeconds} reached`);
  shutdown(3);
}, maxSeconds * 1000).unref();
startReporting()
  .then(() => out({ event: "ready", pid: process.pid }))
  .catch((e) => {
    console.error("load.js: redis:", e && e.message);
    process.exit(1);
  });
