// Two nodes on one Redis, the way a deployment runs them: pages on
// different nodes chat; the node of one page is killed and the page,
// reaching the surviving node through the same address (a small proxy in
// front, as a load balancer would be), catches up with nothing lost.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  freePort, launchBrowser, newPage, send, shownTexts, startProxy, startRedis, startServer, stopServer, tempDatabase,
  waitForMessage, waitForStatus,
} from './support.js';

const env = {};
before(async () => { env.browser = await launchBrowser(); env.redis = await startRedis(); });
after(async () => { await env.browser?.close(); env.redis?.child.kill('SIGTERM'); });

test('pages on two nodes chat, and a page whose node dies catches up on the other', async () => {
  const [portA, portB] = [await freePort(), await freePort()];
  const proxy = await startProxy([portA]);
  const origins = [proxy.url, `http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`].join(',');
  const args = [
    '--redis', env.redis.url, '--secret', 'e2e-cluster-secret-0123456789abcdef0123456789', '--allowed-origins', origins,
  ];
  const nodeA = await startServer(portA, tempDatabase(), args);
  const nodeB = await startServer(portB, tempDatabase(), args);

  // Xia reaches node A through the proxy; Yan is on node B.
  const xia = await newPage(env.browser);
  const yan = await newPage(env.browser);
  await xia.goto(`${proxy.url}/room/e2e-cluster?name=Xia`);
  await yan.goto(`${nodeB.url}/room/e2e-cluster?name=Yan`);
  await Promise.all([waitForStatus(xia, 'open'), waitForStatus(yan, 'open')]);
  await send(xia, 'hello from node A');
  await waitForMessage(yan, 'hello from node A');
  await send(yan, 'hello from node B');
  await waitForMessage(xia, 'hello from node B');

  // Node A dies; the proxy now leads to node B, as a load balancer would.
  nodeA.child.kill('SIGKILL');
  proxy.targets = [portB];
  for (const socket of proxy.sockets) socket.destroy();
  for (let i = 1; i <= 5; i += 1) {
    await send(yan, `while A was gone ${i}`);
    await waitForMessage(yan, `while A was gone ${i}`);
  }
  await waitForStatus(xia, 'open');
  await waitForMessage(xia, 'while A was gone 5');
  const expected = ['hello from node A', 'hello from node B', ...[1, 2, 3, 4, 5].map((i) => `while A was gone ${i}`)];
  assert.deepEqual(await shownTexts(xia), expected, 'nothing lost, nothing twice, in order');
  await send(xia, 'back, through B');
  await waitForMessage(yan, 'back, through B');

  proxy.close();
  await xia.context().close();
  await yan.context().close();
  assert.equal(await stopServer(nodeB), 0);
});
