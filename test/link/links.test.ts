/**
 * Links between real node processes on loopback: pairing through invitations, links up both
 * ways, coming back after a restart, and unpair / block taking effect at once.
 */
import t from 'tap';
import { Cluster, TestNode } from '../harness/cluster.ts';

t.test('two nodes pair through an invitation; the link comes up both ways', async (t) => {
  const c = await Cluster.create(t, 2);
  const [a, b] = [c.node(0), c.node(1)];
  await c.pair(a, b);
  await c.waitFor(async () => (await a.linkUp(b)) && (await b.linkUp(a)), 'link up both ways');
  const fromA = (await a.peers()).find((p) => p.nodeId === b.nodeId)!;
  const fromB = (await b.peers()).find((p) => p.nodeId === a.nodeId)!;
  t.equal(fromA.status, 'paired');
  t.equal(fromB.status, 'paired');
  // Each side pinned the other's fingerprint, which both operators can compare.
  const infoA = (await a.api('GET', '/v1/node')).body;
  const pinnedByB = (await b.api('GET', '/v1/peers')).body.peers as { fingerprint: string }[];
  t.equal(pinnedByB[0]!.fingerprint, infoA.fingerprint, 'b pinned the fingerprint a shows');
  // The invitation is spent.
  const invs = (await a.api('GET', '/v1/invitations')).body.invitations as {
    usedBy: string | null;
  }[];
  t.equal(invs[0]!.usedBy, b.nodeId);
});

t.test('three nodes, pairwise: every link up; a restarted node comes back by itself', async (t) => {
  const c = await Cluster.create(t, 3);
  const [a, b, d] = [c.node(0), c.node(1), c.node(2)];
  await c.pair(a, b);
  await c.pair(a, d);
  await c.pair(b, d);
  const allUp = async () =>
    (await a.linkUp(b)) && (await a.linkUp(d)) && (await b.linkUp(d)) && (await d.linkUp(a));
  await c.waitFor(allUp, 'all three links up');
  await d.stop();
  await c.waitFor(
    async () => !(await a.linkUp(d)) && !(await b.linkUp(d)),
    'links to the stopped node down',
  );
  t.ok(await a.linkUp(b), 'the others keep their link');
  await d.start();
  await c.waitFor(allUp, 'links back after restart', 20_000);
  t.pass('the restarted node is linked again without operator action');
});

t.test('a crashed node (SIGKILL) is reconnected after restart', async (t) => {
  const c = await Cluster.create(t, 2);
  const [a, b] = [c.node(0), c.node(1)];
  await c.pair(a, b);
  await c.waitFor(async () => a.linkUp(b), 'link up');
  await b.kill();
  await b.start();
  await c.waitFor(
    async () => (await a.linkUp(b)) && (await b.linkUp(a)),
    'link back after a crash',
    20_000,
  );
  t.pass();
});

t.test('unpair and block take effect at once', async (t) => {
  const c = await Cluster.create(t, 3);
  const [a, b, d] = [c.node(0), c.node(1), c.node(2)];
  await c.pair(a, b);
  await c.pair(a, d);
  await c.waitFor(async () => (await a.linkUp(b)) && (await a.linkUp(d)), 'links up');

  const unpaired = await a.api('DELETE', `/v1/peers/${b.nodeId}`);
  t.equal(unpaired.status, 200);
  await c.waitFor(async () => !(await b.linkUp(a)), 'b sees the link gone');
  t.notOk(
    (await a.peers()).some((p) => p.nodeId === b.nodeId),
    'b is no longer a peer of a',
  );
  // b still has a pinned and keeps dialing; a refuses it as unknown.
  await c.waitFor(
    () => a.logged('inbound handshake refused').some((l) => l.code === 'LIAISON_ERR_PEER_UNKNOWN'),
    'a refuses the unpaired node',
  );

  const blocked = await a.api('POST', `/v1/peers/${d.nodeId}/block`);
  t.equal(blocked.status, 200);
  await c.waitFor(async () => !(await d.linkUp(a)), 'd sees the link gone');
  await c.waitFor(
    () => a.logged('inbound handshake refused').some((l) => l.code === 'LIAISON_ERR_PEER_BLOCKED'),
    'a refuses the blocked node',
  );
  t.equal(
    (await a.api('POST', `/v1/peers/${d.nodeId}/block`)).status,
    409,
    'blocking twice is a conflict',
  );
  t.equal((await a.api('POST', `/v1/peers/${d.nodeId}/unblock`)).status, 200);
  await c.waitFor(
    async () => (await a.linkUp(d)) && (await d.linkUp(a)),
    'unblocked: the link comes back',
  );
});

t.test('a second process on the same data directory is refused', async (t) => {
  const c = await Cluster.create(t, 1);
  const a = c.node(0);
  const twin = new TestNode('twin', a.dataDir, {});
  await t.rejects(twin.start(), /already running/);
  t.ok(await a.api('GET', '/v1/node').then((r) => r.status === 200), 'the first keeps running');
});
