// A plain socket.io-client (its browser bundle, no project code) in Debian's Chromium, for
// tests/e2e/test_drain_and_refusals.py. It prints the same JSON lines as that file's NODE_SCRIPT.
//
//   node browser_client.js <playwright-core dir> <socket.io.min.js> <page url> <token> <transport>
'use strict';

const [playwrightDir, bundle, pageUrl, token, transport] = process.argv.slice(2);
const { chromium } = require(playwrightDir);

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// Runs inside the page, so it may only use what the page has: NODE_SCRIPT's client, options and
// resume bookkeeping, reporting through the function the driver exposes.
function startClient({ token, transport }) {
  const out = window.report;
  let lastSeq = null, epoch = null;
  // No URL: the page's own origin, so the browser sends that Origin on the upgrade and on every POST.
  const socket = io({
    transports: [transport],
    reconnectionDelay: 200, reconnectionDelayMax: 1000,
    auth: (cb) => cb(lastSeq === null ? { token } : { token, lastSeq, epoch }),
  });
  socket.on('connect', () => out({ connect: true }));
  socket.on('disconnect', (reason) => out({ disconnect: reason }));
  socket.on('connect_error', (e) => out({ connect_error: e.message, active: socket.active }));
  socket.on('snapshot', (m) => { epoch = m.epoch; if (lastSeq === null) lastSeq = m.lastSeq; });
  socket.on('replay_complete', (m) => { epoch = m.epoch; });
  socket.on('progress_update', (m) => {
    if (lastSeq === null || m.seq > lastSeq) { lastSeq = m.seq; out({ seq: m.seq }); }
  });
}

// Playwright's own signal handlers are off: this process decides when Chromium goes, and a quit
// during launch still waits for the browser so that it is closed, not orphaned.
const launching = chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  timeout: 30_000,
  handleSIGINT: false,
  handleSIGTERM: false,
  handleSIGHUP: false,
});

let quitting = false;
async function quit(code) {
  if (quitting) return;
  quitting = true;
  try {
    const browser = await launching.catch(() => null);
    if (browser) await browser.close();
  } finally {
    process.exit(code);
  }
}

async function main() {
  const browser = await launching;
  const page = await browser.newPage();
  await page.exposeFunction('report', out);
  page.on('pageerror', (e) => out({ pageerror: e.message }));
  await page.goto(pageUrl);
  await page.addScriptTag({ path: bundle });
  await page.evaluate(startClient, { token, transport });
  out({ ready: true });
}

process.on('SIGTERM', () => quit(0));
setTimeout(() => quit(0), 60000);
main().catch((e) => {
  out({ error: String(e) });
  quit(1);
});
