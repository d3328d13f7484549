// The app in a real browser against the real backend.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  artifacts, freePort, newPage, openPair, restartServer, send, serverAndBrowser, startServer, stopServer, tempDatabase,
  waitForMessage, waitForStatus, PATIENCE,
} from './support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The README's screenshot: refreshed by every run, so it shows real fonts. */
const screenshot = path.join(here, '..', '..', 'docs', 'screenshot.png');
const env = serverAndBrowser();

test('two pages in one room exchange messages', async () => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser, { width: 390, height: 760 });
  await alice.goto(`${env.server.url}/room/e2e-chat?name=Alice`);
  await bob.goto(`${env.server.url}/room/e2e-chat?name=Bob`);
  await Promise.all([waitForStatus(alice, 'open'), waitForStatus(bob, 'open')]);

  await send(alice, 'Hello from Alice <b>not bold</b>');
  const atBob = await waitForMessage(bob, 'Hello from Alice <b>not bold</b>');
  assert.equal(await atBob.locator('.sender').textContent(), 'Alice');
  assert.equal(await bob.locator('.text b').count(), 0, 'text is rendered as text, never HTML');
  const atAlice = await waitForMessage(alice, 'Hello from Alice <b>not bold</b>');
  assert.match(await atAlice.getAttribute('class'), /\bmine\b/, 'own messages are set apart');

  await send(bob, '你好, Alice 👋');
  await waitForMessage(alice, '你好, Alice 👋');
  await send(alice, 'Shall we ship it?');
  await waitForMessage(bob, 'Shall we ship it?');
  await alice.getByTestId('pending').waitFor({ state: 'detached', timeout: PATIENCE });

  await alice.screenshot({ path: path.join(artifacts, 'room-desktop.png') });
  await alice.screenshot({ path: screenshot });
  await bob.screenshot({ path: path.join(artifacts, 'room-phone.png') });
  await alice.context().close();
  await bob.context().close();
});

test('a right-to-left override in a text stays inside that text', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.url}/room/e2e-bidi?name=Dana`);
  await waitForStatus(page, 'open');
  const text = 'look \u202Egnp.exe';
  await send(page, text);
  const row = await waitForMessage(page, text);
  for (const part of ['.text', '.sender']) {
    const isolated = await row.locator(part).evaluate((node) => [getComputedStyle(node).unicodeBidi, node.dir]);
    assert.deepEqual(isolated, ['isolate', 'auto'], `${part} is isolated from the row around it`);
  }
  await page.context().close();
});

test('a shared link asks for a name once, and the join screen leads to the room', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.url}/room/e2e-link`);
  await page.getByTestId('name').fill('Carol');
  await page.getByTestId('join').click();
  await waitForStatus(page, 'open');
  await page.goto(`${env.server.url}/room/e2e-link`);
  await waitForStatus(page, 'open'); // remembered: no prompt this time
  assert.match(await page.locator('footer').textContent(), /Carol/);

  await page.goto(`${env.server.url}/`);
  await page.getByTestId('room').fill('e2e-other');
  await page.getByTestId('join').click();
  await waitForStatus(page, 'open');
  assert.equal(new URL(page.url()).pathname, '/room/e2e-other');
  await page.context().close();
});

test('a link\'s name is for newcomers only and leaves the address bar; Copy link copies the room alone', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.url}/room/e2e-share?name=Alice`);
  await waitForStatus(page, 'open');
  assert.match(await page.locator('footer').textContent(), /Alice/, 'a newcomer takes the link\'s name');
  assert.equal(new URL(page.url()).search, '', 'the name is taken out of the address bar');

  await page.goto(`${env.server.url}/room/e2e-share-2?name=Mallory&x=1`);
  await waitForStatus(page, 'open');
  assert.match(await page.locator('footer').textContent(), /Alice/, 'a saved name is kept');
  assert.equal(new URL(page.url()).search, '?x=1');

  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.server.url });
  await page.getByTestId('copy-link').click();
  await page.getByTestId('copy-link').filter({ hasText: 'Link copied' }).waitFor({ timeout: PATIENCE });
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${env.server.url}/room/e2e-share-2`);
  await page.context().close();
});

test('close and reconnect buttons', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.url}/room/e2e-buttons?name=Dan`);
  await waitForStatus(page, 'open');
  await page.getByTestId('close').click();
  await waitForStatus(page, 'closed');
  await page.getByTestId('system').filter({ hasText: '1000' }).first().waitFor({ timeout: PATIENCE });
  await page.getByTestId('reconnect').click();
  await waitForStatus(page, 'open');
  await page.context().close();
});

test("the seeds' plain HTML group chat works unchanged in raw mode beside the app", async () => {
  const fixture = await readFile(path.join(here, '..', 'fixtures', 'seed-flask-group-chat.html'), 'utf8');
  // Served over loopback by a server of its own, as the tutorial's Flask app
  // served it; its sockets carry no token and come from another origin, so
  // this Roomcast runs as README says for the seeds: `--auth open` and that
  // page's origin allowed.
  const pageServer = http.createServer();
  pageServer.listen(0, '127.0.0.1');
  await once(pageServer, 'listening');
  const pageOrigin = `http://127.0.0.1:${pageServer.address().port}`;
  const roomcast = await startServer(await freePort(), tempDatabase(), ['--auth', 'open', '--allowed-origins', pageOrigin]);
  // Only the address differs from the tutorial page.
  const seedHtml = fixture.replace('ws://192.168.11.50:8888/conn_ws', `ws://127.0.0.1:${roomcast.port}/ws/seed/${randomUUID()}`);
  pageServer.on('request', (request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(seedHtml);
  });
  const seed = await newPage(env.browser);
  await seed.goto(`${pageOrigin}/`);
  const app = await newPage(env.browser);
  await app.goto(`${roomcast.url}/room/seed?name=Erin`);
  await waitForStatus(app, 'open');
  await seed.waitForFunction(() => ws.readyState === WebSocket.OPEN, null, { timeout: PATIENCE });

  await seed.fill('#send_str', 'plain text from the seed page');
  await seed.click('#send_btn');
  await seed.locator('#char_list p', { hasText: 'plain text from the seed page' }).waitFor({ timeout: PATIENCE });
  const fromSeed = await waitForMessage(app, 'plain text from the seed page');
  await fromSeed.getByTestId('unverified').waitFor({ timeout: PATIENCE });

  await send(app, 'and back from the app');
  await seed.locator('#char_list p', { hasText: /^and back from the app$/ }).waitFor({ timeout: PATIENCE });
  await seed.context().close();
  await app.context().close();
  pageServer.close();
  assert.equal(await stopServer(roomcast), 0);
});

test('the page survives a server restart and delivers what was typed meanwhile', async () => {
  const { alice, bob } = await openPair(env, 'e2e-restart');

  assert.equal(await stopServer(env.server, 'SIGTERM'), 0);
  await Promise.all([waitForStatus(alice, 'reconnecting'), waitForStatus(bob, 'reconnecting')]);
  await alice.getByTestId('system').filter({ hasText: '1012' }).first().waitFor({ timeout: PATIENCE });
  // The status cycles between waiting and trying while the server is down,
  // so wait for the waiting phase rather than sampling the text once.
  await alice.getByTestId('status').filter({ hasText: /^reconnecting in \d+ s \(attempt \d+\)/ })
    .waitFor({ timeout: PATIENCE });

  await send(alice, 'typed while the server was down');
  const pending = alice.getByTestId('pending');
  await pending.waitFor({ timeout: PATIENCE });
  assert.match(await pending.textContent(), /waiting to be sent/);

  // Alice stays offline until Bob is back, so that Bob is in the room when
  // her queued message goes out (history for late joiners is not this test's
  // subject); going online also exercises the immediate retry on `online`.
  await alice.context().setOffline(true);
  await waitForStatus(alice, 'offline');
  env.server = await restartServer(env.server);
  await waitForStatus(bob, 'open');
  await alice.context().setOffline(false);
  await waitForStatus(alice, 'open');
  await waitForMessage(bob, 'typed while the server was down');
  await pending.waitFor({ state: 'detached', timeout: PATIENCE });
  assert.equal(await (await waitForMessage(alice, 'typed while the server was down')).count(), 1);
  await alice.screenshot({ path: path.join(artifacts, 'room-after-restart.png') });
  await alice.context().close();
  await bob.context().close();
});
