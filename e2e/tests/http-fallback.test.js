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
  eventually, newPage, send, serverAndBrowser, shownTexts, storedTexts, waitForMessage, waitForStatus,
} from './support.js';

const env = serverAndBrowser();

/**
 * Makes every room socket of `page` fail to open while `window.blocking`
 * (set here) stays true; `numbers` (the app's TransportConfig, shortened)
 * are stored for the app.
 */
async function blockRoomSockets(page, numbers = null) {
  await page.addInitScript((numbers) => {
    if (numbers) localStorage.setItem('roomcast.transport', JSON.stringify(numbers));
    const Real = window.WebSocket;
    window.blockedSockets = 0;
    window.blocking = true;
    window.WebSocket = new Proxy(Real, {
      construct(target, args) {
        const [url, protocols] = args;
        if (window.blocking && /^\/ws\/(?!_me\/)/.test(new URL(url).pathname)) {
          window.blockedSockets += 1;
          return new target('ws://127.0.0.1:9/blocked', protocols);
        }
        return new target(...args);
      },
    });
  }, numbers);
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
