// Measurement (not a test): how long a page that was away takes to show the
// newest message after N messages were published while it was cut off, how
// many rows it ends with, and its JS heap.
//
// Each run: a fresh page joins a new room and connects; its browser context
// goes offline (the app closes its socket and waits for `online`); N
// messages are published into the room through a raw-mode WebSocket (from a
// second context, as Node 20 has no WebSocket; at most 128 ahead of their
// echoes, as that socket is a reader too) and confirmed stored via the JSON
// API; then the context goes back online, and the time until the last row
// shows "catchup N" is taken. (The page's socket is not routed through
// Playwright: routing every frame through the test driver would measure the
// driver.)
//
// Exits non-zero only if a page ends with more than MAX_ROWS message rows or
// never shows the newest message; the times are reported, not judged.
//
//   cd e2e && ROOMCAST_BIN=$PWD/../target/release/roomcast npm run measure:catchup
//   (CATCHUP_N and CATCHUP_RUNS override N = 10000 and R = 5.)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort, launchBrowser, newPage, publishRaw, startServer, stopServer, tempDatabase, waitForStatus, PATIENCE,
} from '../tests/support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
process.env.ROOMCAST_BIN = path.resolve(process.env.ROOMCAST_BIN ?? path.join(root, 'target', 'release', 'roomcast'));

const N = Number(process.env.CATCHUP_N ?? 10_000);
const RUNS = Number(process.env.CATCHUP_RUNS ?? 5);
const MAX_ROWS = 2_000;
/** How long the newest message may take to show before the run counts as failed. */
const NEWEST_TIMEOUT = 180_000;
/** How long publishing N messages and seeing them stored may take. */
const PUBLISH_TIMEOUT = 300_000;

const overrides = [
  process.env.CATCHUP_N ? `CATCHUP_N=${N}` : '',
  process.env.CATCHUP_RUNS ? `CATCHUP_RUNS=${RUNS}` : '',
].filter(Boolean).join(' ');
console.log('# reproduce:');
console.log(`#   cd ${path.join(root, 'e2e')} && ROOMCAST_BIN=${process.env.ROOMCAST_BIN} ${overrides ? `${overrides} ` : ''}`
  + 'node measure/catchup.js   # or: npm run measure:catchup');
console.log(`# N = ${N} messages, R = ${RUNS} runs, server flags: --publish-rate 0; `
  + `chromium ${await chromiumVersion()}, node ${process.version}`);

async function chromiumVersion() {
  const browser = await launch();
  const version = browser.version();
  await browser.close();
  return version;
}

function launch() {
  return launchBrowser(['--enable-precise-memory-info']);
}

async function run(browser, server, index) {
  const room = `catchup-${index}-${Date.now().toString(36)}`;
  const page = await newPage(browser);
  await page.goto(`${server.url}/room/${room}?name=Measure`);
  await waitForStatus(page, 'open');

  await page.context().setOffline(true);
  await waitForStatus(page, 'offline');

  const publisher = await newPage(browser);
  await publisher.goto(`${server.url}/healthz`);
  const started = Date.now();
  const texts = Array.from({ length: N }, (_, i) => `catchup ${i + 1}`);
  await publishRaw(publisher, server, room, texts, { patience: PUBLISH_TIMEOUT });
  const publishMs = Date.now() - started;
  await publisher.context().close();

  const last = `catchup ${N}`;
  const t0 = Date.now();
  await page.context().setOffline(false);
  let shown = true;
  try {
    await page.waitForFunction((text) => {
      const texts = document.querySelectorAll('[data-testid="message"] .text');
      return texts.length > 0 && texts[texts.length - 1].textContent === text;
    }, last, { polling: 'raf', timeout: NEWEST_TIMEOUT });
  } catch (error) {
    shown = false;
    console.error(`run ${index}: the newest message did not show within ${NEWEST_TIMEOUT} ms: ${error.message}`);
  }
  const t1 = Date.now();
  const result = await page.evaluate(() => ({
    rows: document.querySelectorAll('[data-testid="message"]').length,
    first: Number(document.querySelector('[data-testid="message"]')?.dataset.seq),
    last: [...document.querySelectorAll('[data-testid="message"] .text')].at(-1)?.textContent ?? null,
    heap: performance.memory?.usedJSHeapSize ?? null,
    status: document.querySelector('[data-testid="status"]')?.dataset.status,
  }));
  // The heap again after a full collection: what the page keeps, not what it churned.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const heapAfterGc = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? null);
  await cdp.detach();
  await page.context().close();
  return { index, room, ms: t1 - t0, shown, publishMs, heapAfterGc, ...result };
}

const mb = (bytes) => (bytes == null ? 'n/a' : `${(bytes / 1024 / 1024).toFixed(1)} MB`);
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

const server = await startServer(await freePort(), tempDatabase(), ['--publish-rate', '0']);
const browser = await launch();
const results = [];
let failed = false;
try {
  for (let index = 1; index <= RUNS; index += 1) {
    const r = await run(browser, server, index);
    results.push(r);
    console.log(`run ${index}: ${r.shown ? `${r.ms} ms` : `NOT SHOWN after ${r.ms} ms`} to show "catchup ${N}"; `
      + `${r.rows} message rows (seq ${r.first}…), status ${r.status}; JS heap ${mb(r.heap)}, `
      + `${mb(r.heapAfterGc)} after GC; (publishing and storing ${N} took ${Math.round(r.publishMs)} ms)`);
    if (!r.shown) failed = true;
    if (r.rows > MAX_ROWS) {
      console.error(`run ${index}: ${r.rows} message rows, more than ${MAX_ROWS}`);
      failed = true;
    }
  }
} finally {
  await browser.close();
  await stopServer(server);
}

const times = results.map((r) => r.ms);
const rows = results.map((r) => r.rows);
const heaps = results.map((r) => r.heap).filter((h) => h != null);
const gcHeaps = results.map((r) => r.heapAfterGc).filter((h) => h != null);
console.log(`catch-up time: median ${median(times)} ms, min ${Math.min(...times)} ms, max ${Math.max(...times)} ms `
  + `(${times.join(', ')})`);
console.log(`message rows: ${[...new Set(rows)].join(', ')} (limit ${MAX_ROWS}); JS heap median ${mb(median(heaps))}, `
  + `after GC ${mb(median(gcHeaps))}`);
console.log('| measurement | N | runs | median ms | min ms | max ms | rows | JS heap (median) | after GC |');
console.log(`| catch-up after reconnect | ${N} | ${RUNS} | ${median(times)} | ${Math.min(...times)} | ${Math.max(...times)} `
  + `| ${Math.max(...rows)} | ${mb(median(heaps))} | ${mb(median(gcHeaps))} |`);
process.exitCode = failed ? 1 : 0;
