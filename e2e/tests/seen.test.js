// "Seen by": Alice writes in a small room; Bob opens it and reads her
// message, and "Seen by Bob" appears under it on Alice's page, live. Her
// next message has it once Bob has read that one too, and the first one
// no longer does (the line goes under one's own latest message only).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newPage, PATIENCE, send, serverAndBrowser, waitForMessage, waitForStatus } from './support.js';

const env = serverAndBrowser();

/** Resolves once `message` shows `text` as who has seen it. */
async function waitForSeenBy(message, text) {
  await message.getByTestId('seen-by').filter({ hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: PATIENCE });
}

test('Alice sees that Bob has read her latest message', async () => {
  const room = 'e2e-seen';
  const alice = await newPage(env.browser);
  await alice.goto(`${env.server.url}/room/${room}?name=Alice`);
  await waitForStatus(alice, 'open');
  await send(alice, 'did you see this?');
  const first = await waitForMessage(alice, 'did you see this?');
  assert.equal(await alice.getByTestId('seen-by').count(), 0, 'nobody has read it yet');

  const bob = await newPage(env.browser);
  await bob.goto(`${env.server.url}/room/${room}?name=Bob`);
  await waitForStatus(bob, 'open');
  await waitForMessage(bob, 'did you see this?');
  await waitForSeenBy(first, 'Seen by Bob');
  assert.equal(await bob.getByTestId('seen-by').count(), 0, "Bob's page shows none: the message is not his");

  await send(alice, 'and this one?');
  const second = await waitForMessage(alice, 'and this one?');
  await waitForMessage(bob, 'and this one?');
  await waitForSeenBy(second, 'Seen by Bob');
  assert.equal(await first.getByTestId('seen-by').count(), 0, 'only under her latest message');
  assert.equal(await alice.getByTestId('seen-by').count(), 1);
  await alice.context().close();
  await bob.context().close();
});
