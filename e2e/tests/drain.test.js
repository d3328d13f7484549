// A rolling restart's drain, as a deployment runs it: two nodes on one
// Redis behind a load balancer (the e2e TCP proxy, which routes new
// connections only to nodes whose /readyz answers 200). The operator asks
// node A to drain (POST /drain on its admin surface): A answers /readyz 503
// at once, closes its pages over --drain-period with 1012 after a last
// `draining` event, and exits; the pages come back through the same address
// to node B, send what they queued meanwhile, and catch up on what node B's
// page sent, each message once, in one order everywhere.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  PATIENCE, ROOM_SOCKETS, eventually, freePort, launchBrowser, newPage, send, shownTexts, startProxy, startRedis,
  startServer, stopServer, storedTexts, tempDatabase, waitForMessage, waitForStatus,
} from './support.js';

const ROOM = 'e2e-drain';
const ADMIN_KEY = 'e2e-admin-key-0123456789abcdef0123456789';
const DRAIN_PERIOD_MS = 2_000;
/** What `draining` asks a client to wait at most (`drain::RETRY_AFTER`). */
const RETRY_AFTER_MS = 2_000;
/** Allowance for the browser to report a socket's close and the next one. */
const REPORTING_SLACK_MS = 1_500;

const env = { nodes: [] };
before(async () => { env.browser = await launchBrowser(); env.redis = await startRedis(); });
after(async () => {
  // Whatever a failed test left running.
  env.proxy?.close();
  for (const node of env.nodes) if (node.child.exitCode === null) node.child.kill('SIGKILL');
  await env.browser?.close();
  env.redis?.child.kill('SIGTERM');
});

/** Whether an HTTP request line is a room's socket (not the rooms stream's). */
function isRoomSocket(request) {
  return ROOM_SOCKETS.test(request.split(' ')[1] ?? '');
}

/** A request for `path` of `node`'s admin surface, with the admin key. */
function admin(node, path, options = {}) {
  return fetch(`http://127.0.0.1:${node.adminPort}${path}`, {
    ...options, headers: { Authorization: `Bearer ${ADMIN_KEY}` },
  });
}

/** A gauge of the node's `/metrics` (admin surface), read now. */
async function gauge(node, name) {
  const response = await admin(node, '/metrics');
  assert.equal(response.status, 200, 'GET /metrics with the admin key');
  const line = (await response.text()).split('\n').find((text) => text.startsWith(`${name} `));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.split(' ')[1]);
}

/**
 * Resolves once `node` holds the sockets of `pages` pages: a room socket
 * and a rooms stream each (`roomcast_connections` counts both).
 */
async function sockets(node, pages, what) {
  await eventually(async () => (await gauge(node, 'roomcast_connections')) === 2 * pages
    && (await gauge(node, 'roomcast_rooms_streams')) === pages, what);
}

/** A node on Redis with its admin surface on a port of its own. */
async function startNode(port, args) {
  const adminPort = await freePort();
  const node = await startServer(port, tempDatabase(), [
    ...args, '--admin-listen', `127.0.0.1:${adminPort}`, '--admin-key', ADMIN_KEY,
  ]);
  node.adminPort = adminPort;
  env.nodes.push(node);
  return node;
}

/**
 * Keeps each room socket of `page`, in order of creation: when it was made
 * and closed (this process's clock), and every frame it received.
 */
function recordRoomSockets(page) {
  const sockets = [];
  page.on('websocket', (socket) => {
    if (!ROOM_SOCKETS.test(new URL(socket.url()).pathname)) return;
    const entry = { createdAt: Date.now(), closedAt: null, frames: [] };
    sockets.push(entry);
    socket.on('framereceived', ({ payload }) => entry.frames.push(String(payload)));
    socket.on('close', () => { entry.closedAt = Date.now(); });
  });
  return sockets;
}

const TITLE = 'a node drained for a rolling restart hands its pages to the other node with nothing lost';
test(TITLE, { timeout: 120_000 }, async () => {
  const [portA, portB] = [await freePort(), await freePort()];
  // Only A behind the proxy at first, so that the pages land there.
  const proxy = await startProxy([portA], { readyz: true });
  env.proxy = proxy;
  const origins = [proxy.url, `http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`].join(',');
  const args = [
    '--redis', env.redis.url, '--secret', 'e2e-drain-secret-0123456789abcdef0123456789abcdef',
    '--allowed-origins', origins,
  ];
  const nodeA = await startNode(portA, [...args, '--drain-period', `${DRAIN_PERIOD_MS}ms`]);
  const nodeB = await startNode(portB, args);
  await proxy.until(portA);

  // Xia and Zed reach node A through the proxy; Yan is on node B.
  const xia = await newPage(env.browser);
  const zed = await newPage(env.browser);
  const yan = await newPage(env.browser);
  const xiaSockets = recordRoomSockets(xia);
  const zedSockets = recordRoomSockets(zed);
  await xia.goto(`${proxy.url}/room/${ROOM}?name=Xia`);
  await zed.goto(`${proxy.url}/room/${ROOM}?name=Zed`);
  await yan.goto(`${nodeB.url}/room/${ROOM}?name=Yan`);
  await Promise.all([xia, zed, yan].map((page) => waitForStatus(page, 'open')));
  const toA = proxy.routed.length > 0 && proxy.routed.every(({ port }) => port === portA);
  assert.ok(toA, 'the proxy sent the pages to A');
  // Node A holds Xia's and Zed's sockets (each page's room and its rooms
  // stream), node B Yan's.
  await sockets(nodeA, 2, 'Xia and Zed on node A');
  await sockets(nodeB, 1, 'Yan on node B');
  assert.equal(await gauge(nodeA, 'roomcast_draining'), 0);
  // Now both nodes are behind it, A first: new connections go to A while it
  // is ready, else to B.
  proxy.targets = [portA, portB];
  await proxy.until(portB);

  const sent = [];
  const say = async (page, text) => { sent.push(text); await send(page, text); };
  await say(xia, 'Xia on A');
  await say(yan, 'Yan on B');
  await say(zed, 'Zed on A');
  for (const page of [xia, zed, yan]) await waitForMessage(page, 'Zed on A');

  // The drain. New room sockets wait at the proxy from now on (a slow
  // connect), so that the pages are seen to queue while they reconnect.
  // (Only those: Chromium opens one WebSocket to an address at a time, so
  // a held rooms stream would keep the room's socket from even starting.)
  proxy.hold(isRoomSocket);
  assert.equal((await fetch(`${nodeA.url}/readyz`)).status, 200, 'A is ready before the drain');
  const noKey = await fetch(`http://127.0.0.1:${nodeA.adminPort}/drain`, { method: 'POST' });
  assert.equal(noKey.status, 401, 'POST /drain without the admin key is refused');
  assert.equal((await fetch(`${nodeA.url}/readyz`)).status, 200, 'a refused drain request drains nothing');
  const drain = await admin(nodeA, '/drain', { method: 'POST' });
  assert.equal(drain.status, 202, 'POST /drain is accepted');
  const readyz = await fetch(`${nodeA.url}/readyz`);
  assert.equal(readyz.status, 503, '/readyz answers 503 right after the drain request');
  assert.equal((await readyz.json()).status, 'draining');
  assert.equal(await gauge(nodeA, 'roomcast_draining'), 1);

  // While A drains: Yan keeps talking, and Xia sends at once (while its
  // socket may still be open on A: its close comes within the period).
  await say(xia, 'Xia as the drain begins');
  for (let i = 1; i <= 3; i += 1) await say(yan, `Yan during the drain ${i}`);
  await proxy.until(portA, false);

  // Each page on A is closed with 1012 after a last `draining` event, and
  // tries to come back: its new socket waits at the proxy. Meanwhile both
  // queue messages, which they hold as pending.
  await Promise.all([xia, zed].map((page) => waitForStatus(page, 'connecting')));
  for (const page of [xia, zed]) {
    await page.locator('[data-testid="system"]', { hasText: /disconnected: 1012 draining/ }).first()
      .waitFor({ timeout: PATIENCE });
  }
  await say(xia, 'Xia while reconnecting 1');
  await say(zed, 'Zed while reconnecting');
  await say(xia, 'Xia while reconnecting 2');
  await xia.getByTestId('pending').filter({ hasText: 'Xia while reconnecting 2' }).waitFor({ timeout: PATIENCE });
  await zed.getByTestId('pending').filter({ hasText: 'Zed while reconnecting' }).waitFor({ timeout: PATIENCE });
  await say(yan, 'Yan while they reconnect');
  await waitForMessage(yan, 'Yan while they reconnect');
  for (const [sockets, name] of [[xiaSockets, 'Xia'], [zedSockets, 'Zed']]) {
    // As the browser reports them (a little after the page sees them).
    await eventually(() => sockets[0].closedAt !== null && sockets.length >= 2,
      `${name}'s socket on A to close and another one to be made`);
    const [drained, next] = sockets;
    assert.deepEqual(JSON.parse(drained.frames.at(-1)), { type: 'draining', retry_after_ms: RETRY_AFTER_MS },
      `the last frame of ${name}'s socket on A is the draining event`);
    // The app waits a random part of retry_after_ms, not a failure's backoff.
    const waited = next.createdAt - drained.closedAt;
    assert.ok(waited <= RETRY_AFTER_MS + REPORTING_SLACK_MS, `${name} came back within retry_after_ms (${waited} ms)`);
  }

  // The proxy lets the waiting sockets through: to B, the node ready.
  const routedBefore = proxy.routed.length;
  proxy.release();
  await Promise.all([xia, zed].map((page) => waitForStatus(page, 'open')));
  const reconnected = proxy.routed.slice(routedBefore).filter(({ request }) => isRoomSocket(request));
  assert.deepEqual(reconnected.map(({ port }) => port), [portB, portB], 'both room sockets came back, to B');
  const [code] = await nodeA.exited;
  assert.equal(code, 0, 'the drained node exits 0');
  // Every socket A had is on B now.
  await sockets(nodeB, 3, 'Xia, Zed and Yan on node B');

  await say(zed, 'Zed back, through B');
  await say(yan, 'Yan, the last word');
  const last = 'Yan, the last word';
  for (const page of [xia, zed, yan]) {
    await waitForMessage(page, last);
    await page.getByTestId('pending').first().waitFor({ state: 'detached', timeout: PATIENCE });
  }
  const stored = await storedTexts(nodeB, ROOM);
  assert.deepEqual([...stored].sort(), [...sent].sort(), 'every message stored once');
  for (const [page, name] of [[xia, 'Xia'], [zed, 'Zed'], [yan, 'Yan']]) {
    assert.deepEqual(await shownTexts(page), stored, `${name} shows every message once, in the stored order`);
  }

  proxy.close();
  for (const page of [xia, zed, yan]) await page.context().close();
  assert.equal(await stopServer(nodeB), 0);
});
