// Direct messages between two identities: Alice opens one with Bob from the
// people panel, Bob from Alice's message in the room, both without a page
// load; they chat both ways under a header that names the other; a third
// identity given the link is refused for good, and sees none of it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  newPage, PATIENCE, send, serverAndBrowser, waitForMessage, waitForStatus,
} from './support.js';

const env = serverAndBrowser();

/** Wide enough for the people panel beside the timeline. */
const WIDE = { width: 1100, height: 700 };

async function clientId(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('roomcast.identity')).client_id);
}

/** Marks the document: a page load in between would lose the mark. */
async function markDocument(page) {
  await page.evaluate(() => { window.sameDocument = true; });
}

async function sameDocument(page) {
  return page.evaluate(() => window.sameDocument === true);
}

async function waitForTitle(page, title) {
  await page.waitForFunction(
    (wanted) => document.querySelector('[data-testid="room-title"]')?.textContent === wanted,
    title,
    { timeout: PATIENCE },
  );
}

test('two people chat in a direct message that a third cannot open', async () => {
  const room = 'e2e-dm';
  const alice = await newPage(env.browser, WIDE);
  const bob = await newPage(env.browser, WIDE);
  await alice.goto(`${env.server.url}/room/${room}?name=Alice`);
  await bob.goto(`${env.server.url}/room/${room}?name=Bob`);
  await Promise.all([waitForStatus(alice, 'open'), waitForStatus(bob, 'open')]);
  const [aliceId, bobId] = [await clientId(alice), await clientId(bob)];

  // Alice: from Bob's row in the people panel. Her own row has no button.
  const bobRow = alice.locator(`[data-testid="person"][data-client-id="${bobId}"]`);
  await bobRow.waitFor({ timeout: PATIENCE });
  assert.equal(await alice.locator(`[data-testid="person"][data-client-id="${aliceId}"] button`).count(), 0);
  await send(alice, 'Bob, a word in private?');
  await markDocument(alice);
  await bobRow.getByRole('button', { name: 'Message Bob' }).click();
  await waitForStatus(alice, 'open');
  const dm = new URL(alice.url());
  assert.match(dm.pathname, /^\/room\/dm-[0-9a-f]{32}$/);
  assert.equal(dm.searchParams.get('with'), bobId);
  assert.ok(await sameDocument(alice), 'opened without a page load');
  // Bob is not here yet, nor has he written here: his id names him.
  await waitForTitle(alice, `Direct message with guest-${bobId.slice(0, 4)}`);
  assert.equal(await alice.getByTestId('copy-link').count(), 0, 'no link to share');
  await send(alice, 'just between us');

  // Bob: from Alice's message in the room.
  const hers = await waitForMessage(bob, 'Bob, a word in private?');
  await markDocument(bob);
  await hers.getByRole('button', { name: 'Alice', exact: true }).click();
  await waitForStatus(bob, 'open');
  assert.equal(new URL(bob.url()).pathname, dm.pathname, 'the same room from either side');
  assert.equal(new URL(bob.url()).searchParams.get('with'), aliceId);
  assert.ok(await sameDocument(bob), 'opened without a page load');
  await waitForTitle(bob, 'Direct message with Alice');
  await waitForMessage(bob, 'just between us');
  await waitForTitle(alice, 'Direct message with Bob');
  await send(bob, 'sure, here I am');
  await waitForMessage(alice, 'sure, here I am');
  assert.equal(await bob.getByTestId('sender').count(), 0, 'nobody else to write to from here');

  // Carol, given Alice's link: a clear refusal, final, and nothing of theirs.
  const carol = await newPage(env.browser, WIDE);
  await carol.goto(`${env.server.url}/room/${room}?name=Carol`);
  await waitForStatus(carol, 'open');
  await carol.goto(alice.url());
  await waitForStatus(carol, 'refused');
  const refusal = carol.getByTestId('refusal');
  assert.equal(await refusal.textContent(), 'This direct message is between two other people');
  assert.equal(await refusal.getAttribute('role'), 'alert');
  assert.equal(await carol.locator('[data-testid="message"]').count(), 0);
  assert.equal(await carol.getByTestId('composer').count(), 0, 'nowhere to write');
  assert.match(await carol.getByTestId('status').textContent(), /between two other people/);

  for (const page of [alice, bob, carol]) await page.context().close();
});
