// The operators' page, /admin on the admin address: it refuses a wrong key
// and keeps the right one for the tab only (sessionStorage), opens no
// socket, shows this node with the test's connections and the room among
// the busiest; it looks up one page's client id and disconnects it (the page
// says so and reconnects), bans it (the page says until when and why, and
// stays stopped, also after a reload) and lifts the ban (a reload connects).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  eventually, freePort, newPage, send, serverAndBrowser, waitForMessage, waitForStatus, PATIENCE, ROOM_SOCKETS,
} from './support.js';

const ADMIN_KEY = 'e2e-admin-key-0123456789abcdef0123456789abcdef';
const ADMIN_PORT = await freePort();
const ADMIN_URL = `http://127.0.0.1:${ADMIN_PORT}`;
const env = serverAndBrowser(['--admin-listen', `127.0.0.1:${ADMIN_PORT}`, '--admin-key', ADMIN_KEY]);

/** GET `path` of the admin API with the key, as JSON. */
async function adminGet(path) {
  const response = await fetch(`${ADMIN_URL}${path}`, { headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(response.status, 200, `GET ${path}`);
  return response.json();
}

/**
 * The rows of the admin page's table `testid` as they are now (null while
 * it is not shown): each row's data attributes and its cells by column.
 */
async function tableRows(page, testid) {
  return page.evaluate((testid) => {
    const table = document.querySelector(`table[data-testid="${testid}"]`);
    if (!table) return null;
    const columns = [...table.querySelectorAll('thead th')].map((cell) => cell.textContent.trim());
    return [...table.querySelectorAll('tbody tr')].map((row) => ({
      data: { ...row.dataset },
      cells: Object.fromEntries([...row.children].map((cell, i) => [columns[i], cell.textContent.trim()])),
    }));
  }, testid);
}

/** Resolves with the first row of table `testid` that `matches`, once there is one. */
async function waitForRow(page, testid, matches, what) {
  return eventually(async () => (await tableRows(page, testid))?.find(matches), what);
}

async function clientId(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('roomcast.identity')).client_id);
}

/** The status text of a chat page, as shown (not its announcement for screen readers). */
async function statusText(page) {
  return page.getByTestId('status').locator(':scope > span[aria-hidden="true"]:not(.dot)').textContent();
}

/** A ban's end as the app writes it (the browser's locale and time zone). */
async function localTime(page, ms) {
  return page.evaluate((ms) => new Date(ms).toLocaleString('default', { dateStyle: 'medium', timeStyle: 'short' }), ms);
}

/** Every socket `page` opens, in order; `room` are its room's (not its rooms stream). */
function socketsOf(page) {
  const sockets = { all: [], room: [] };
  page.on('websocket', (socket) => {
    sockets.all.push(socket);
    if (ROOM_SOCKETS.test(new URL(socket.url()).pathname)) sockets.room.push(socket);
  });
  return sockets;
}

/**
 * Notes every status the page shows from now on (until it navigates), in
 * `window.statusesSeen`.
 */
async function watchStatus(page) {
  await page.evaluate(() => {
    const now = () => document.querySelector('[data-testid="status"]')?.dataset.status;
    window.statusesSeen = [];
    let last = now();
    new MutationObserver(() => {
      if (now() !== last) window.statusesSeen.push((last = now()));
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
}

/**
 * Resolves once the admin page has had two more overview answers: one poll
 * interval (2 s) at least, four times the app's first retry delay (at most
 * 500 ms), long enough to see a page that would try again.
 */
async function twoPolls(admin) {
  for (let i = 0; i < 2; i += 1) {
    await admin.waitForResponse((response) => new URL(response.url()).pathname === '/admin/api/overview', {
      timeout: PATIENCE,
    });
  }
}

/** Waits out two admin polls and checks `page` made no socket and stayed `status` meanwhile. */
async function staysStopped(page, sockets, admin, status, what) {
  const before = sockets.all.length;
  await watchStatus(page);
  await twoPolls(admin);
  assert.deepEqual(await page.evaluate(() => window.statusesSeen), [], `${what}: the status did not change`);
  assert.equal(sockets.all.length, before, `${what}: no socket tried: ${sockets.all.slice(before).map((each) => each.url())}`);
  assert.equal(await page.getByTestId('status').getAttribute('data-status'), status);
}

test("the admin page shows a test's connections, disconnects one page, bans it and lifts the ban", async () => {
  const room = 'e2e-admin';
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  const aliceSockets = socketsOf(alice);
  await alice.goto(`${env.server.url}/room/${room}?name=Alice`);
  await bob.goto(`${env.server.url}/room/${room}?name=Bob`);
  await Promise.all([waitForStatus(alice, 'open'), waitForStatus(bob, 'open')]);
  const [aliceId, bobId] = [await clientId(alice), await clientId(bob)];
  assert.notEqual(aliceId, bobId, 'two identities');

  // The page, in a third browser context; it must open no socket at all.
  const admin = await newPage(env.browser);
  const adminSockets = [];
  admin.on('websocket', (socket) => adminSockets.push(socket.url()));
  await admin.goto(`${ADMIN_URL}/admin`);
  await admin.getByRole('heading', { name: 'Roomcast admin' }).waitFor({ timeout: PATIENCE });

  // A wrong key is refused and not kept; the right one opens the page.
  await admin.getByLabel('Admin key').fill('not-the-admin-key-0123456789abcdef0123456789');
  await admin.getByRole('button', { name: 'Open' }).click();
  await admin.getByRole('alert').filter({ hasText: 'wrong key' }).waitFor({ timeout: PATIENCE });
  assert.equal(await admin.getByRole('button', { name: 'Forget key' }).count(), 0, 'still at the prompt');
  assert.equal(await admin.evaluate(() => sessionStorage.getItem('roomcast.admin-key')), null, 'not kept');
  await admin.getByLabel('Admin key').fill(ADMIN_KEY);
  await admin.getByRole('button', { name: 'Open' }).click();
  await admin.getByRole('button', { name: 'Forget key' }).waitFor({ timeout: PATIENCE });
  for (const heading of ['Nodes', 'Traffic', 'Busiest rooms', 'Look up a client', 'Ban', 'Active bans']) {
    await admin.getByRole('heading', { name: heading, exact: true }).waitFor({ timeout: PATIENCE });
  }
  // Kept as JSON (a string), for this tab only.
  const kept = await admin.evaluate((key) => ({
    session: JSON.parse(sessionStorage.getItem('roomcast.admin-key')),
    local: Object.keys(localStorage).filter((name) => `${name}${localStorage.getItem(name)}`.includes(key)),
  }), ADMIN_KEY);
  assert.deepEqual(kept, { session: ADMIN_KEY, local: [] }, 'the key is in sessionStorage, and not in localStorage');

  // What the server counts: each page's room socket, and its rooms stream
  // (the node's "Connections" counts both: the rooms stream is a member of
  // the reserved group `_me`).
  const overview = await eventually(async () => {
    const now = await adminGet('/admin/api/overview');
    const node = now.nodes.find((each) => each.node === now.this_node);
    const members = now.groups_by_members.find((group) => group.group === room)?.members;
    return members === 2 && node.rooms_streams === 2 && now;
  }, 'the overview to count both pages');
  const node = overview.nodes.find((each) => each.node === overview.this_node);
  assert.equal(overview.nodes.length, 1, 'one node');
  assert.equal(node.connections, 2 + node.rooms_streams, 'two room sockets and two rooms streams');

  // The page shows this node with that count, and the room with its two members.
  await waitForRow(
    admin, 'nodes',
    (row) => row.data.node === node.node && row.cells.Connections === String(node.connections)
      && row.cells['Rooms streams'] === '2' && row.cells.State === 'this node',
    `this node with ${node.connections} connections`,
  );
  await waitForRow(
    admin, 'by-members', (row) => row.data.group === room && row.cells.Room === room && row.cells.Members === '2',
    'the room by members, with 2 members',
  );
  await waitForRow(admin, 'by-rate', (row) => row.data.group === room && row.cells.Members === '2', 'the room by rate');
  for (const chart of ['Deliveries per second', 'Open connections']) {
    const figure = admin.locator('figure', { has: admin.locator('figcaption', { hasText: chart }) });
    await figure.locator('svg[role="img"] path.line').waitFor({ state: 'attached', timeout: PATIENCE });
  }

  // Alice's client id: her connection in the room, on this node.
  await admin.getByLabel('Client id').fill(aliceId);
  await admin.getByRole('button', { name: 'Look up' }).click();
  await admin.locator(`[data-testid="identity-report"][data-sub="${aliceId}"]`).waitFor({ timeout: PATIENCE });
  await admin.getByRole('table', { name: 'Live connections' }).waitFor({ timeout: PATIENCE });
  await waitForRow(
    admin, 'live-connections',
    (row) => row.cells.Room === room && row.cells.Node === node.node && row.cells.Mode === 'json',
    "Alice's connection in the room",
  );
  const ban = admin.getByRole('checkbox', { name: `Ban client ${aliceId}` });
  assert.equal(await ban.isChecked(), true, 'the ban form offers the client looked up, ticked');

  // Disconnect her: every connection of hers closes (her room socket and
  // her rooms stream), she is told why, and her page connects again by itself.
  const hers = (await adminGet(`/admin/api/identities/${aliceId}`)).connections;
  assert.ok(hers.some((each) => each.group === room && each.node === node.node), 'the API agrees');
  const before = aliceSockets.room.length;
  const streamsBefore = aliceSockets.all.length - before;
  await watchStatus(alice);
  await watchStatus(bob);
  const disconnect = 'e2e maintenance, please reconnect';
  await admin.getByLabel('Disconnect reason').fill(disconnect);
  await admin.getByRole('button', { name: 'Disconnect', exact: true }).click();
  const outcome = admin.getByTestId('admin-outcome');
  await outcome.filter({ hasText: `client ${aliceId}: closed` }).waitFor({ timeout: PATIENCE });
  assert.equal(await outcome.getAttribute('role'), 'status', await outcome.textContent());
  const closed = hers.length === 1 ? '1 connection' : `${hers.length} connections`;
  assert.equal(await outcome.textContent(), `client ${aliceId}: closed ${closed}`);
  await alice.getByTestId('system').filter({ hasText: `disconnected by an operator: ${disconnect}` })
    .waitFor({ timeout: PATIENCE });
  await eventually(() => aliceSockets.room[before - 1].isClosed(), 'her room socket to close');
  await eventually(() => aliceSockets.room.length > before, 'a new room socket');
  await waitForStatus(alice, 'open');
  // Her rooms stream comes back too, on its own backoff (a ban while it
  // waits would cost one refused handshake, which this test would count).
  await eventually(async () => {
    if (aliceSockets.all.length - aliceSockets.room.length === streamsBefore) return false;
    const now = await adminGet('/admin/api/overview');
    return now.nodes.find((each) => each.node === now.this_node).rooms_streams === 2;
  }, 'her rooms stream to connect again');
  const seen = await alice.evaluate(() => window.statusesSeen);
  assert.ok(seen.includes('reconnecting'), `went through the backoff: ${seen}`);
  assert.equal(await statusText(alice), 'connected');
  await send(alice, 'back after the disconnect');
  await waitForMessage(bob, 'back after the disconnect');
  await waitForMessage(alice, 'back after the disconnect');
  assert.deepEqual(await bob.evaluate(() => window.statusesSeen), [], 'Bob was not disconnected');

  // Ban her for 10 minutes: her page stops, saying until when and why.
  const reason = 'e2e: flooding the room';
  await admin.getByRole('button', { name: 'Look up' }).click();
  await admin.getByRole('checkbox', { name: `Ban client ${aliceId}` }).check();
  await admin.getByLabel('Duration').selectOption({ label: '10 minutes' });
  await admin.getByLabel('Ban reason').fill(reason);
  const banned = Date.now();
  await admin.getByRole('button', { name: 'Ban', exact: true }).click();
  const row = await waitForRow(
    admin, 'bans', (each) => each.cells.Banned === `client ${aliceId}` && each.cells.Reason === reason,
    'the ban among the active bans',
  );
  const record = (await adminGet('/admin/api/bans')).bans.find((each) => each.id === row.data.banId);
  assert.ok(record, 'the row is the ban the API lists');
  assert.equal(record.sub, aliceId);
  assert.ok(Math.abs(record.until_ms - (banned + 600_000)) < 30_000, `until ${record.until_ms}: in 10 minutes`);
  const until = await localTime(alice, record.until_ms);
  assert.equal(row.cells.Until, until);
  await outcome.filter({ hasText: `banned client ${aliceId} until ${until}` }).waitFor({ timeout: PATIENCE });

  const removed = `closed: removed from this server until ${until}: ${reason}`;
  await waitForStatus(alice, 'closed');
  assert.equal(await statusText(alice), removed);
  await alice.getByTestId('system').filter({ hasText: `removed from this server by an operator: ${reason}` })
    .waitFor({ timeout: PATIENCE });
  await eventually(() => aliceSockets.all.every((socket) => socket.isClosed()), 'all her sockets to close');
  await staysStopped(alice, aliceSockets, admin, 'closed', 'banned');
  assert.equal(await statusText(alice), removed);

  // After a reload it is still stopped, saying the same (the server refuses
  // her handshake), and it does not try again.
  await alice.reload();
  await waitForStatus(alice, 'closed');
  assert.equal(await statusText(alice), removed);
  await staysStopped(alice, aliceSockets, admin, 'closed', 'banned, reloaded');
  assert.equal(await statusText(alice), removed);
  const stopped = aliceSockets.all.length;
  assert.equal(await clientId(alice), aliceId, 'she keeps her identity');
  assert.deepEqual(await bob.evaluate(() => window.statusesSeen), [], 'Bob was not banned');
  await send(bob, 'while Alice is banned');
  await waitForMessage(bob, 'while Alice is banned');

  // Lift the ban: it leaves the table; her page waits until she reloads,
  // then connects and chats.
  await admin.locator(`tr[data-ban-id="${record.id}"]`).getByRole('button', { name: 'Lift' }).click();
  await outcome.filter({ hasText: 'ban lifted' }).waitFor({ timeout: PATIENCE });
  await eventually(async () => {
    const bans = await tableRows(admin, 'bans');
    return bans === null || !bans.some((each) => each.data.banId === record.id);
  }, 'the lifted ban to leave the table');
  assert.deepEqual((await adminGet('/admin/api/bans')).bans, []);
  assert.equal(await statusText(alice), removed, 'still stopped until reloaded');
  assert.equal(aliceSockets.all.length, stopped, 'no new attempt while stopped');
  await alice.reload();
  await waitForStatus(alice, 'open');
  await waitForMessage(alice, 'while Alice is banned');
  await send(alice, 'back after the ban');
  await waitForMessage(bob, 'back after the ban');

  assert.equal(await admin.getByTestId('admin-problem').count(), 0, 'no poll failed');

  // "Forget key" drops it from the tab and asks again.
  await admin.getByRole('button', { name: 'Forget key' }).click();
  await admin.getByLabel('Admin key').waitFor({ timeout: PATIENCE });
  assert.equal(await admin.evaluate(() => sessionStorage.getItem('roomcast.admin-key')), null);
  assert.deepEqual(adminSockets, [], 'the admin page opened no WebSocket');
  for (const page of [alice, bob, admin]) await page.context().close();
});
