// The room list: rooms an identity has read, newest first; a message in
// another room raises that room's badge and the tab's title count, on
// every tab of the identity; opening it (no page load) clears both on
// every tab; forgetting takes it off every tab's list; a direct message
// someone starts shows in the list under their name; at phone widths the
// list is a drawer (screenshot).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import path from 'node:path';
import { artifacts, newPage, PATIENCE, send, serverAndBrowser, waitForMessage, waitForStatus } from './support.js';

const env = serverAndBrowser();

async function open(page, room, name) {
  await page.goto(`${env.server.url}/room/${room}?name=${name}`);
  await waitForStatus(page, 'open');
}

/** The room list's rows, as `group:badge` (no badge: `group:`). */
async function rows(page) {
  return page.locator('[data-testid="room-row"]').evaluateAll((rows) =>
    rows.map((row) => `${row.dataset.group}:${row.querySelector('[data-testid="unread"]')?.textContent ?? ''}`));
}

async function waitForRows(page, wanted) {
  await page.waitForFunction(
    (wanted) => JSON.stringify([...document.querySelectorAll('[data-testid="room-row"]')].map(
      (row) => `${row.dataset.group}:${row.querySelector('[data-testid="unread"]')?.textContent ?? ''}`,
    )) === JSON.stringify(wanted),
    wanted,
    { timeout: PATIENCE },
  ).catch(async (error) => {
    throw new Error(`rows ${JSON.stringify(await rows(page))}, wanted ${JSON.stringify(wanted)}: ${error.message}`);
  });
}

async function waitForTitle(page, title) {
  await page.waitForFunction((title) => document.title === title, title, { timeout: PATIENCE });
}

test('badges and the title count rise on every tab, opening the room clears them, forgetting removes it', async () => {
  const alice = await newPage(env.browser);
  await open(alice, 'e2e-rooms-one', 'Alice');
  await send(alice, 'hello one');
  await waitForMessage(alice, 'hello one');
  // Another room by name, from the list: no page load.
  await alice.evaluate(() => { window.sameDocument = true; });
  await alice.getByTestId('join-room').fill('e2e-rooms-two');
  await alice.getByTestId('join-room').press('Enter');
  await waitForStatus(alice, 'open');
  await send(alice, 'hello two');
  await waitForMessage(alice, 'hello two');
  await waitForRows(alice, ['e2e-rooms-two:', 'e2e-rooms-one:']);
  assert.equal(await alice.evaluate(() => window.sameDocument), true, 'switching rooms loads no page');

  const aliceTab = await alice.context().newPage();
  await open(aliceTab, 'e2e-rooms-two', 'Alice');
  await waitForRows(aliceTab, ['e2e-rooms-two:', 'e2e-rooms-one:']);

  const bob = await newPage(env.browser);
  await open(bob, 'e2e-rooms-one', 'Bob');
  await send(bob, 'news for Alice');
  for (const page of [alice, aliceTab]) {
    await waitForRows(page, ['e2e-rooms-one:1', 'e2e-rooms-two:']);
    await waitForTitle(page, '(1) Roomcast');
  }

  await alice.locator('[data-testid="room-row"][data-group="e2e-rooms-one"] .open').click();
  await waitForMessage(alice, 'news for Alice');
  for (const page of [alice, aliceTab]) {
    await waitForRows(page, ['e2e-rooms-one:', 'e2e-rooms-two:']);
    await waitForTitle(page, 'Roomcast');
  }
  assert.equal(await alice.evaluate(() => window.sameDocument), true);

  await alice.locator('[data-testid="room-row"][data-group="e2e-rooms-two"] .forget').click();
  for (const page of [alice, aliceTab]) await waitForRows(page, ['e2e-rooms-one:']);
  for (const page of [alice, bob]) await page.context().close();
});

test('a direct message someone starts shows in the list under their name', async () => {
  const alice = await newPage(env.browser);
  await open(alice, 'e2e-rooms-dm', 'Alice');
  const bob = await newPage(env.browser);
  await open(bob, 'e2e-rooms-dm', 'Bob');
  const aliceId = await alice.evaluate(() => JSON.parse(localStorage.getItem('roomcast.identity')).client_id);
  const bobId = await bob.evaluate(() => JSON.parse(localStorage.getItem('roomcast.identity')).client_id);
  const dm = await bob.evaluate(async ([a, b]) => {
    const [first, second] = [a, b].sort();
    const bytes = new TextEncoder().encode(`${first}\n${second}`);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return `dm-${[...digest].map((x) => x.toString(16).padStart(2, '0')).join('').slice(0, 32)}`;
  }, [aliceId, bobId]);
  await bob.goto(`${env.server.url}/room/${dm}?with=${aliceId}`);
  await waitForStatus(bob, 'open');
  await send(bob, 'psst, Alice');
  const row = alice.locator(`[data-testid="room-row"][data-group="${dm}"]`);
  await row.waitFor({ timeout: PATIENCE });
  await alice.waitForFunction(
    (dm) => document.querySelector(`[data-testid="room-row"][data-group="${dm}"] .name`)?.textContent === 'Bob',
    dm,
    { timeout: PATIENCE },
  );
  assert.equal(await row.getByTestId('unread').textContent(), '1');
  for (const page of [alice, bob]) await page.context().close();
});

test('at phone widths the room list is a drawer', async () => {
  const phone = await newPage(env.browser, { width: 390, height: 760 });
  await phone.emulateMedia({ reducedMotion: 'reduce' });
  await open(phone, 'e2e-rooms-phone', 'Dana');
  await send(phone, 'on the phone');
  await waitForMessage(phone, 'on the phone');
  const drawer = phone.getByTestId('rooms');
  assert.equal(await drawer.isVisible(), false, 'the drawer starts closed');
  await phone.getByTestId('rooms-toggle').click();
  await drawer.waitFor({ state: 'visible' });
  await waitForRows(phone, ['e2e-rooms-phone:']);
  await phone.screenshot({ path: path.join(artifacts, 'rooms-phone.png') });
  await phone.getByRole('button', { name: 'Close the list of rooms' }).click();
  await drawer.waitFor({ state: 'hidden' });
  await phone.context().close();
});
