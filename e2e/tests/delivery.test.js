// What becomes of each message the user sends: refused before sending when
// too long, failed (never resent on its own) when the server refuses it for
// good, resent on its own when refused for now, and never lost or sent twice
// across tabs. The server here accepts frames of at most 8 KiB.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  newPage, restartServer, send, serverAndBrowser, shownTexts, stopServer, storedTexts, waitForMessage,
  waitForStatus, CUT, PATIENCE, ROOM_SOCKETS,
} from './support.js';

const LIMIT = 8192;
const env = serverAndBrowser(['--max-message-bytes', String(LIMIT)]);
const LONG = 'x'.repeat(12_000);

test('the composer refuses a message over the server\'s limit, with the reason', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.url}/room/e2e-limit?name=Ann`);
  await waitForStatus(page, 'open');
  const composer = page.getByTestId('composer');
  await composer.fill(LONG);
  const error = page.getByTestId('composer-error');
  await error.waitFor({ timeout: PATIENCE });
  assert.match(await error.textContent(), /12,0\d\d bytes.*at most 8,192/);
  assert.equal(await page.getByTestId('send').isDisabled(), true);
  await composer.press('Enter');
  assert.equal(await page.getByTestId('pending').count(), 0, 'nothing was queued');
  assert.equal(await composer.inputValue(), LONG, 'the text is kept for editing');

  await composer.fill('short enough');
  await error.waitFor({ state: 'detached', timeout: PATIENCE });
  await composer.press('Enter');
  await waitForMessage(page, 'short enough');
  await page.context().close();
});

test('a message forced past the limit fails once, is never resent, and can be deleted', async () => {
  const page = await newPage(env.browser);
  // The page is told the default limit instead of the real one, so that the
  // composer lets the message through and the server closes with 1009.
  let sockets = 0;
  await page.context().routeWebSocket(ROOM_SOCKETS, (socket) => {
    sockets += 1;
    const server = socket.connectToServer();
    server.onMessage((frame) => {
      socket.send(typeof frame === 'string' ? frame.replace(/"max_message_bytes":\d+/, '"max_message_bytes":65536') : frame);
    });
  });
  await page.goto(`${env.server.url}/room/e2e-forced?name=Ann`);
  await waitForStatus(page, 'open');
  await send(page, LONG);
  const failed = page.locator('[data-testid="pending"][data-state="failed"]');
  await failed.waitFor({ timeout: PATIENCE });
  assert.match(await failed.textContent(), /not sent: too long/);
  await page.getByTestId('system').filter({ hasText: '1009' }).first().waitFor({ timeout: PATIENCE });
  await waitForStatus(page, 'open');

  // A message sent after it goes out (the failed one would go first if it
  // were resent, and close the connection again).
  await send(page, 'after the failure');
  await waitForMessage(page, 'after the failure');
  const log = await page.getByTestId('system').allTextContents();
  assert.equal(sockets, 2, `one reconnect after the 1009, no more: ${JSON.stringify(log)}`);

  await page.reload();
  await waitForStatus(page, 'open');
  await failed.waitFor({ timeout: PATIENCE });
  await send(page, 'after the reload');
  await waitForMessage(page, 'after the reload');
  assert.equal(sockets, 3, 'the reload connected once; the failed message was not sent');
  assert.deepEqual(await storedTexts(env.server, 'e2e-forced'), ['after the failure', 'after the reload']);

  await failed.getByTestId('pending-delete').click();
  await failed.waitFor({ state: 'detached', timeout: PATIENCE });
  await page.reload();
  await waitForStatus(page, 'open');
  await waitForMessage(page, 'after the reload');
  assert.equal(await page.getByTestId('pending').count(), 0, 'deleted for good');
  await page.context().close();
});

test('260 messages submitted at once all arrive, in order, with no further action', async () => {
  const sender = await newPage(env.browser);
  const receiver = await newPage(env.browser);
  await sender.goto(`${env.server.url}/room/e2e-burst?name=Sam`);
  await receiver.goto(`${env.server.url}/room/e2e-burst?name=Rob`);
  await Promise.all([waitForStatus(sender, 'open'), waitForStatus(receiver, 'open')]);
  // Past the default burst of 200: the server refuses some with
  // `rate_limited`, and the app sends them again by itself.
  await sender.evaluate(() => {
    const input = document.querySelector('[data-testid="composer"]');
    for (let i = 1; i <= 260; i += 1) {
      input.value = `burst ${i}`;
      input.form.requestSubmit();
    }
  });
  const expected = Array.from({ length: 260 }, (_, i) => `burst ${i + 1}`);
  await receiver.waitForFunction((count) => document.querySelectorAll('[data-testid="message"]').length >= count,
    260, { timeout: 60_000 });
  assert.deepEqual(await shownTexts(receiver), expected, 'every message, once, in the order typed');
  await sender.getByTestId('pending').first().waitFor({ state: 'detached', timeout: PATIENCE });
  assert.deepEqual((await storedTexts(env.server, 'e2e-burst')), expected);
  await sender.context().close();
  await receiver.context().close();
});

test('two tabs offline each keep their message; a closed tab\'s message is still sent, exactly once', async () => {
  const context = await env.browser.newContext({ viewport: { width: 900, height: 700 } });
  const [tabA, tabB] = [await context.newPage(), await context.newPage()];
  for (const tab of [tabA, tabB]) {
    await tab.goto(`${env.server.url}/room/e2e-tabs?name=Tess`);
    await waitForStatus(tab, 'open');
  }
  assert.equal(await stopServer(env.server, 'SIGTERM'), 0);
  await Promise.all([waitForStatus(tabA, 'reconnecting'), waitForStatus(tabB, 'reconnecting')]);
  await send(tabA, 'typed in tab A');
  await send(tabB, 'typed in tab B');
  await tabA.getByTestId('pending').waitFor({ timeout: PATIENCE });
  await tabB.getByTestId('pending').waitFor({ timeout: PATIENCE });
  await tabA.close();

  env.server = await restartServer(env.server);
  await waitForStatus(tabB, 'open');
  await waitForMessage(tabB, 'typed in tab A');
  await waitForMessage(tabB, 'typed in tab B');
  await tabB.getByTestId('pending').first().waitFor({ state: 'detached', timeout: PATIENCE });
  const stored = await storedTexts(env.server, 'e2e-tabs');
  assert.deepEqual([...stored].sort(), ['typed in tab A', 'typed in tab B'], 'each stored exactly once');
  const shown = await shownTexts(tabB);
  assert.equal(shown.filter((text) => text === 'typed in tab A').length, 1);
  assert.equal(shown.filter((text) => text === 'typed in tab B').length, 1);
  await context.close();
});

test('a reloaded tab keeps its own unsent message while another tab of the room is open', async () => {
  const context = await env.browser.newContext({ viewport: { width: 900, height: 700 } });
  // The tabs' sockets can be cut while their pages still load.
  const sockets = new Set();
  let blocked = false;
  await context.routeWebSocket(ROOM_SOCKETS, (socket) => {
    if (blocked) {
      socket.close(CUT);
      return;
    }
    sockets.add(socket);
    socket.connectToServer();
  });
  const [tabA, tabB] = [await context.newPage(), await context.newPage()];
  for (const tab of [tabA, tabB]) {
    await tab.goto(`${env.server.url}/room/e2e-reload-tab?name=Tess`);
    await waitForStatus(tab, 'open');
  }
  blocked = true;
  await Promise.all([...sockets].map((socket) => socket.close(CUT)));
  await Promise.all([waitForStatus(tabA, 'reconnecting'), waitForStatus(tabB, 'reconnecting')]);
  await send(tabA, 'typed in tab A before its reload');
  await tabA.getByTestId('pending').waitFor({ timeout: PATIENCE });
  await tabA.reload();
  // Tab A let go of its lock while reloading; tab B must not take its
  // message (the reloaded tab takes its lock back within the grace).
  const pending = tabA.getByTestId('pending').filter({ hasText: 'typed in tab A before its reload' });
  await pending.waitFor({ timeout: PATIENCE });

  blocked = false;
  await waitForMessage(tabA, 'typed in tab A before its reload');
  await pending.waitFor({ state: 'detached', timeout: PATIENCE });
  assert.deepEqual(await storedTexts(env.server, 'e2e-reload-tab'), ['typed in tab A before its reload'], 'stored once');
  await context.close();
});
