// Tokens and the app: its sockets carry no token in their URL (it rides in
// the second subprotocol), and an identity stored without `expires_at` (by
// an earlier version of the app, whose tokens may not expire at all) is
// renewed on the next visit, to the same client id, and not again on the
// visit after.
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { newPage, send, serverAndBrowser, waitForMessage, waitForStatus, PATIENCE } from './support.js';

// A known secret, so that the test can sign a token as servers did before
// tokens expired.
const SECRET = 'e2e-tokens-secret-0123456789abcdef0123456789';
const env = serverAndBrowser(['--secret', SECRET]);

const RENEW = '/api/identities/renew';

/** A token as servers signed them before tokens expired: no exp, no iat. */
function tokenWithoutExpiry(clientId) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: clientId })}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

function claims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

/**
 * A page whose browser already stored `stored` as its identity (as an
 * earlier version of the app did), noting every socket URL and every
 * renewal request it makes.
 */
async function pageWithStoredIdentity(stored) {
  const page = await newPage(env.browser);
  const seen = { sockets: [], renewals: 0 };
  page.on('websocket', (socket) => seen.sockets.push(socket.url()));
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === RENEW) seen.renewals += 1;
  });
  // The start page touches no identity: storage is set before the app uses it.
  await page.goto(`${env.server.url}/`);
  await page.evaluate((identity) => localStorage.setItem('roomcast.identity', JSON.stringify(identity)), stored);
  return { page, seen };
}

async function storedIdentity(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('roomcast.identity')));
}

/** No socket URL carries a token, neither `token=` nor the token itself. */
function assertNoTokenInUrls(urls, tokens) {
  assert.ok(urls.length > 0, 'the page opened a socket');
  for (const url of urls) {
    assert.doesNotMatch(url, /[?&]token=/, url);
    for (const token of tokens) assert.ok(!url.includes(token), `${url} carries a token`);
  }
}

test('an identity with a token that never expires is renewed to an expiring one on the next visit', async () => {
  const clientId = randomUUID();
  const old = tokenWithoutExpiry(clientId);
  const { page, seen } = await pageWithStoredIdentity({ client_id: clientId, token: old });

  const renewal = page.waitForResponse((response) => new URL(response.url()).pathname === RENEW, {
    timeout: PATIENCE,
  });
  await page.goto(`${env.server.url}/room/e2e-renew-old?name=Olga`);
  const answer = await renewal;
  assert.equal(answer.status(), 200);
  assert.equal((await answer.request().allHeaders()).authorization, `Bearer ${old}`, 'renewed with the old token');
  await waitForStatus(page, 'open');

  const renewed = await storedIdentity(page);
  assert.equal(renewed.client_id, clientId, 'the same identity');
  assert.notEqual(renewed.token, old);
  assert.equal(typeof renewed.expires_at, 'number');
  assert.equal(claims(renewed.token).exp, renewed.expires_at, 'the token expires when the app was told');
  assert.ok(renewed.expires_at > Date.now() / 1000 + 86_400, 'a new lifetime');
  assert.equal(typeof renewed.obtained_at, 'number');
  assertNoTokenInUrls(seen.sockets, [old, renewed.token]);

  await send(page, 'after the renewal');
  const mine = await waitForMessage(page, 'after the renewal');
  assert.equal(await mine.locator('.sender').textContent(), 'You', 'sent under the renewed token');
  assert.equal(await mine.getByTestId('unverified').count(), 0);

  // Half its lifetime is far off: the next visit uses it as it is.
  await page.reload();
  await waitForStatus(page, 'open');
  assert.equal(seen.renewals, 1, 'renewed once');
  assert.equal((await storedIdentity(page)).token, renewed.token);
  assertNoTokenInUrls(seen.sockets, [old, renewed.token]);
  await page.context().close();
});

test('an identity stored without its expiry is renewed, and no socket URL carries a token', async () => {
  const response = await fetch(`${env.server.url}/api/identities`, { method: 'POST', body: '{}' });
  assert.equal(response.status, 201);
  const issued = await response.json();
  assert.equal(typeof issued.expires_at, 'number', 'self-service tokens expire');
  // What an earlier version of the app kept of it.
  const { page, seen } = await pageWithStoredIdentity({ client_id: issued.client_id, token: issued.token });

  const renewal = page.waitForResponse((answer) => new URL(answer.url()).pathname === RENEW, { timeout: PATIENCE });
  await page.goto(`${env.server.url}/room/e2e-renew-unknown?name=Uma`);
  assert.equal((await renewal).status(), 200);
  await waitForStatus(page, 'open');

  const renewed = await storedIdentity(page);
  assert.equal(renewed.client_id, issued.client_id, 'the same identity');
  assert.equal(typeof renewed.expires_at, 'number');
  assert.ok(renewed.expires_at >= issued.expires_at);
  assert.equal(typeof renewed.obtained_at, 'number');
  // The socket opened, under --auth required, with no token in its URL: the
  // token went in the subprotocol.
  assertNoTokenInUrls(seen.sockets, [issued.token, renewed.token]);
  assert.equal(seen.renewals, 1);
  await page.context().close();
});
