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

/** `request` (a path and options) to a node's admin surface, with the admin key. */
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

/** A node on Redis with its admin surface on a port of its own. */
async function startNode(port, args) {
  const adminPort = await freePort();
  const node = await startServer(port, tempDatabase(), [
    ...args, '--admin-listen', `127.0.0.1:${adminPort}`, '--admin-key', ADMIN_KEY,
  ]);
  node.adminPort = adminPort;
  return node;
}

/**
 * Keeps every frame each room socket of `page` receives, in order: one
 * entry per socket, `{ url, frames, closed }`.
 */
function recordRoomSockets(page) {
  const sockets = [];
  page.on('websocket', (socket) => {
    if (!ROOM_SOCKETS.test(new URL(socket.url()).pathname)) return;
    const entry = { url: socket.url(), frames: [], closed: false };
    sockets.push(entry);
    socket.on('framereceived', ({ payload }) => entry.frames.push(String(payload)));
    socket.on('close', () => { entry.closed = true; });
  });
  return sockets;
}

const env = {};
before(async () => { env.browser = await launchBrowser(); env.redis = await startRedis(); });
after(async () => { await env.browser?.close(); env.redis?.child.kill('SIGTERM'); });

test('a node drained for a rolling restart hands its pages to the other node with nothing lost', async () => {
  const [portA, portB] = [await freePort(), await freePort()];
  // A first: while it is ready, the proxy sends every new connection there.
  const proxy = await startProxy([portA, portB], { readyz: true });
  const origins = [proxy.url, `http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`].join(',');
  const args = [
    '--redis', env.redis.url, '--secret', 'e2e-drain-secret-0123456789abcdef0123456789abcdef',
    '--allowed-origins', origins,
  ];
  const nodeA = await startNode(portA, [...args, '--drain-period', `${DRAIN_PERIOD_MS}ms`]);
  const nodeB = await startNode(portB, args);
  await Promise.all([proxy.until(portA), proxy.until(portB)]);

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
  assert.ok(proxy.routed.length > 0 && proxy.routed.every((port) => port === portA), 'the proxy sent the pages to A');
  // Node A holds both room sockets (and what else the pages keep open).
  const onA = await eventually(async () => {
    const connections = await gauge(nodeA, 'roomcast_connections');
    return connections >= 2 && connections;
  }, 'both room sockets on node A');
  const onB = await gauge(nodeB, 'roomcast_connections');
  console.log('gauges', onA, onB);
  assert.equal(await gauge(nodeA, 'roomcast_draining'), 0);

  const sent = [];
  const say = async (page, text) => { sent.push(text); await send(page, text); };
  await say(xia, 'Xia on A');
  await say(yan, 'Yan on B');
  await say(zed, 'Zed on A');
  for (const page of [xia, zed, yan]) await waitForMessage(page, 'Zed on A');

  // The drain. New connections wait at the proxy from now on (a slow
  // connect), so that the pages are seen to queue while they reconnect.
  proxy.hold();
  assert.equal((await fetch(`${nodeA.url}/readyz`)).status, 200, 'A is ready before the drain');
  const noKey = await fetch(`http://127.0.0.1:${nodeA.adminPort}/drain`, { method: 'POST' });
  assert.equal(noKey.status, 401, 'POST /drain without the admin key is refused');
  assert.equal((await fetch(`${nodeA.url}/readyz`)).status, 200, 'a refused drain request drains nothing');
  const drain = await admin(nodeA, '/drain', { method: 'POST' });
  assert.equal(drain.status, 202, 'POST /drain is accepted');
  const readyz = await fetch(`${nodeA.url}/readyz`);
  assert.equal(readyz.status, 503, '/readyz answers 503 right after the drain request');
  assert.equal(await readyz.text(), 'draining');
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
    await page.locator('[data-testid="system"]', { hasText: /^disconnected: 1012 draining/ }).first()
      .waitFor({ timeout: PATIENCE });
  }
  await say(xia, 'Xia while reconnecting 1');
  await say(zed, 'Zed while reconnecting');
  await say(xia, 'Xia while reconnecting 2');
  await xia.getByTestId('pending').filter({ hasText: 'Xia while reconnecting 2' }).waitFor({ timeout: PATIENCE });
  await zed.getByTestId('pending').filter({ hasText: 'Zed while reconnecting' }).waitFor({ timeout: PATIENCE });
  await say(yan, 'Yan while they reconnect');
  await waitForMessage(yan, 'Yan while they reconnect');
  for (const sockets of [xiaSockets, zedSockets]) {
    const drained = sockets[0];
    assert.ok(drained.closed, 'the socket on A is closed');
    assert.deepEqual(JSON.parse(drained.frames.at(-1)), { type: 'draining', retry_after_ms: RETRY_AFTER_MS },
      'its last frame is the draining event');
  }

  // The proxy lets the waiting connections through: to B, the node ready.
  const routedBefore = proxy.routed.length;
  proxy.release();
  await Promise.all([xia, zed].map((page) => waitForStatus(page, 'open')));
  assert.deepEqual(new Set(proxy.routed.slice(routedBefore)), new Set([portB]), 'after the drain, only to B');
  const [code] = await nodeA.exited;
  assert.equal(code, 0, 'the drained node exits 0');
  // Every socket A had is on B now.
  await eventually(async () => (await gauge(nodeB, 'roomcast_connections')) === onA + onB,
    `the ${onA} connections of A on B`);

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
