// Read cursors: Bob reads a room and leaves; a message from his other tab
// and three of Alice's arrive; when Bob opens the room again, "New
// messages" sits above Alice's first (his own is not new to him), the
// server hears that he read them (his other tab gets the `cursor`), and the
// divider stays while the room is open; opened again with nothing new, the
// room shows none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  openPair, PATIENCE, send, serverAndBrowser, waitForMessage, waitForStatus, waitForStored,
} from './support.js';

const env = serverAndBrowser();

/**
 * Another tab of the identity of `context` (a socket in a page of its own,
 * without the app) in `room`: it records the `cursor` events it hears and
 * can send as that identity.
 */
async function otherTab(context, room) {
  const page = await context.newPage();
  await page.goto(`${env.server.url}/`);
  await page.evaluate(async ({ port, room }) => {
    const { client_id: client, token } = JSON.parse(localStorage.getItem('roomcast.identity'));
    const socket = new WebSocket(
      `ws://127.0.0.1:${port}/ws/${room}/${client}?name=Bob`,
      ['roomcast.v1', `roomcast.token.${token}`],
    );
    window.cursors = [];
    window.synced = false;
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === 'cursor') window.cursors.push(frame.seq);
      if (frame.type === 'synced') window.synced = true;
    };
    window.tab = socket;
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error('the other tab did not connect'));
    });
  }, { port: env.server.port, room });
  await page.waitForFunction(() => window.synced, null, { timeout: PATIENCE });
  return page;
}

/** Resolves once the other tab has heard a `cursor` at `seq`. */
async function waitForCursor(tab, seq) {
  await tab.waitForFunction((wanted) => window.cursors.includes(wanted), seq, { timeout: PATIENCE });
}

/** The texts of the messages just before and just after the divider. */
async function aroundDivider(page) {
  return page.getByTestId('divider').evaluate((divider) => [
    divider.previousElementSibling?.querySelector('.text')?.textContent,
    divider.nextElementSibling?.querySelector('.text')?.textContent,
  ]);
}

test('a room opened again shows where the new messages begin, and reading them moves the cursor', async () => {
  const room = 'e2e-read';
  const { alice, bob } = await openPair(env, room);
  const tab = await otherTab(bob.context(), room);

  await send(alice, 'read before leaving');
  await waitForMessage(bob, 'read before leaving');
  await waitForCursor(tab, 1);
  assert.equal(await bob.getByTestId('divider').count(), 0, 'nothing new when it opened');
  await bob.goto(`${env.server.url}/`);

  await tab.evaluate(() => window.tab.send(JSON.stringify({ type: 'send', id: crypto.randomUUID(), text: 'from my other tab' })));
  await waitForStored(env.server, room, 'from my other tab');
  for (const text of ['new 1', 'new 2', 'new 3']) await send(alice, text);
  await waitForStored(env.server, room, 'new 3');

  await bob.goto(`${env.server.url}/room/${room}`);
  await waitForStatus(bob, 'open');
  await waitForMessage(bob, 'new 3');
  assert.equal(await bob.getByTestId('divider').count(), 1);
  assert.deepEqual(await aroundDivider(bob), ['from my other tab', 'new 1'], "above Alice's first: his own is not new");
  assert.equal(await bob.getByTestId('divider').textContent(), 'New messages');

  // Seen in a visible, focused tab: read up to Alice's last (message 5).
  await waitForCursor(tab, 5);
  assert.deepEqual(await aroundDivider(bob), ['from my other tab', 'new 1'], 'the divider stays while the room is open');

  await bob.reload();
  await waitForStatus(bob, 'open');
  await waitForMessage(bob, 'new 3');
  assert.equal(await bob.getByTestId('divider').count(), 0, 'opened again with nothing new');

  for (const page of [alice, bob]) await page.context().close();
});
