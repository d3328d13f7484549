// Nothing lost: a page that was away catches up, and what was typed while
// offline survives a reload and is delivered exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  apiGet, newPage, openPair, publishRaw, send, serverAndBrowser, shownTexts, waitForMessage, waitForStatus, PATIENCE,
  ROOM_SOCKETS,
} from './support.js';

/**
 * How long "at once" may take: a bound on behaviour, not a speed figure.
 * Without the offline listener a dead link showed "connected" for up to
 * 25 s (the heartbeat), and a Reconnect waited for a close that a
 * half-dead socket never delivers.
 */
const AT_ONCE = 5_000;

const env = serverAndBrowser();

test('a page that was away shows what it missed, in order, once', async () => {
  const { alice, bob, sockets } = await openPair(env, 'e2e-catchup', { cuttable: true });
  await send(bob, 'before the cut');
  await waitForMessage(alice, 'before the cut');

  await sockets.cut();
  await waitForStatus(alice, 'reconnecting');
  for (const text of ['missed one', 'missed two', 'missed three']) {
    await send(bob, text);
    await waitForMessage(bob, text);
  }
  await bob.getByTestId('pending').waitFor({ state: 'detached', timeout: PATIENCE });

  sockets.restore();
  await waitForStatus(alice, 'open');
  await waitForMessage(alice, 'missed three');
  assert.deepEqual(await shownTexts(alice), ['before the cut', 'missed one', 'missed two', 'missed three']);
  const seqs = await alice.locator('[data-testid="message"]').evaluateAll((nodes) => nodes.map((n) => Number(n.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in sequence order');
  await alice.context().close();
  await bob.context().close();
});

test('a message typed offline survives a reload and is delivered exactly once', async () => {
  const { alice, bob, sockets } = await openPair(env, 'e2e-reload', { cuttable: true });

  await sockets.cut();
  await waitForStatus(alice, 'reconnecting');
  await send(alice, 'typed offline, then reloaded');
  await alice.getByTestId('pending').waitFor({ timeout: PATIENCE });

  await alice.reload();
  const pending = alice.getByTestId('pending');
  await pending.waitFor({ timeout: PATIENCE });
  assert.match(await pending.textContent(), /typed offline, then reloaded/, 'the outbox survived the reload');

  sockets.restore();
  await waitForStatus(alice, 'open');
  await waitForMessage(bob, 'typed offline, then reloaded');
  await pending.waitFor({ state: 'detached', timeout: PATIENCE });
  // Let any duplicate show up before counting (Bob sends a marker after it).
  await send(bob, 'marker');
  await waitForMessage(alice, 'marker');
  for (const page of [alice, bob]) {
    const texts = await shownTexts(page);
    assert.equal(texts.filter((t) => t === 'typed offline, then reloaded').length, 1, 'shown once');
  }
  const stored = await apiGet(env.server, '/api/groups/e2e-reload/messages');
  assert.equal(stored.messages.filter((m) => m.text === 'typed offline, then reloaded').length, 1, 'stored once');
  await alice.context().close();
  await bob.context().close();
});

test('scrolling to the top loads older messages', async () => {
  const writer = await newPage(env.browser);
  await writer.goto(`${env.server.url}/room/e2e-scroll?name=Writer`);
  await waitForStatus(writer, 'open');
  // More than one join page (100): send through the page's own socket.
  for (let i = 1; i <= 130; i += 1) {
    await send(writer, `line ${i}`);
  }
  await waitForMessage(writer, 'line 130');
  await writer.getByTestId('pending').waitFor({ state: 'detached', timeout: PATIENCE });

  const reader = await newPage(env.browser);
  await reader.goto(`${env.server.url}/room/e2e-scroll?name=Reader`);
  await waitForStatus(reader, 'open');
  await waitForMessage(reader, 'line 130');
  assert.equal((await shownTexts(reader))[0], 'line 31', 'joins with the latest 100');
  await reader.getByTestId('timeline').evaluate((list) => { list.scrollTop = 0; });
  await waitForMessage(reader, 'line 1');
  const texts = await shownTexts(reader);
  assert.deepEqual(texts, Array.from({ length: 130 }, (_, i) => `line ${i + 1}`));
  await writer.context().close();
  await reader.context().close();
});

test('going offline shows it at once; coming back online reconnects at once and catches up', async () => {
  const { alice, bob } = await openPair(env, 'e2e-offline');
  await alice.context().setOffline(true);
  await alice.locator('[data-testid="status"][data-status="offline"]').waitFor({ timeout: AT_ONCE });
  await alice.getByTestId('system').filter({ hasText: 'offline' }).first().waitFor({ timeout: PATIENCE });
  await send(bob, 'sent while Alice was offline');
  await waitForMessage(bob, 'sent while Alice was offline');
  await alice.context().setOffline(false);
  await waitForMessage(alice, 'sent while Alice was offline');
  await waitForStatus(alice, 'open');
  await alice.context().close();
  await bob.context().close();
});

test('Reconnect and Close act at once, even on a socket that no longer answers', async () => {
  const page = await newPage(env.browser);
  let sockets = 0;
  await page.context().routeWebSocket(ROOM_SOCKETS, (socket) => {
    sockets += 1;
    if (sockets === 1) {
      // Half-dead: it opened, then nothing comes back, not even to a close.
      socket.onMessage(() => {});
      socket.onClose(() => {});
      return;
    }
    socket.connectToServer();
  });
  await page.goto(`${env.server.url}/room/e2e-half-dead?name=Hal`);
  await waitForStatus(page, 'open');
  await page.getByTestId('reconnect').click();
  await page.getByTestId('system').filter({ hasText: 'disconnected: 1000 reconnecting' }).first()
    .waitFor({ timeout: AT_ONCE });
  await send(page, 'through the new socket');
  await waitForMessage(page, 'through the new socket');
  assert.equal(sockets, 2);
  await page.getByTestId('close').click();
  await page.locator('[data-testid="status"][data-status="closed"]').waitFor({ timeout: AT_ONCE });
  await page.context().close();
});

test('a page of history that fails to load offers an inline retry', async () => {
  const writer = await newPage(env.browser);
  await writer.goto(`${env.server.url}/healthz`);
  await publishRaw(writer, env.server, 'e2e-page-retry', Array.from({ length: 130 }, (_, i) => `page ${i + 1}`));
  const reader = await newPage(env.browser);
  await reader.goto(`${env.server.url}/room/e2e-page-retry?name=Reader`);
  await waitForStatus(reader, 'open');
  await waitForMessage(reader, 'page 130');

  await reader.route('**/api/groups/**', (route) => route.abort());
  await reader.getByTestId('timeline').evaluate((list) => { list.scrollTop = 0; });
  const retry = reader.getByTestId('load-older-retry');
  await retry.waitFor({ timeout: PATIENCE });
  await reader.unroute('**/api/groups/**');
  await retry.click();
  await waitForMessage(reader, 'page 1');
  assert.deepEqual(await shownTexts(reader), Array.from({ length: 130 }, (_, i) => `page ${i + 1}`));
  await writer.context().close();
  await reader.context().close();
});
