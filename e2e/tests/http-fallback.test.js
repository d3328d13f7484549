// A page whose room sockets never open falls back to the HTTP event stream
// by itself (after 3 failed opens), says so in the status bar, and chats
// both ways with a WebSocket page: every message shown once on each page
// and stored once.
//
// The page's WebSocket constructor is replaced before the app loads: a
// room's socket (/ws/{group}/…, not the rooms stream) goes to a closed port,
// so it fails to open as a socket behind a proxy that strips Upgrade would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ROOM_SOCKETS, eventually, freePort, identity, newPage, restartServer, send, serverAndBrowser, shownTexts,
  startProxy, startServer, stopServer, storedTexts, tempDatabase, waitForMessage, waitForStatus,
} from './support.js';

const env = serverAndBrowser();

/**
 * Makes every room socket of `page` fail to open while `window.blocking`
 * (set here) stays true; `numbers` (the app's TransportConfig, shortened)
 * are stored for the app.
 */
async function blockRoomSockets(page, numbers = null, { roomsStreamToo = false } = {}) {
  await page.addInitScript(({ numbers, roomsStreamToo }) => {
    if (numbers) localStorage.setItem('roomcast.transport', JSON.stringify(numbers));
    const Real = window.WebSocket;
    window.blockedSockets = 0;
    window.blockedStreams = 0;
    window.blocking = true;
    window.WebSocket = new Proxy(Real, {
      construct(target, args) {
        const [url, protocols] = args;
        const path = new URL(url).pathname;
        if (window.blocking && /^\/ws\/(?!_me\/)/.test(path)) {
          window.blockedSockets += 1;
          return new target('ws://127.0.0.1:9/blocked', protocols);
        }
        if (window.blocking && roomsStreamToo && path.startsWith('/ws/_me/')) {
          window.blockedStreams += 1;
          return new target('ws://127.0.0.1:9/blocked', protocols);
        }
        return new target(...args);
      },
    });
  }, { numbers, roomsStreamToo });
}

/** Waits until `page` is connected over `transport`. */
async function waitForTransport(page, transport, timeout = 30_000) {
  const status = page.locator(`[data-testid="status"][data-status="open"][data-transport="${transport}"]`);
  await status.waitFor({ timeout });
  return status;
}

test('a page that cannot open a WebSocket chats over the HTTP stream, nothing lost or doubled', async () => {
  const room = `fallback-${Date.now()}`;
  const carol = await newPage(env.browser);
  await blockRoomSockets(carol);
  const dave = await newPage(env.browser);
  await carol.goto(`${env.server.url}/room/${room}?name=Carol`);
  await dave.goto(`${env.server.url}/room/${room}?name=Dave`);
  await waitForStatus(dave, 'open');
  const status = await waitForTransport(carol, 'stream');
  assert.match(await status.textContent(), /connected \(HTTP stream\)/);
  assert.equal(await carol.evaluate(() => window.blockedSockets), 3, 'three failed opens, then HTTP');

  await send(carol, 'carol over http');
  await waitForMessage(dave, 'carol over http');
  await waitForMessage(carol, 'carol over http');
  await send(dave, 'dave over a socket');
  await waitForMessage(carol, 'dave over a socket');

  // Several at once: posted one at a time (one send in flight), acked.
  const burst = Array.from({ length: 6 }, (_, i) => `carol ${i}`);
  for (const text of burst) await send(carol, text);
  await waitForMessage(dave, 'carol 5');
  await waitForMessage(carol, 'carol 5');
  const expected = ['carol over http', 'dave over a socket', ...burst];
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  for (const page of [carol, dave]) {
    await eventually(async () => same(await shownTexts(page), expected), 'each message shown once, in order');
    assert.deepEqual(await shownTexts(page), expected);
  }
  await eventually(async () => (await carol.locator('[data-testid="pending"]').count()) === 0, 'an empty outbox');
  assert.deepEqual(await storedTexts(env.server, room), expected, 'each stored once');
  await carol.context().close();
  await dave.context().close();
});

test('a stream held back means long polling; WebSocket is taken back once it gets through, nothing lost', async () => {
  const room = `poll-${Date.now()}`;
  const erin = await newPage(env.browser);
  await blockRoomSockets(erin, { first_event_within_ms: 1_000, probe_every_ms: 4_000 });
  // A proxy that holds the stream back: the request is never answered.
  // Long polls (poll=1) and posts go through.
  await erin.route(/\/api\/events\//, (route) => {
    const url = new URL(route.request().url());
    if (route.request().method() === 'GET' && !url.searchParams.has('poll')) return;
    route.continue();
  });
  const fay = await newPage(env.browser);
  await erin.goto(`${env.server.url}/room/${room}?name=Erin`);
  await fay.goto(`${env.server.url}/room/${room}?name=Fay`);
  await waitForStatus(fay, 'open');
  const status = await waitForTransport(erin, 'poll');
  assert.match(await status.textContent(), /connected \(long polling\)/);

  await send(erin, 'erin polling');
  await send(fay, 'fay on a socket');
  await waitForMessage(fay, 'erin polling');
  await waitForMessage(erin, 'fay on a socket');

  // WebSocket gets through again: the next probe finds it, and the page
  // moves back, resuming where the polls were.
  await erin.evaluate(() => { window.blocking = false; });
  await send(fay, 'fay while erin moves');
  await waitForTransport(erin, 'websocket', 20_000);
  await send(erin, 'erin on a socket again');
  await waitForMessage(fay, 'erin on a socket again');
  await waitForMessage(erin, 'fay while erin moves');
  const expected = ['erin polling', 'fay on a socket', 'fay while erin moves', 'erin on a socket again'];
  const same = (a, b) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
  for (const page of [erin, fay]) {
    await eventually(async () => same(await shownTexts(page), expected), 'each message shown once');
    assert.equal((await shownTexts(page)).length, expected.length, 'nothing doubled');
  }
  assert.equal((await storedTexts(env.server, room)).length, expected.length, 'each stored once');
  await erin.context().close();
  await fay.context().close();
});

test("a plain EventSource opens a room's stream with a ticket and resumes it by itself after a restart", async () => {
  const room = `source-${Date.now()}`;
  const { client_id: client, token } = await identity(env.server);
  const reader = await newPage(env.browser);
  await reader.goto(`${env.server.url}/healthz`);
  // What a third-party page does: a ticket with its token, then a plain
  // EventSource (which cannot send the token) with the ticket in its URL.
  const refused = await reader.evaluate(async ({ room, client, token }) => {
    const asked = await fetch(`/api/events/${room}/${client}/ticket`, {
      method: 'POST', headers: { Authorization: `Bearer ${token}` },
    });
    const { ticket } = await asked.json();
    window.heard = [];
    window.opened = 0;
    window.source = new EventSource(`/api/events/${room}/${client}?ticket=${ticket}&name=Reader`);
    window.source.onopen = () => { window.opened += 1; };
    window.source.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (data.type === 'message') window.heard.push({ id: event.lastEventId, text: data.text });
    };
    // The token itself is never taken in a URL, and the ticket is no token.
    const asToken = await fetch(`/api/events/${room}/${client}`, { headers: { Authorization: `Bearer ${ticket}` } });
    return asToken.status;
  }, { room, client, token });
  assert.equal(refused, 401, 'a ticket is not a token');
  await eventually(() => reader.evaluate(() => window.opened === 1), 'the stream to open');

  const writer = await newPage(env.browser);
  await writer.goto(`${env.server.url}/room/${room}?name=Writer`);
  await waitForStatus(writer, 'open');
  await send(writer, 'before the restart');
  const heard = () => reader.evaluate(() => window.heard);
  const [first] = await eventually(async () => (await heard()).length === 1 && heard(), 'the first message');
  assert.match(first.id, /^[0-9a-f]+:1$/, 'its id is {epoch}:{seq}');

  // The server restarts: the browser reconnects the same EventSource by
  // itself, with the same ticket and its Last-Event-ID; the message sent
  // meanwhile comes once, and nothing before it again.
  env.server = await restartServer(await stopAndKeep(env.server));
  await waitForStatus(writer, 'open');
  await send(writer, 'after the restart');
  await eventually(async () => (await heard()).length >= 2, 'the second message', 30_000);
  assert.deepEqual((await heard()).map((each) => each.text), ['before the restart', 'after the restart']);
  assert.ok(await reader.evaluate(() => window.opened >= 2), 'the browser reopened the stream');
  await reader.context().close();
  await writer.context().close();
});

/** Stops `server` (SIGTERM) and resolves with it, to start again. */
async function stopAndKeep(server) {
  server.child.kill('SIGTERM');
  await server.exited;
  return server;
}

test('with no WebSocket at all, the list of rooms comes over HTTP too, and the next room starts on HTTP at once', async () => {
  const [first, second] = [`nows-a-${Date.now()}`, `nows-b-${Date.now()}`];
  const gil = await newPage(env.browser);
  await blockRoomSockets(gil, null, { roomsStreamToo: true });
  // The rooms stream is a member of the browser's one HTTP stream.
  const roomsOverHttp = [];
  gil.on('request', (request) => {
    const url = new URL(request.url());
    const members = url.searchParams.getAll('m').map((member) => new URLSearchParams(member).get('group'));
    if (/^\/api\/events\/[^/]+$/.test(url.pathname) && members.includes('_me')) roomsOverHttp.push(request.method());
  });
  await gil.goto(`${env.server.url}/room/${first}?name=Gil`);
  await waitForTransport(gil, 'stream');
  assert.equal(await gil.evaluate(() => window.blockedSockets), 3, 'three failed opens, then HTTP');
  await send(gil, 'gil in the first room');
  await waitForMessage(gil, 'gil in the first room');

  // Another room, from the list (the same document): HTTP at once.
  await gil.getByTestId('join-room').fill(second);
  await gil.getByTestId('join-room').press('Enter');
  await waitForTransport(gil, 'stream');
  assert.equal(await gil.evaluate(() => window.blockedSockets), 3, 'no WebSocket tried for the next room');

  // News in the first room: its badge comes over the rooms stream, over HTTP.
  const hal = await newPage(env.browser);
  await hal.goto(`${env.server.url}/room/${first}?name=Hal`);
  await waitForStatus(hal, 'open');
  await send(hal, 'news for Gil');
  const badge = gil.locator(`[data-testid="room-row"][data-group="${first}"] [data-testid="unread"]`);
  await badge.filter({ hasText: '1' }).waitFor({ timeout: 20_000 });
  assert.ok(roomsOverHttp.includes('GET'), 'the rooms stream is read over HTTP');

  // A reload starts on HTTP too: the browser remembers.
  await gil.reload();
  await waitForTransport(gil, 'stream');
  assert.equal(await gil.evaluate(() => window.blockedSockets), 0, 'no WebSocket tried after the reload');
  await gil.context().close();
  await hal.context().close();
});

test('behind a proxy that strips Upgrade, the page asks the server and moves to HTTP after one failed open', async () => {
  const port = await freePort();
  const proxy = await startProxy([port], { stripUpgrade: true });
  const server = await startServer(port, tempDatabase(), ['--allowed-origins', `${proxy.url},http://127.0.0.1:${port}`]);
  try {
    const room = `stripped-${Date.now()}`;
    const ida = await newPage(env.browser);
    const roomSockets = [];
    ida.on('websocket', (socket) => {
      if (ROOM_SOCKETS.test(new URL(socket.url()).pathname)) roomSockets.push(socket.url());
    });
    await ida.goto(`${proxy.url}/room/${room}?name=Ida`);
    const status = await waitForTransport(ida, 'stream');
    assert.match(await status.textContent(), /connected \(HTTP stream\)/);
    assert.equal(roomSockets.length, 1, 'one failed open: the server said Upgrade was stripped');

    // It chats with a page that reaches the server directly.
    const jon = await newPage(env.browser);
    await jon.goto(`http://127.0.0.1:${port}/room/${room}?name=Jon`);
    await waitForStatus(jon, 'open');
    await send(ida, 'ida behind the proxy');
    await send(jon, 'jon on a socket');
    for (const page of [ida, jon]) {
      await waitForMessage(page, 'ida behind the proxy');
      await waitForMessage(page, 'jon on a socket');
    }
    await ida.context().close();
    await jon.context().close();
  } finally {
    await stopServer(server);
    proxy.close();
  }
});

test('three tabs on HTTP share one event stream: each chats in its own room, and a closed tab hands the stream on', async () => {
  const rooms = ['one', 'two', 'three'].map((name) => `shared-${name}-${Date.now()}`);
  const context = await env.browser.newContext({ viewport: { width: 900, height: 700 } });
  await context.addInitScript(() => {
    window.WebSocket = new Proxy(window.WebSocket, {
      construct(target, [url, protocols]) {
        return new URL(url).pathname.startsWith('/ws/') ? new target('ws://127.0.0.1:9/blocked', protocols) : new target(url, protocols);
      },
    });
  });
  // Every event request of the browser, and which are open now.
  const open = new Set();
  const streams = [];
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (request.method() !== 'GET' || !url.pathname.startsWith('/api/events/')) return;
    streams.push(url.pathname);
    open.add(request);
  });
  for (const done of ['requestfinished', 'requestfailed']) context.on(done, (request) => open.delete(request));
  const tabs = [];
  for (const room of rooms) {
    const tab = await context.newPage();
    await tab.goto(`${env.server.url}/room/${room}?name=Kim`);
    await waitForTransport(tab, 'stream');
    tabs.push(tab);
  }
  assert.ok(streams.every((path) => /^\/api\/events\/[^/]+$/.test(path)), `only shared streams: ${streams}`);
  await eventually(() => open.size === 1, `one stream open for the three tabs (${open.size})`);

  // Each tab chats with a WebSocket page in its own room, both ways.
  const others = [];
  for (const [index, room] of rooms.entries()) {
    const other = await newPage(env.browser);
    await other.goto(`${env.server.url}/room/${room}?name=Lou`);
    await waitForStatus(other, 'open');
    others.push(other);
    await send(tabs[index], `kim in ${room}`);
    // Kim's message is stored before Lou sends: over HTTP it may wait
    // behind the tab's typing post, and the order is checked below.
    await waitForMessage(other, `kim in ${room}`);
    await send(other, `lou in ${room}`);
  }
  for (const [index, room] of rooms.entries()) {
    for (const page of [tabs[index], others[index]]) {
      await waitForMessage(page, `kim in ${room}`);
      await waitForMessage(page, `lou in ${room}`);
    }
  }

  // The tab holding the stream closes: another takes it over, and the
  // others go on, missing nothing and doubling nothing.
  const holding = [...open].map((request) => request.frame().page());
  assert.deepEqual(holding, [tabs[0]], 'the first tab holds the stream');
  await tabs[0].close();
  for (const request of open) if (request.frame().page() === tabs[0]) open.delete(request);
  for (const [index, room] of rooms.entries()) {
    if (index > 0) await send(others[index], `after the hand-over in ${room}`);
  }
  for (const [index, room] of rooms.entries()) {
    if (index === 0) continue;
    await waitForMessage(tabs[index], `after the hand-over in ${room}`);
    const expected = [`kim in ${room}`, `lou in ${room}`, `after the hand-over in ${room}`];
    let shown = [];
    await eventually(async () => {
      shown = await shownTexts(tabs[index]);
      return JSON.stringify(shown) === JSON.stringify(expected);
    }, `${room}: each message once, in order`).catch((err) => {
      throw new Error(`${err.message}; shown: ${JSON.stringify(shown)}`);
    });
  }
  await eventually(() => open.size === 1, `one stream open for the two tabs left (${open.size})`);
  await context.close();
  for (const other of others) await other.context().close();
});
