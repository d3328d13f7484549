// The timeline stays right through a restart, and scrolling follows the
// newest message only while the reader is at the bottom.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  newPage, openPair, publishRaw, restartServer, send, serverAndBrowser, shownTexts, stopServer, waitForMessage,
  waitForStatus, PATIENCE,
} from './support.js';

const env = serverAndBrowser();

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
  await alice.waitForFunction(() => {
    const list = document.querySelector('[data-testid="timeline"]');
    return list.scrollHeight - list.scrollTop - list.clientHeight <= 2;
  }, null, { timeout: PATIENCE });
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
  await reader.waitForFunction(() => {
    const list = document.querySelector('[data-testid="timeline"]');
    return list.scrollHeight - list.scrollTop - list.clientHeight <= 2;
  }, null, { timeout: PATIENCE });
  assert.ok(await showsAtBottom(reader, 'new 5'));
  await button.waitFor({ state: 'detached', timeout: PATIENCE });
  const texts = await shownTexts(reader);
  assert.deepEqual(texts.slice(-6), ['old 150', 'new 1', 'new 2', 'new 3', 'new 4', 'new 5']);
  await reader.context().close();
  await writer.context().close();
});
