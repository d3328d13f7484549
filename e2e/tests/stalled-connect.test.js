// A connect attempt that is never answered is given up after the connect
// timeout (10 s) and retried, and the page connects once the path clears.
//
// Release builds open their socket to the page's own origin, so the page is
// served through a small proxy in front of the real server: plain HTTP is
// forwarded, and WebSocket upgrades to /ws/ are accepted at the TCP level
// and left unanswered while `stall` is set, then piped to the server.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { newPage, send, serverAndBrowser, waitForMessage, waitForStatus, PATIENCE } from './support.js';

const env = serverAndBrowser();

/** The app's connect timeout (CONNECT_TIMEOUT_MS in frontend/src/session/attempt.rs). */
const CONNECT_TIMEOUT = 10_000;

/**
 * A proxy on a free loopback port in front of the server on `serverPort`.
 * `control.stall` decides what happens to a WebSocket upgrade when it arrives.
 */
async function stallingProxy(serverPort) {
  const control = {
    stall: true,
    /** Every upgrade request to /ws/, in arrival order. */
    upgrades: [],
    /** Upgrades held without an answer (their client sockets). */
    stalled: [],
    /** Every socket the proxy holds or pipes for an upgrade. */
    sockets: new Set(),
  };
  const proxy = http.createServer((req, res) => {
    const upstream = http.request({
      host: '127.0.0.1', port: serverPort, method: req.method, path: req.url, headers: req.headers,
    }, (answer) => {
      res.writeHead(answer.statusCode, answer.statusMessage, answer.rawHeaders);
      answer.pipe(res);
    });
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${error.message}`);
    });
    req.pipe(upstream);
  });
  proxy.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {});
    // The rooms stream (/ws/_me/…) is not the room's socket this test
    // watches: refused, it tries again later, unseen.
    if (!req.url.startsWith('/ws/') || req.url.startsWith('/ws/_me/')) {
      socket.destroy();
      return;
    }
    control.sockets.add(socket);
    /** `closedAt`: when the browser let the connection go. */
    const entry = { url: req.url, at: Date.now(), stalled: false, closedAt: null };
    control.upgrades.push(entry);
    socket.on('close', () => {
      entry.closedAt ??= Date.now();
      control.sockets.delete(socket);
    });
    if (control.stall) {
      // Accepted, never answered: the browser waits for a 101 that never comes.
      entry.stalled = true;
      control.stalled.push(socket);
      // The browser giving up sends a FIN; upgrade sockets allow half-open
      // connections, so close our half too.
      socket.on('end', () => {
        entry.closedAt ??= Date.now();
        socket.destroy();
      });
      return;
    }
    const server = net.connect(serverPort, '127.0.0.1', () => {
      let requestHead = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        requestHead += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      }
      server.write(`${requestHead}\r\n`);
      if (head.length > 0) server.write(head);
      server.pipe(socket);
      socket.pipe(server);
    });
    control.sockets.add(server);
    server.on('error', () => socket.destroy());
    server.on('close', () => { control.sockets.delete(server); socket.destroy(); });
    socket.on('close', () => server.destroy());
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  return {
    control,
    url: `http://127.0.0.1:${proxy.address().port}`,
    async close() {
      for (const socket of control.sockets) socket.destroy();
      control.stalled.length = 0;
      proxy.closeAllConnections();
      proxy.close();
      await once(proxy, 'close');
    },
  };
}

/** Polls `condition` until it is truthy or `timeout` ms have passed. */
async function until(condition, timeout, what) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a connect attempt that gets no answer is given up after 10 s and retried', { timeout: 40_000 }, async () => {
  const proxy = await stallingProxy(env.server.port);
  const { control } = proxy;
  const alice = await newPage(env.browser);
  // This test is about WebSocket attempts: the fallback to HTTP (after a
  // stalled attempt's 10 s; see http-fallback.test.js) is put off.
  await alice.addInitScript(() => {
    localStorage.setItem('roomcast.transport', JSON.stringify({ fail_opens: 1000, open_within_ms: 3_600_000 }));
  });
  const bob = await newPage(env.browser);
  try {
    await alice.goto(`${proxy.url}/room/e2e-stalled?name=Alice`);
    const started = Date.now();
    await until(() => control.upgrades.length >= 1, PATIENCE, 'the first upgrade request at the proxy');
    assert.match(control.upgrades[0].url, /^\/ws\/e2e-stalled\//, 'the socket goes to the page\'s own origin');
    assert.equal(await alice.getByTestId('status').getAttribute('data-status'), 'connecting',
      'an unanswered attempt is still connecting');

    // The attempt is abandoned at the connect timeout, and the page says so.
    const retry = alice.locator('[data-testid="system"][data-kind="retry"]')
      .filter({ hasText: /could not connect \(attempt 1\): .*no answer within 10 s/ });
    await retry.waitFor({ timeout: CONNECT_TIMEOUT + 5_000 });
    const abandonedAfter = Date.now() - started;
    assert.ok(abandonedAfter >= CONNECT_TIMEOUT - 1_000,
      `given up after ${abandonedAfter} ms, not before the connect timeout`);
    assert.equal(await alice.locator('[data-testid="system"][data-kind="retry"]').count(), 1,
      'one retry line, updated in place');

    // The browser's socket is let go, and a second attempt is made.
    await until(() => control.upgrades[0].closedAt !== null, 5_000, 'the abandoned socket to be closed');
    await until(() => control.upgrades.length >= 2, 5_000, 'a second upgrade request at the proxy');
    assert.ok(control.upgrades[1].at >= control.upgrades[0].closedAt,
      'the second attempt starts after the first was given up');
    assert.ok(control.upgrades.every((u) => u.stalled), 'all attempts so far were stalled');

    // Once upgrades go through, the page connects through the proxy (after
    // its current, stalled attempt times out too) and receives messages.
    control.stall = false;
    await alice.locator('[data-testid="status"][data-status="open"]')
      .waitFor({ timeout: CONNECT_TIMEOUT + PATIENCE });
    assert.ok(control.upgrades.some((u) => !u.stalled), 'connected through a forwarded upgrade');

    await bob.goto(`${env.server.url}/room/e2e-stalled?name=Bob`);
    await waitForStatus(bob, 'open');
    await send(bob, 'through once the path cleared');
    await waitForMessage(alice, 'through once the path cleared');
  } finally {
    await alice.context().close();
    await bob.context().close();
    for (const socket of control.stalled) socket.destroy();
    await proxy.close();
  }
});
