// A server whose history started over (here: memory history, restarted):
// the page, reconnecting with its number and epoch, is told so, drops what
// it showed, says why, and goes on with the new history.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  freePort, newPage, send, serverAndBrowser, shownTexts, startServer, stopServer, tempDatabase, waitForMessage,
  waitForStatus,
} from './support.js';

const env = serverAndBrowser();

test('a history that started over replaces the timeline, and the page says so', async () => {
  // The same secret across the restart: the page's identity stays valid,
  // only the history is new.
  const port = await freePort();
  const args = ['--history', 'memory', '--secret', 'e2e-reset-secret-0123456789abcdef0123456789'];
  let server = await startServer(port, tempDatabase(), args);
  const page = await newPage(env.browser);
  await page.goto(`${server.url}/room/e2e-reset?name=Remy`);
  await waitForStatus(page, 'open');
  for (const text of ['old one', 'old two', 'old three']) {
    await send(page, text);
    await waitForMessage(page, text);
  }

  assert.equal(await stopServer(server), 0);
  await waitForStatus(page, 'reconnecting');
  server = await startServer(port, tempDatabase(), args);

  await page.getByTestId('system').filter({ hasText: 'history was reset' }).first().waitFor();
  await waitForStatus(page, 'open');
  assert.deepEqual(await shownTexts(page), [], 'what the old history showed is gone');
  await send(page, 'new history');
  await waitForMessage(page, 'new history');
  assert.deepEqual(await shownTexts(page), ['new history']);
  await page.context().close();
  assert.equal(await stopServer(server), 0);
});
