// The reference server: socket.io 4.8 + @socket.io/redis-adapter (node-redis client).
// Each connection joins `user:<auth.user>`; nothing else. Publishers reach it through
// @socket.io/redis-emitter on the same Redis.
//
//   node server.js --port P --redis redis://127.0.0.1:R
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function main() {
  const port = Number(arg("port", "0"));
  const redisUrl = arg("redis", "redis://127.0.0.1:6379");
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  pub.on("error", (e) => console.error("redis pub:", e.message));
  sub.on("error", (e) => console.error("redis sub:", e.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer((req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
      return;
    }
    res.writeHead(404);
    res.end();
  });
  const io = new Server(httpServer, {
    adapter: createAdapter(pub, sub),
    transports: ["websocket", "polling"],
    pingInterval: 20000,
    pingTimeout: 20000,
  });
  io.on("connection", (socket) => {
    const user = socket.handshake.auth && socket.handshake.auth.user;
    if (typeof user !== "string" || !user) {
      socket.disconnect(true);
      return;
    }
    socket.join(`user:${user}`);
  });
  httpServer.listen(port, "127.0.0.1", () => {
    console.log(JSON.stringify({ event: "listening", port: httpServer.address().port }));
  });
  const stop = () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit()]).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
