// Publisher for the Node server: @socket.io/redis-emitter, round-robin over U rooms `user:u<k>`,
// each `progress_update` carrying `sentAt` (wall clock, ms, float).
//
//   node publish.js --redis URL --rooms U --rate R (0 = flat out) --duration S [--max M]
//                   [--clients N --delivered-keys K1,K2 --max-outstanding D]
//
// stdin/stdout protocol (one JSON object a line): prints {"event":"ready"}, waits for `go`,
// publishes until --duration, --max or a `stop` line, then (once Redis has answered a PING
// behind the last PUBLISH) prints {"event":"published", sent, seconds} and
// {"event":"done", sent, perRoom, seconds, rate, errors} and exits. A `count` line is answered
// with {"event":"count", sent, t}: emits so far (the emitter does not wait for Redis, so a count
// can lead Redis by the commands still queued: at most one batch flat out) and the process's
// clock in seconds, so the orchestrator can tell how many were published between two counts.
"use strict";

const readline = require("node:readline");
const { performance } = require("node:perf_hooks");
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const redisUrl = arg("redis", "redis://127.0.0.1:6379");
const rooms = Number(arg("rooms", "10"));
const rate = Number(arg("rate", "0"));
const duration = Number(arg("duration", "10"));
const max = Number(arg("max", "10000000"));
// Flat out, but at most --max-outstanding deliveries ahead of the clients, whose counts the
// load generators keep in Redis (--delivered-keys): the server always has work queued, the queue
// stays bounded, and the publisher burns no CPU the server needs.
const clients = Number(arg("clients", "0"));
const deliveredKeys = arg("delivered-keys", "").split(",").filter(Boolean);
const maxOutstanding = Number(arg("max-outstanding", "20000"));
const BATCH = 64; // flat out: publish a batch, then wait for Redis to answer a PING

const nowMs = () => performance.timeOrigin + performance.now();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const client = createClient({ url: redisUrl });
  let errors = 0;
  client.on("error", () => {
    errors += 1;
  });
  await client.connect();
  const emitter = new Emitter(client);
  let stop = false;
  let go;
  const started = new Promise((r) => {
    go = r;
  });
  let sent = 0;
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    const cmd = line.trim();
    if (cmd === "go") go();
    if (cmd === "stop") stop = true;
    if (cmd === "count") out({ event: "count", sent, t: performance.now() / 1000 });
  });
  rl.on("close", () => {
    stop = true;
    go();
  });
  out({ event: "ready", pid: process.pid });
  await started;

  const perRoom = new Array(rooms).fill(0);
  const publishOne = () => {
    const k = sent % rooms;
    emitter.to(`user:u${k}`).emit("progress_update", {
      type: "progress_update",
      jobId: `j${sent}`,
      stage: "transcript_generation",
      progress: 50,
      sentAt: nowMs(),
    });
    perRoom[k] += 1;
    owed += sizes[k] || 1;
    sent += 1;
  };
  let pauses = 0;
  let pausedMs = 0;
  const sizes = [];
  for (let k = 0; k < rooms; k++) sizes.push(Math.floor(clients / rooms) + (k < clients % rooms ? 1 : 0));
  let owed = 0; // deliveries the messages sent so far will make
  let received = 0;
  const bounded = rate <= 0 && maxOutstanding > 0 && deliveredKeys.length > 0 && clients > 0;
  const waitOutstanding = async () => {
    if (!bounded || owed - received <= maxOutstanding) return;
    const p0 = nowMs();
    let paused = false;
    for (let i = 0; i < 30000 && !stop; i++) {
      const vals = await client.mGet(deliveredKeys);
      received = vals.reduce((a, v) => a + (v ? Number(v) : 0), 0);
      if (owed - received <= maxOutstanding) break;
      paused = true;
      await sleep(2);
    }
    if (paused) {
      pauses += 1;
      pausedMs += nowMs() - p0;
    }
  };
  const t0 = nowMs();
  const end = t0 + duration * 1000;
  while (!stop && sent < max && nowMs() < end) {
    if (rate > 0) {
      const due = Math.min(max, Math.floor(((nowMs() - t0) / 1000) * rate) + 1);
      while (sent < due) publishOne();
      const nextAt = t0 + (sent / rate) * 1000;
      await sleep(Math.max(0, nextAt - nowMs()));
    } else {
      await waitOutstanding();
      for (let i = 0; i < BATCH && sent < max; i++) publishOne();
      await client.ping();
    }
  }
  await client.ping().catch(() => {});
  const seconds = (nowMs() - t0) / 1000;
  out({ event: "published", sent, seconds });
  out({ event: "done", sent, perRoom, seconds, rate: sent / seconds, errors, backlogPauses: pauses, backlogPausedSeconds: pausedMs / 1000 });
  await client.quit().catch(() => {});
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
