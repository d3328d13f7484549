// The timeline stays right through a restart, and scrolling follows the
// newest message only while the reader is at the bottom.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  newPage, openPair, publishRaw, restartServer, send, serverAndBrowser, shownTexts, stopServer, waitForMessage,
  waitForStatus, PATIENCE,
} from './support.js';

// Floods in these tests come from raw sockets, paced by their echoes.
const env = serverAndBrowser(['--publish-rate', '0']);

/** Where each row of the timeline is: its kind, text and vertical place. */
async function rows(page) {
  return page.getByTestId('timeline').evaluate((list) => [...list.children].map((row) => ({
    kind: row.dataset.testid,
    text: row.querySelector('.text')?.textContent ?? row.textContent,
    seq: row.dataset.seq ? Number(row.dataset.seq) : null,
  })));
}

/** Whether the timeline is scrolled to its end and `text`'s row is in view. */
async function showsAtBottom(page, text) {
  return page.getByTestId('timeline').evaluate((list, wanted) => {
    const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight <= 2;
    const row = [...list.querySelectorAll('[data-testid="message"]')]
      .find((node) => node.querySelector('.text').textContent === wanted);
    if (!row) return false;
    const [view, box] = [list.getBoundingClientRect(), row.getBoundingClientRect()];
    return atEnd && box.top >= view.top && box.bottom <= view.bottom + 1;
  }, text);
}

test('after a server restart, new messages appear below the status lines and the view follows them', async () => {
  const { alice, bob } = await openPair(env, 'e2e-follow');
  for (let i = 1; i <= 20; i += 1) await send(bob, `before ${i}`);
  await waitForMessage(alice, 'before 20');

  assert.equal(await stopServer(env.server, 'SIGTERM'), 0);
  await Promise.all([waitForStatus(alice, 'reconnecting'), waitForStatus(bob, 'reconnecting')]);
  env.server = await restartServer(env.server);
  await Promise.all([waitForStatus(alice, 'open'), waitForStatus(bob, 'open')]);

  for (let i = 1; i <= 40; i += 1) await send(bob, `after ${i}`);
  await waitForMessage(alice, 'after 40');
  await atBottom(alice);
  assert.ok(await showsAtBottom(alice, 'after 40'), 'the newest message is in view');

  const shown = await rows(alice);
  const lastLine = shown.findLastIndex((row) => row.kind === 'system');
  const firstAfter = shown.findIndex((row) => row.text === 'after 1');
  assert.match(shown[lastLine].text, /connected/);
  assert.ok(shown.some((row) => row.kind === 'system' && /1012/.test(row.text)), 'the restart is logged');
  assert.ok(lastLine < firstAfter, `every status line is above the new messages: ${JSON.stringify(shown.slice(-45, -38))}`);
  const messages = shown.filter((row) => row.kind === 'message');
  assert.deepEqual(messages.slice(-40).map((row) => row.text), Array.from({ length: 40 }, (_, i) => `after ${i + 1}`));
  assert.equal(shown.at(-1).text, 'after 40', 'the newest message is last');
  await alice.context().close();
  await bob.context().close();
});

test('reading older messages while new ones arrive keeps the place and offers them', async () => {
  const reader = await newPage(env.browser);
  const writer = await newPage(env.browser);
  await writer.goto(`${env.server.url}/room/e2e-reading?name=Writer`);
  await waitForStatus(writer, 'open');
  await publishRaw(writer, env.server, 'e2e-reading', Array.from({ length: 150 }, (_, i) => `old ${i + 1}`));
  await reader.goto(`${env.server.url}/room/e2e-reading?name=Reader`);
  await waitForStatus(reader, 'open');
  await waitForMessage(reader, 'old 150');

  // Scroll up to "old 80" and remember where it is on screen.
  const timeline = reader.getByTestId('timeline');
  const row = (await waitForMessage(reader, 'old 80')).first();
  await row.evaluate((node) => node.scrollIntoView({ block: 'start' }));
  await timeline.evaluate((list) => list.dispatchEvent(new Event('scroll')));
  const before = (await row.boundingBox()).y;

  for (let i = 1; i <= 5; i += 1) await send(writer, `new ${i}`);
  await waitForMessage(writer, 'new 5');
  const button = reader.getByTestId('new-messages');
  await button.filter({ hasText: '5 new messages' }).waitFor({ timeout: PATIENCE });
  assert.ok(Math.abs((await row.boundingBox()).y - before) <= 2, 'the row being read stays in place');
  assert.ok(!(await showsAtBottom(reader, 'new 5')), 'the view did not jump');

  // Loading an older page keeps the row being read in place too.
  await timeline.evaluate((list) => { list.scrollTop = 0; });
  const first = (await waitForMessage(reader, 'old 51')).first();
  const firstBefore = (await first.boundingBox()).y;
  await waitForMessage(reader, 'old 1');
  assert.ok(Math.abs((await first.boundingBox()).y - firstBefore) <= 2, 'an older page goes above the view');

  await button.click();
  await atBottom(reader);
  assert.ok(await showsAtBottom(reader, 'new 5'));
  await button.waitFor({ state: 'detached', timeout: PATIENCE });
  const texts = await shownTexts(reader);
  assert.deepEqual(texts.slice(-6), ['old 150', 'new 1', 'new 2', 'new 3', 'new 4', 'new 5']);
  await reader.context().close();
  await writer.context().close();
});

test('a reader at the bottom keeps following a fast stream of messages', async () => {
  const reader = await newPage(env.browser);
  const writer = await newPage(env.browser);
  await reader.goto(`${env.server.url}/room/e2e-stream?name=Reader`);
  await writer.goto(`${env.server.url}/healthz`);
  await waitForStatus(reader, 'open');
  const texts = Array.from({ length: 400 }, (_, i) => `stream ${i + 1}`);
  await publishRaw(writer, env.server, 'e2e-stream', texts, { intervalMs: 5 });
  await waitForMessage(reader, 'stream 400');
  await atBottom(reader);
  assert.ok(await showsAtBottom(reader, 'stream 400'));
  assert.equal(await reader.getByTestId('new-messages').count(), 0, 'the reader never left the bottom');
  await reader.context().close();
  await writer.context().close();
});

/** Pages back (scrolling to the top) until the window is full and has let go of the newest. */
async function pageBackUntilTheNewestAreLetGo(page) {
  const timeline = page.getByTestId('timeline');
  while (await page.getByTestId('new-messages').count() === 0) {
    const oldest = await page.locator('[data-testid="message"]').first().getAttribute('data-seq');
    await timeline.evaluate((list) => { list.scrollTop = 0; });
    await page.waitForFunction((seq) => document.querySelector('[data-testid="message"]').dataset.seq !== seq
      || document.querySelector('[data-testid="new-messages"]'), oldest, { timeout: PATIENCE });
  }
}

async function atBottom(page) {
  await page.waitForFunction(() => {
    const list = document.querySelector('[data-testid="timeline"]');
    return list.scrollHeight - list.scrollTop - list.clientHeight <= 2;
  }, null, { timeout: PATIENCE });
}

test('reading far back: "newest" jumps back, and newer pages load below without moving the reader', async () => {
  const reader = await newPage(env.browser);
  const writer = await newPage(env.browser);
  await writer.goto(`${env.server.url}/healthz`);
  await publishRaw(writer, env.server, 'e2e-far', Array.from({ length: 2300 }, (_, i) => `far ${i + 1}`));
  await reader.goto(`${env.server.url}/room/e2e-far?name=Reader`);
  await waitForStatus(reader, 'open');
  await waitForMessage(reader, 'far 2300');
  const timeline = reader.getByTestId('timeline');
  const messages = reader.locator('[data-testid="message"]');

  await pageBackUntilTheNewestAreLetGo(reader);
  assert.equal(await messages.count(), 2000, 'the window is full');
  assert.equal(await reader.getByText('far 2300', { exact: true }).count(), 0, 'the newest were let go');
  await reader.getByTestId('new-messages').click();
  await waitForMessage(reader, 'far 2300');
  await atBottom(reader);
  await send(reader, 'after the jump');
  await waitForMessage(reader, 'after the jump');
  await atBottom(reader);
  assert.ok(await showsAtBottom(reader, 'after the jump'), 'following again');

  // Back again, then down to the end of what is held: the next page loads
  // below, and the row being read stays where it is.
  await pageBackUntilTheNewestAreLetGo(reader);
  const last = await messages.last().getAttribute('data-seq');
  await timeline.evaluate((list) => { list.scrollTop = list.scrollHeight - list.clientHeight - 150; });
  const before = await timeline.evaluate((list) => {
    const top = list.getBoundingClientRect().top;
    const row = [...list.querySelectorAll('[data-testid="message"]')].find((node) => node.getBoundingClientRect().bottom > top);
    return { seq: row.dataset.seq, y: row.getBoundingClientRect().y };
  });
  await reader.waitForFunction((seq) => [...document.querySelectorAll('[data-testid="message"]')].at(-1).dataset.seq !== seq,
    last, { timeout: PATIENCE });
  const row = reader.locator(`[data-testid="message"][data-seq="${before.seq}"]`);
  assert.ok(Math.abs((await row.boundingBox()).y - before.y) <= 2, 'the reader was not moved');
  await reader.context().close();
  await writer.context().close();
});

test('when a jump to the newest fails, its Retry jumps again', async () => {
  const reader = await newPage(env.browser);
  const writer = await newPage(env.browser);
  await writer.goto(`${env.server.url}/healthz`);
  await publishRaw(writer, env.server, 'e2e-jump-retry', Array.from({ length: 2300 }, (_, i) => `jr ${i + 1}`));
  await reader.goto(`${env.server.url}/room/e2e-jump-retry?name=Reader`);
  await waitForStatus(reader, 'open');
  await waitForMessage(reader, 'jr 2300');
  await pageBackUntilTheNewestAreLetGo(reader);

  await reader.route('**/api/groups/**', (route) => route.abort());
  await reader.getByTestId('new-messages').click();
  const retry = reader.getByTestId('load-newer-retry');
  await retry.waitFor({ timeout: PATIENCE });
  await reader.unroute('**/api/groups/**');
  await retry.click();
  await waitForMessage(reader, 'jr 2300');
  await atBottom(reader);
  assert.ok(await showsAtBottom(reader, 'jr 2300'), 'the retry jumped to the newest');
  await reader.context().close();
  await writer.context().close();
});
