// Who is in the room, between three identities: each page lists the others
// with their count; a second tab of one identity is one person with two
// connections; a reload within the grace shows no leave, closing a page
// shows one after it; at phone widths the list is a sheet opened from the
// header (screenshots).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import path from 'node:path';
import { artifacts, newPage, PATIENCE, serverAndBrowser, waitForStatus } from './support.js';

/** Short, so that the test sees a leave soon; a reload still fits in it. */
const GRACE_MS = 3_000;
const env = serverAndBrowser(['--presence-grace', `${GRACE_MS / 1000}s`]);

async function open(page, room, name) {
  await page.goto(`${env.server.url}/room/${room}?name=${name}`);
  await waitForStatus(page, 'open');
}

/** Resolves once `page`'s people panel lists exactly `names` (in order) under "N online". */
async function waitForPeople(page, names) {
  await page.waitForFunction(
    (wanted) => {
      const shown = [...document.querySelectorAll('[data-testid="person"] .name')].map((node) => node.textContent);
      const online = document.querySelector('[data-testid="online"]')?.textContent;
      return JSON.stringify(shown) === JSON.stringify(wanted) && online === `${wanted.length} online`;
    },
    names,
    { timeout: PATIENCE },
  );
}

async function connectionsOf(page, name) {
  const row = page.locator('[data-testid="person"]').filter({ has: page.locator('.name', { hasText: name }) });
  const badge = row.getByTestId('connections');
  return (await badge.count()) === 0 ? 1 : Number((await badge.textContent()).replace('×', ''));
}

test('each page sees the others online, a reload shows no leave, a closed page leaves after the grace', async () => {
  const room = 'e2e-presence';
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  const carol = await newPage(env.browser);
  await open(alice, room, 'Alice');
  await open(bob, room, 'Bob');
  await open(carol, room, 'Carol');
  for (const page of [alice, bob, carol]) await waitForPeople(page, ['Alice', 'Bob', 'Carol']);
  assert.equal(await alice.locator('[data-testid="person"]', { hasText: '(you)' }).locator('.name').textContent(), 'Alice');

  // A second tab of Bob's (same browser context, same identity): one person, two connections.
  const bobTab = await bob.context().newPage();
  await open(bobTab, room, 'Bob');
  await alice.waitForFunction(
    () => [...document.querySelectorAll('[data-testid="person"]')].some((row) => row.textContent.includes('Bob') && row.textContent.includes('×2')),
    null,
    { timeout: PATIENCE },
  );
  assert.equal(await connectionsOf(alice, 'Bob'), 2);
  await waitForPeople(alice, ['Alice', 'Bob', 'Carol']);
  await bobTab.close();

  // Carol reloads: nobody sees her go, even once the grace is over. Alice's
  // page notes every moment Carol's row is missing.
  await alice.evaluate(() => {
    window.carolMissing = 0;
    const list = document.querySelector('[data-testid="people"]');
    new MutationObserver(() => {
      const names = [...list.querySelectorAll('[data-testid="person"] .name')].map((node) => node.textContent);
      if (!names.includes('Carol')) window.carolMissing += 1;
    }).observe(list, { childList: true, subtree: true, characterData: true });
  });
  await carol.reload();
  await waitForStatus(carol, 'open');
  // Absence over the grace is the claim itself: wait it out.
  await alice.waitForTimeout(GRACE_MS + 1_000);
  assert.equal(await alice.evaluate(() => window.carolMissing), 0, 'a reload shows no leave');
  await waitForPeople(alice, ['Alice', 'Bob', 'Carol']);
  await waitForPeople(carol, ['Alice', 'Bob', 'Carol']);

  // Carol closes her page: after the grace she is gone for Alice and Bob.
  const closed = Date.now();
  await carol.context().close();
  await waitForPeople(alice, ['Alice', 'Bob']);
  await waitForPeople(bob, ['Alice', 'Bob']);
  assert.ok(Date.now() - closed >= GRACE_MS, `left after ${Date.now() - closed} ms, within the grace`);
  await alice.context().close();
  await bob.context().close();
});

test('at phone widths the people list is a sheet opened from the header', async () => {
  const room = 'e2e-presence-phone';
  const phone = await newPage(env.browser, { width: 390, height: 760 });
  // No slide-in: the sheet is where it ends at once (the pictures).
  await phone.emulateMedia({ reducedMotion: 'reduce' });
  const other = await newPage(env.browser);
  await open(other, room, 'Dana');
  await open(phone, room, 'Eve');
  const sheet = phone.getByTestId('people');
  assert.equal(await sheet.isVisible(), false, 'the sheet starts closed');
  const toggle = phone.getByTestId('people-toggle');
  await phone.waitForFunction(
    () => document.querySelector('[data-testid="people-toggle"]')?.textContent === '2 online',
    null,
    { timeout: PATIENCE },
  );
  await toggle.click();
  await sheet.waitFor({ state: 'visible' });
  await waitForPeople(phone, ['Dana', 'Eve']);
  await phone.screenshot({ path: path.join(artifacts, 'people-phone.png') });
  await phone.getByRole('button', { name: 'Close the list of people' }).click();
  await sheet.waitFor({ state: 'hidden' });

  const wide = await newPage(env.browser, { width: 1100, height: 700 });
  await open(wide, room, 'Finn');
  await waitForPeople(wide, ['Dana', 'Eve', 'Finn']);
  assert.equal(await wide.getByTestId('people-toggle').isVisible(), false, 'no toggle beside a panel');
  await wide.screenshot({ path: path.join(artifacts, 'people-desktop.png') });
  for (const page of [phone, other, wide]) await page.context().close();
});
