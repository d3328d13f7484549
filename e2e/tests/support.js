// Helpers for the browser tests: the real backend binary serving the
// trunk-built app on a free loopback port, and Debian's Chromium driven by
// playwright-core.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const artifacts = path.join(root, 'e2e', 'artifacts');
export const PATIENCE = 15_000;

/** A room's sockets (`/ws/{group}/…`), not the rooms stream (`/ws/_me/…`). */
export const ROOM_SOCKETS = /\/ws\/(?!_me\/)/;

/** A port that was free a moment ago. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** A fresh SQLite history file for one server (kept across its restarts). */
export function tempDatabase() {
  return path.join(mkdtempSync(path.join(tmpdir(), 'roomcast-e2e-')), 'history.sqlite3');
}

/**
 * Starts the backend on `port` with `database` (and any `extraArgs`, e.g.
 * `['--max-message-bytes', '8192']`) and resolves once /healthz answers.
 */
export async function startServer(port, database = tempDatabase(), extraArgs = []) {
  const binary = process.env.ROOMCAST_BIN ?? path.join(root, 'target', 'debug', 'roomcast');
  const args = [
    '--listen', `127.0.0.1:${port}`, '--static-dir', path.join(root, 'frontend', 'dist'), '--database', database,
    ...extraArgs,
  ];
  const child = spawn(binary, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  const exited = once(child, 'exit');
  const deadline = Date.now() + PATIENCE;
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('server did not become healthy');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, exited, port, database, extraArgs, url: `http://127.0.0.1:${port}` };
}

/** Starts `server` again on its port, with its database and flags. */
export async function restartServer(server) {
  return startServer(server.port, server.database, server.extraArgs);
}

/** Stops the server with `signal` and resolves with its exit code. */
export async function stopServer(server, signal = 'SIGTERM') {
  if (server.child.exitCode !== null) return server.child.exitCode;
  server.child.kill(signal);
  const [code] = await server.exited;
  return code;
}

/**
 * Resolves once `check()` (sync or async) returns a truthy value, which it
 * resolves with; polls every 50 ms, fails after `patience` with `what`.
 */
export async function eventually(check, what, patience = PATIENCE) {
  const deadline = Date.now() + patience;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A private redis-server on a free port (AOF on), from the test kit's
 * binary (beside the server's), resolved with its URL once it answers.
 */
export async function startRedis() {
  const server = process.env.ROOMCAST_BIN ?? path.join(root, 'target', 'debug', 'roomcast');
  const binary = path.join(path.dirname(server), 'roomcast-testkit');
  const child = spawn(binary, ['redis'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = once(createInterface({ input: child.stdout }), 'line');
  const first = await Promise.race([line, once(child, 'exit').then(([code]) => ({ code }))]);
  if (!Array.isArray(first)) throw new Error(`roomcast-testkit exited with ${first.code}`);
  return { child, url: first[0] };
}

/** How often the proxy's health check asks each node's /readyz. */
const READYZ_EVERY_MS = 150;

/**
 * A TCP proxy on a free port in front of nodes (their ports in
 * `proxy.targets`, which the test may change), as a load balancer is: each
 * new connection goes to the first target that is routable and is piped
 * there for its whole life. Without `readyz` every target is routable; with
 * it, only one whose /readyz answered 200 at the last look (every 150 ms),
 * so the proxy stops routing to a node once it answers 503. A connection
 * waits while no target is routable, and while the test holds connections
 * like it (`hold(request => …)`, by the request line its client sent first,
 * until `release()`); then it goes where the proxy routes at that moment.
 * With `stripUpgrade`, each connection's first request loses its `Upgrade`
 * and `Connection` headers, as behind a proxy that does not pass WebSocket.
 */
export async function startProxy(targets, { readyz = false, stripUpgrade = false } = {}) {
  /** Connections not piped yet: `{ client, head, request }`. */
  let waiting = [];
  const proxy = {
    targets,
    sockets: new Set(),
    /** Ports whose /readyz answered 200 at the last look (with `readyz`). */
    ready: new Set(),
    /** Each connection piped, in order: `{ port, request }` (its request line). */
    routed: [],
    /** Which new connections wait (by their request line), while held. */
    held: null,
    closed: false,
    hold(which = () => true) { proxy.held = which; },
    release() { proxy.held = null; dispatch(); },
    /** Where a new connection would go now, or undefined. */
    route() { return proxy.targets.find((port) => !readyz || proxy.ready.has(port)); },
    /** Resolves once the health check has seen `port` ready (or, with false, not). */
    until(port, ready = true) {
      const what = `the proxy to see ${port} ${ready ? 'ready' : 'not ready'}`;
      return eventually(() => proxy.ready.has(port) === ready, what);
    },
  };
  const track = (socket) => {
    proxy.sockets.add(socket);
    socket.on('close', () => proxy.sockets.delete(socket));
  };
  const pipe = ({ client, head, request }, port) => {
    proxy.routed.push({ port, request });
    const upstream = net.connect(port, '127.0.0.1');
    track(upstream);
    for (const socket of [client, upstream]) socket.on('error', () => { client.destroy(); upstream.destroy(); });
    // A proxy that does not pass WebSocket on (nginx without
    // `proxy_set_header Upgrade …`): the handshake arrives as a plain GET.
    upstream.write(stripUpgrade ? String(head).replace(/^(upgrade|connection):[^\r]*\r\n/gim, '') : head);
    client.pipe(upstream);
    upstream.pipe(client);
  };
  function dispatch() {
    waiting = waiting.filter((connection) => {
      if (connection.client.destroyed) return false;
      const port = proxy.route();
      if (port === undefined || proxy.held?.(connection.request)) return true;
      pipe(connection, port);
      return false;
    });
  }
  const server = net.createServer((client) => {
    track(client);
    client.on('error', () => client.destroy());
    // The client speaks first (HTTP): its first bytes carry the request line.
    client.once('data', (head) => {
      client.pause();
      waiting.push({ client, head, request: String(head).split('\r\n', 1)[0] });
      dispatch();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  proxy.port = server.address().port;
  proxy.url = `http://127.0.0.1:${proxy.port}`;
  if (readyz) {
    const look = async () => {
      await Promise.all(proxy.targets.map(async (port) => {
        let ok = false;
        try {
          const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1_000) });
          ok = response.status === 200;
          await response.arrayBuffer();
        } catch {
          // not listening (yet, or any more)
        }
        if (ok) proxy.ready.add(port); else proxy.ready.delete(port);
      }));
      dispatch();
      if (!proxy.closed) proxy.timer = setTimeout(look, READYZ_EVERY_MS).unref();
    };
    await look();
  }
  proxy.close = () => {
    proxy.closed = true;
    clearTimeout(proxy.timer);
    for (const socket of proxy.sockets) socket.destroy();
    server.close();
  };
  return proxy;
}

/** Debian's Chromium, headless, with `extraArgs` after the usual flags. */
export async function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs,
    ],
  });
}

/** A page in a fresh context (its own localStorage, so its own client id). */
export async function newPage(browser, viewport = { width: 900, height: 700 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  return page;
}

export async function waitForStatus(page, status) {
  await page.locator(`[data-testid="status"][data-status="${status}"]`).waitFor({ timeout: PATIENCE });
}

/** Waits for a delivered message with exactly `text` and returns its locator. */
export async function waitForMessage(page, text) {
  const message = page.locator('[data-testid="message"]').filter({
    has: page.locator('.text', { hasText: new RegExp(`^${escape(text)}$`) }),
  });
  await message.first().waitFor({ timeout: PATIENCE });
  return message;
}

export async function send(page, text) {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

export function tempProfile() {
  return mkdtempSync(path.join(tmpdir(), 'roomcast-chromium-'));
}

function escape(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * How the tests cut a socket: 4000 (nothing heard), which the app answers by
 * reconnecting with backoff. Not 4001, which says the token expired and
 * makes the app renew it first.
 */
export const CUT = { code: 4000, reason: 'cut by the test' };

/**
 * Lets the test cut a page's WebSocket and keep it from reconnecting, while
 * the page's HTTP keeps working (so it can reload): every socket goes through
 * Playwright's WebSocket routing to the real server unless blocked.
 */
export async function cuttableSockets(page) {
  const control = { blocked: false, current: null };
  await page.context().routeWebSocket(ROOM_SOCKETS, (socket) => {
    if (control.blocked) {
      socket.close(CUT);
      return;
    }
    control.current = socket;
    socket.connectToServer();
  });
  return {
    /** Drops the open socket and refuses new ones. */
    async cut() {
      control.blocked = true;
      await control.current?.close(CUT);
    },
    restore() {
      control.blocked = false;
    },
  };
}

/**
 * Publishes `texts` into `room` through a raw-mode socket that `page` opens
 * (no subprotocol: each text frame is one message), one every `intervalMs`
 * (0: as fast as the server takes them), and resolves once the last one is
 * stored. The socket is also a reader of the room, which the server evicts
 * when it falls 256 messages behind, so at most 128 go out ahead of their
 * echoes.
 */
export async function publishRaw(page, server, room, texts, { intervalMs = 0, patience = PATIENCE } = {}) {
  const { client_id: client, token } = await identity(server);
  await page.evaluate(async ({ port, room, texts, intervalMs, client, token }) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws/${room}/${client}?token=${encodeURIComponent(token)}`);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error('the raw socket did not open'));
    });
    let echoed = 0;
    let closed = null;
    let wake = null;
    socket.onmessage = () => {
      echoed += 1;
      wake?.();
    };
    socket.onclose = (event) => {
      closed = `${event.code} ${event.reason}`;
      wake?.();
    };
    for (let i = 0; i < texts.length; i += 1) {
      while (i - echoed >= 128 && !closed) await new Promise((resolve) => { wake = resolve; });
      if (closed) throw new Error(`the raw socket closed after ${i} sent: ${closed}`);
      socket.send(texts[i]);
      if (intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }, { port: server.port, room, texts, intervalMs, client, token });
  await waitForStored(server, room, texts.at(-1), patience);
}

/**
 * A new identity from `server` (`POST /api/identities`), made once per
 * server and kept on it: `{client_id, token}`.
 */
export async function identity(server) {
  if (!server.identity) {
    const response = await fetch(`${server.url}/api/identities`, { method: 'POST', body: '{}' });
    assert.equal(response.status, 201, 'an identity for the test itself');
    server.identity = await response.json();
  }
  return server.identity;
}

/** GET `path` of the server's API with the test's own token, as JSON. */
export async function apiGet(server, path) {
  const { token } = await identity(server);
  const response = await fetch(`${server.url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, `GET ${path}`);
  return response.json();
}

/** Resolves once the latest message stored in `room` is `text`. */
export async function waitForStored(server, room, text, patience = PATIENCE) {
  const deadline = Date.now() + patience;
  for (;;) {
    const page = await apiGet(server, `/api/groups/${room}/messages?limit=1`);
    if (page.messages.at(-1)?.text === text) return;
    if (Date.now() > deadline) throw new Error(`"${text}" was not stored in ${room}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every stored message of `room`, oldest first, page by page. */
export async function storedTexts(server, room) {
  const texts = [];
  let before = '';
  for (;;) {
    const page = await apiGet(server, `/api/groups/${room}/messages?limit=200${before}`);
    texts.unshift(...page.messages.map((message) => message.text));
    if (!page.has_more || page.messages.length === 0) return texts;
    before = `&before=${page.messages[0].seq}`;
  }
}

/** The texts of the delivered messages, in the order the page shows them. */
export async function shownTexts(page) {
  return page.locator('[data-testid="message"] .text').allTextContents();
}

/**
 * One server and one browser for a test file: started before its tests,
 * stopped after them (the server must exit 0). Tests may replace `server`.
 */
export function serverAndBrowser(extraArgs = []) {
  const env = { server: null, browser: null };
  before(async () => {
    env.server = await startServer(await freePort(), tempDatabase(), extraArgs);
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    if (env.server) assert.equal(await stopServer(env.server), 0, 'graceful shutdown exits 0');
  });
  return env;
}

/**
 * Alice and Bob in `room`, both connected. With `cuttable`, Alice's sockets
 * are routed so that the test can cut them (`sockets`).
 */
export async function openPair(env, room, { cuttable = false } = {}) {
  const alice = await newPage(env.browser);
  const sockets = cuttable ? await cuttableSockets(alice) : null;
  const bob = await newPage(env.browser);
  await alice.goto(`${env.server.url}/room/${room}?name=Alice`);
  await bob.goto(`${env.server.url}/room/${room}?name=Bob`);
  await Promise.all([waitForStatus(alice, 'open'), waitForStatus(bob, 'open')]);
  return { alice, bob, sockets };
}
