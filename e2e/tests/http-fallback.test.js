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

/** Makes every room socket of `page` fail to open. */
async function blockRoomSockets(page) {
  await page.addInitScript(() => {
    const Real = window.WebSocket;
    window.blockedSockets = 0;
    window.WebSocket = new Proxy(Real, {
      construct(target, args) {
        const [url, protocols] = args;
        if (/^\/ws\/(?!_me\/)/.test(new URL(url).pathname)) {
          window.blockedSockets += 1;
          return new target('ws://127.0.0.1:9/blocked', protocols);
        }
        return new target(...args);
      },
    });
  });
}

test('a page that cannot open a WebSocket chats over the HTTP stream, nothing lost or doubled', async () => {
  const room = `fallback-${Date.now()}`;
  const carol = await newPage(env.browser);
  await blockRoomSockets(carol);
  const dave = await newPage(env.browser);
  await carol.goto(`${env.server.url}/room/${room}?name=Carol`);
  await dave.goto(`${env.server.url}/room/${room}?name=Dave`);
  await waitForStatus(dave, 'open');
  const status = carol.locator('[data-testid="status"][data-status="open"][data-transport="stream"]');
  await status.waitFor({ timeout: 30_000 });
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
