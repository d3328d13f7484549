// Identities the server signs: a first visit gets one and chats; a page
// cannot post under another browser's client id; a page whose identity the
// server no longer knows gets a new one by itself and loses nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  freePort, newPage, send, serverAndBrowser, startServer, stopServer, storedTexts, tempDatabase, waitForMessage,
  waitForStatus, PATIENCE,
} from './support.js';

const env = serverAndBrowser();

test('a first visit obtains an identity and chats as itself', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.url}/room/e2e-first?name=Faye`);
  await waitForStatus(page, 'open');
  const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('roomcast.identity')));
  assert.match(stored.client_id, /^[0-9a-f-]{36}$/);
  assert.equal(stored.token.split('.').length, 3, 'a JWT');
  assert.equal(typeof stored.expires_at, 'number', 'kept with its expiry');
  assert.equal(typeof stored.obtained_at, 'number');
  await send(page, 'hello as myself');
  const mine = await waitForMessage(page, 'hello as myself');
  assert.equal(await mine.locator('.sender').textContent(), 'You');
  assert.equal(await mine.getByTestId('unverified').count(), 0);
  await page.context().close();
});

test("a page cannot post under another browser's client id", async () => {
  const alice = await newPage(env.browser);
  await alice.goto(`${env.server.url}/room/e2e-spoof?name=Alice`);
  await waitForStatus(alice, 'open');
  const aliceId = await alice.evaluate(() => JSON.parse(localStorage.getItem('roomcast.identity')).client_id);
  const mallory = await newPage(env.browser);
  await mallory.goto(`${env.server.url}/room/e2e-spoof?name=Mallory`);
  await waitForStatus(mallory, 'open');
  // Mallory's page opens sockets under Alice's id: without a token, and with
  // its own token. Neither opens.
  const outcomes = await mallory.evaluate(async ({ port, aliceId }) => {
    const own = JSON.parse(localStorage.getItem('roomcast.identity')).token;
    const attempt = (query) => new Promise((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/ws/e2e-spoof/${aliceId}?name=Alice${query}`);
      socket.onopen = () => {
        socket.send('posted as Alice by Mallory');
        resolve('open');
      };
      socket.onclose = (event) => resolve(`closed ${event.code}`);
    });
    return [await attempt(''), await attempt(`&token=${encodeURIComponent(own)}`)];
  }, { port: env.server.port, aliceId });
  assert.deepEqual(outcomes, ['closed 1006', 'closed 1006'], 'both refused at the handshake');
  await send(alice, 'the real Alice');
  await waitForMessage(alice, 'the real Alice');
  assert.deepEqual(await storedTexts(env.server, 'e2e-spoof'), ['the real Alice']);
  await alice.context().close();
  await mallory.context().close();
});

test('after a restart with a new secret, the page gets a new identity and its queued message goes out once', async () => {
  // History in memory and no --secret: every start signs with a new secret.
  const port = await freePort();
  const memory = ['--history', 'memory'];
  let server = await startServer(port, tempDatabase(), memory);
  const page = await newPage(env.browser);
  await page.goto(`${server.url}/room/e2e-renew?name=Rita`);
  await waitForStatus(page, 'open');
  const before = await page.evaluate(() => JSON.parse(localStorage.getItem('roomcast.identity')).client_id);

  assert.equal(await stopServer(server), 0);
  await waitForStatus(page, 'reconnecting');
  await send(page, 'typed while the server was away');
  await page.getByTestId('pending').waitFor({ timeout: PATIENCE });
  server = await startServer(port, tempDatabase(), memory);

  await page.getByTestId('system').filter({ hasText: 'new one' }).first().waitFor({ timeout: 30_000 });
  await waitForStatus(page, 'open');
  const mine = await waitForMessage(page, 'typed while the server was away');
  assert.equal(await mine.locator('.sender').textContent(), 'You', 'sent under the new identity');
  const after = await page.evaluate(() => JSON.parse(localStorage.getItem('roomcast.identity')).client_id);
  assert.notEqual(after, before);
  assert.deepEqual(await storedTexts(server, 'e2e-renew'), ['typed while the server was away'], 'delivered once');
  await page.getByTestId('pending').waitFor({ state: 'detached', timeout: PATIENCE });
  await page.context().close();
  assert.equal(await stopServer(server), 0);
});
