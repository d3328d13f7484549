// Typing indicators between two identities in one room: what Alice types
// shows in Bob's page as "Alice is typing…", which goes once her message
// arrives, or on its own a while after she stops (TYPING_SHOWN_MS, 6 s).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPair, serverAndBrowser, waitForMessage } from './support.js';

const env = serverAndBrowser();

/** The first `typing` goes at once, and the server passes it on at once. */
const SHOWN_WITHIN = 5_000;
/** TYPING_SHOWN_MS after the last `typing` (at most 2 s after the last key), with room to spare. */
const GONE_WITHIN = 6_000 + 2_000 + 4_000;

/** Resolves once `page`'s typing line reads `text` (blank: nobody). */
async function waitForTypingLine(page, text, timeout) {
  await page.waitForFunction(
    (wanted) => document.querySelector('[data-testid="typing"]')?.textContent.trim() === wanted,
    text,
    { timeout },
  );
}

async function typingLine(page) {
  return (await page.getByTestId('typing').textContent()).trim();
}

test('typing shows in the other page until the message arrives', async () => {
  const { alice, bob } = await openPair(env, 'e2e-typing');
  const line = bob.getByTestId('typing');
  assert.equal(await line.getAttribute('aria-live'), 'polite', 'announced politely');
  assert.equal(await typingLine(bob), '', 'nobody types yet');
  const emptyHeight = (await line.boundingBox()).height;
  assert.ok(emptyHeight > 0, 'an empty line keeps its height');

  await alice.getByTestId('composer').pressSequentially('Hello, ', { delay: 40 });
  await waitForTypingLine(bob, 'Alice is typing…', SHOWN_WITHIN);
  const name = line.locator('.typer');
  assert.equal(await name.textContent(), 'Alice');
  assert.deepEqual(
    await name.evaluate((node) => [getComputedStyle(node).unicodeBidi, node.dir]),
    ['isolate', 'auto'],
    'the name is isolated from the words around it',
  );
  assert.equal((await line.boundingBox()).height, emptyHeight, 'showing the line moves nothing');
  assert.equal(await typingLine(alice), '', 'Alice is not told of her own typing');

  await alice.getByTestId('composer').pressSequentially('Bob', { delay: 40 });
  await alice.getByTestId('composer').press('Enter');
  await waitForMessage(bob, 'Hello, Bob');
  // Cleared when the message came, not 6 s after the last `typing`.
  await waitForTypingLine(bob, '', 1_000);

  await alice.context().close();
  await bob.context().close();
});

test('typing that stops without a message goes after a while', async () => {
  const { alice, bob } = await openPair(env, 'e2e-typing-stops');
  await alice.getByTestId('composer').pressSequentially('never sent', { delay: 40 });
  await waitForTypingLine(bob, 'Alice is typing…', SHOWN_WITHIN);
  await waitForTypingLine(bob, '', GONE_WITHIN);
  assert.equal(await bob.locator('[data-testid="message"]').count(), 0, 'nothing was sent');

  await alice.context().close();
  await bob.context().close();
});
